"""Module-scoped Kaon emulators for the tap's tests (the shared fixtures are function-scoped)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT
from tests.tap_kaon_insights.kaon_tap_helpers import SMALL_ARGS


@pytest.fixture(scope="module")
def module_kaon() -> Iterator[EmulatorProcess]:
    """A Kaon emulator with the small data set and the frozen clock, shared by a test module (read-only use)."""
    emulator = EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_ARGS)
    yield emulator
    emulator.stop()
