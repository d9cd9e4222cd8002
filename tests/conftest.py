"""Shared fixtures: emulators as real processes on 127.0.0.1, with knobs.

``FIXED_NOW_TEXT`` (tests/support/datasets.py) freezes every emulator's clock so data (the current week,
today's logs) is deterministic; tests move it with ``emulator.set_clock(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from emulators.testing import EmulatorProcess
from tests.support.emulators import start_frozen, start_kahuna


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    """A factory: ``start_emulator("kaon", "--latency-ms", "50")``; every process is stopped after the test.

    Each service starts as ``start_frozen`` starts it: ``--now FIXED_NOW_TEXT`` and the small data set unless the
    arguments say otherwise (later arguments win).
    """
    started: list[EmulatorProcess] = []

    def start(service: str, *args: str, small: bool = True) -> EmulatorProcess:
        emulator = start_frozen(service, *args, small=small)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture(scope="module")
def kahuna() -> Iterator[EmulatorProcess]:
    """One Kahuna emulator (small data set, frozen clock) for a test module; each test sets its knobs and resets it.

    A module that needs other data (hard days, latency) defines its own ``kahuna``.
    """
    emulator = start_kahuna()
    yield emulator
    emulator.stop()


@pytest.fixture
def kaon_emulator(start_emulator: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A Kaon Insights emulator with the small data set and a frozen clock."""
    return start_emulator("kaon")


@pytest.fixture
def kahuna_emulator(start_emulator: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A Kahuna Logs emulator with the small data set and a frozen clock."""
    return start_emulator("kahuna")


@pytest.fixture
def kissmetrics_emulator(start_emulator: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """A Kissmetrics tracking emulator."""
    return start_emulator("kissmetrics")
