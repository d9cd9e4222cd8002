"""Fixtures for tap-kahuna-logs: one Kahuna emulator per module, the real CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun, run_plugin
from tests.support.emulators import start_kahuna
from tests.tap_kahuna_logs.kahuna_helpers import (
    DAY_READINGS,
    HARD_DAYS,
    NOW,
    TAP,
    DayReading,
    emulator_dataset,
)


@pytest.fixture
def clean_emulator(kahuna: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator under the contract's readings, with no faults, no cursor expiry, the clock at NOW and
    an empty request log."""
    kahuna.set_faults(
        latency_ms=0.0, error_rate=0.0, error_statuses=[500, 503], drop_rate=0.0, rate_limit_rate=0.0, slow_body_ms=0.0
    )
    kahuna.control("kahuna/cursors", {"expire_after_uses": None, "ttl_seconds": None, "expire_at_uses": None})
    DAY_READINGS["contract"].serve(kahuna)
    kahuna.clear_corruptions()
    kahuna.set_clock(now=NOW)
    kahuna.reset()
    return kahuna


@pytest.fixture(params=list(DAY_READINGS))
def reading(request: pytest.FixtureRequest) -> DayReading:
    """Each reading of the seed a client can be exact under (``DAY_READINGS``), in turn."""
    return DAY_READINGS[request.param]


@pytest.fixture
def read_emulator(clean_emulator: EmulatorProcess, reading: DayReading) -> EmulatorProcess:
    """:func:`clean_emulator` serving ``reading``."""
    return reading.serve(clean_emulator)


@pytest.fixture
def run_tap(tmp_path: Path) -> Callable[..., PluginRun]:
    """``run_tap(config, state=None, env=None, args=())`` runs the real CLI in this test's tmp dir."""

    def run(config: dict, **options: Any) -> PluginRun:
        return run_plugin(TAP, config, tmp_path, **options)

    return run


@pytest.fixture(scope="module")
def hard_days() -> Iterator[EmulatorProcess]:
    """One emulator with the hard days (``HARD_DAYS``) for the module; tests set its readings and faults."""
    emulator = start_kahuna(*HARD_DAYS)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def data() -> KahunaDataset:
    """What the hard-days emulator serves."""
    return emulator_dataset(*HARD_DAYS)
