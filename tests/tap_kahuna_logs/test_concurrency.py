"""Reading several days at once changes nothing in the output: same records, same order, same state."""

from __future__ import annotations

from collections.abc import Callable

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import STREAMS, base_config, dataset, expected_rows, keys


def test_max_concurrency_4_and_1_give_identical_output(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.set_faults(latency_ms=5.0)
    parallel = run_tap(base_config(clean_emulator, max_concurrency=4, page_size=11))
    serial = run_tap(base_config(clean_emulator, max_concurrency=1, page_size=11))
    assert parallel.returncode == serial.returncode == 0, parallel.stderr[-2000:] + serial.stderr[-2000:]
    assert parallel.records == serial.records
    assert parallel.final_state == serial.final_state
    for category, stream in STREAMS.items():
        assert keys(parallel.records[stream]) == [(d, p) for d, p, _ in expected_rows(category)]


def test_state_messages_follow_day_order_under_concurrency(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    run = run_tap(base_config(clean_emulator, max_concurrency=4, page_size=7, categories=["push"]))
    assert run.returncode == 0, run.stderr[-2000:]
    days = [state["bookmarks"]["push_logs"]["day"] for state in run.states if "push_logs" in state.get("bookmarks", {})]
    assert days == sorted(days)
    assert sorted(set(days)) == [day.isoformat() for day in dataset().days]
