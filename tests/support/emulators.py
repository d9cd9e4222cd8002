"""Emulator processes the tests share: started with the small data set and the frozen clock."""

from __future__ import annotations

from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT, SMALL_DATA


def start_frozen(service: str, *args: str, small: bool = True) -> EmulatorProcess:
    """An emulator of ``service`` frozen at FIXED_NOW with the small data set (``small=False``: the service's own
    default data); later arguments win."""
    return EmulatorProcess(service, "--now", FIXED_NOW_TEXT, *(SMALL_DATA[service] if small else []), *args)


def start_kahuna(*args: str) -> EmulatorProcess:
    """A Kahuna emulator with the small data set, frozen at FIXED_NOW (later args win)."""
    return start_frozen("kahuna", *args)
