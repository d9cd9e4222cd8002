"""Emulator processes the tests share: started with the small data set and the frozen clock."""

from __future__ import annotations

from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT, SMALL_DATA


def start_kahuna(*args: str) -> EmulatorProcess:
    """A Kahuna emulator with the small data set, frozen at FIXED_NOW (later args win)."""
    return EmulatorProcess("kahuna", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kahuna"], *args)
