"""Reading several days at once changes nothing in the output: same records, same order, same state.

The runs go under every reading of the seed in ``DAY_READINGS`` (the ``reading`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

from emulators.testing import EmulatorProcess
from tap_kahuna_logs.daily_stream import DayReadAhead
from tap_kahuna_logs.tap import TapKahunaLogs
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import STREAMS, DayReading, base_config, dataset, first_day, keys


def test_max_concurrency_4_and_1_give_identical_output(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    read_emulator.set_faults(latency_ms=5.0)
    parallel = run_tap(reading.config(read_emulator, max_concurrency=4, page_size=11))
    reading.serve(read_emulator)  # the same cursor expiries, by the reseeded die
    serial = run_tap(reading.config(read_emulator, max_concurrency=1, page_size=11))
    assert parallel.returncode == serial.returncode == 0, parallel.stderr[-2000:] + serial.stderr[-2000:]
    assert parallel.records == serial.records
    assert parallel.final_state == serial.final_state
    for category, stream in STREAMS.items():
        assert keys(parallel.records[stream]) == reading.keys(category)


def test_state_messages_follow_day_order_under_concurrency(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    run = run_tap(reading.config(read_emulator, max_concurrency=4, page_size=7, categories=["push"]))
    assert run.returncode == 0, run.stderr[-2000:]
    assert keys(run.records["push_logs"]) == reading.keys("push")
    days = [state["bookmarks"]["push_logs"]["day"] for state in run.states if "push_logs" in state.get("bookmarks", {})]
    assert days == sorted(days)
    assert sorted(set(days)) == [day.isoformat() for day in dataset().days]


def test_the_next_category_is_read_while_the_one_before_finishes_and_nothing_changes_in_the_output(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    read_emulator.set_faults(latency_ms=20.0)
    day = first_day().isoformat()
    one_day = {"categories": ["inapp", "push"], "start_date": day, "end_date": day, "page_size": 5}

    queued = run_tap(reading.config(read_emulator, max_concurrency=2, **one_day))
    log = read_emulator.requests()
    reading.serve(read_emulator).reset()
    serial = run_tap(reading.config(read_emulator, max_concurrency=1, **one_day))

    assert queued.returncode == serial.returncode == 0, queued.stderr[-2000:] + serial.stderr[-2000:]
    # One queue of days across the categories: push's day was read beside inapp's, not after it (the request log).
    categories = [entry["json"]["categories_to_return"][0] for entry in log]
    last_inapp = len(categories) - 1 - categories[::-1].index("inapp")
    assert categories.index("push") < last_inapp
    assert categories.count("inapp") > 3  # chains of several pages each
    assert categories.count("push") > 3
    # The streams still sync one after the other, each in day order: the same records and state as serially.
    assert queued.records == serial.records
    assert queued.final_state == serial.final_state
    assert list(queued.records) == ["inapp_logs", "push_logs"]
    for category in ("inapp", "push"):
        expected = reading.keys(category, days=[first_day()])
        assert keys(queued.records[STREAMS[category]]) == expected


def test_a_stream_that_is_not_next_in_the_queue_reads_its_own_days(clean_emulator: EmulatorProcess) -> None:
    tap = TapKahunaLogs(config=base_config(clean_emulator, categories=["inapp", "push"]), validate_config=True)
    inapp, push = tap.streams["inapp_logs"], tap.streams["push_logs"]
    queue = DayReadAhead([inapp, push])
    try:
        assert queue.day_reads(push) is None  # planned after inapp: push would read alone
        reads = queue.day_reads(inapp)
        assert reads is not None
        assert [read.start.day for read in reads] == dataset().days
        assert queue.day_reads(inapp) is None  # taken once
    finally:
        queue.close()
