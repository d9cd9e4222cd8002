"""Bookmarks: a second run continues, today's partial day is re-read without duplicates, a killed run resumes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import NOW, STREAMS, base_config, dataset, expected_rows, keys

TODAY = "2026-11-18"


def test_second_run_with_state_emits_nothing_new_and_asks_only_from_each_bookmarks_minute(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(base_config(clean_emulator))
    assert first.returncode == 0, first.stderr[-3000:]
    clean_emulator.reset()
    second = run_tap(base_config(clean_emulator), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.records == {}
    for category, stream in STREAMS.items():
        before, after = first.final_state["bookmarks"][stream], second.final_state["bookmarks"][stream]
        assert after == before
        asked = [r["json"] for r in clean_emulator.requests() if r["json"]["categories_to_return"] == [category]]
        # one request from the bookmark's minute of today: it sends that minute's emitted records again, nothing new
        assert asked == [
            {
                "timestamp": "11/18/2026 " + before["last_timestamp"][11:16],
                "number_of_records": 17,
                "categories_to_return": [category],
            }
        ]


def test_clock_advance_within_today_emits_only_todays_new_records(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(base_config(clean_emulator))
    later = "2026-11-18T21:45:00+00:00"
    clean_emulator.set_clock(now=later)
    second = run_tap(base_config(clean_emulator), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    today = dataset().days[-1]
    assert today.isoformat() == TODAY
    new_total = 0
    for category, stream in STREAMS.items():
        before = len(dataset(NOW).records(category, today))
        expected = [(d, p) for d, p, _ in expected_rows(category, now=later, days=[today])][before:]
        got = keys(second.records.get(stream, []))
        assert got == expected
        assert not set(got) & set(keys(first.records[stream]))
        new_total += len(got)
        assert second.final_state["bookmarks"][stream]["day_records_emitted"] == before + len(got)
    assert new_total > 0, "the clock advance made new records visible"


def test_clock_past_midnight_finishes_yesterday_then_reads_the_new_day(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(base_config(clean_emulator))
    tomorrow_now = "2026-11-19T02:00:00+00:00"
    clean_emulator.set_clock(now=tomorrow_now)
    second = run_tap(base_config(clean_emulator, end_date="2026-11-19"), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    data = dataset(tomorrow_now)
    yesterday, today = [day for day in data.days if day.isoformat() in (TODAY, "2026-11-19")]
    for category, stream in STREAMS.items():
        already = len(dataset(NOW).records(category, yesterday))
        rows = expected_rows(category, now=tomorrow_now, days=[yesterday, today])
        expected = [(d, p) for d, p, _ in rows if not (d == TODAY and p < already)]
        assert keys(second.records.get(stream, [])) == expected
        assert second.final_state["bookmarks"][stream]["day"] == "2026-11-19"
    assert sum(len(second.records.get(s, [])) for s in STREAMS.values()) > 0


def test_a_0_1_bookmark_without_last_timestamp_resumes_at_the_next_record(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    day = dataset().days[1].isoformat()
    state = {"bookmarks": {"inapp_logs": {"day": day, "day_records_emitted": 7}}}  # as 0.1.x wrote it
    run = run_tap(base_config(clean_emulator, categories=["inapp"]), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = [(d, p) for d, p, _ in expected_rows("inapp") if d > day or (d == day and p >= 7)]
    assert keys(run.records["inapp_logs"]) == expected
    # the old bookmark's day is read again from 00:00 (its records skipped by position); later days as usual
    timestamps = [r["json"]["timestamp"] for r in clean_emulator.requests() if "timestamp" in r["json"]]
    asked_days = [datetime.strptime(text.split()[0], "%m/%d/%Y").date().isoformat() for text in timestamps]
    assert min(asked_days) == day
    assert timestamps[asked_days.index(day)].endswith(" 00:00")
    end_of_the_day = [s["bookmarks"]["inapp_logs"] for s in run.states if s["bookmarks"]["inapp_logs"]["day"] == day]
    day_records = dataset().records("inapp", dataset().days[1])
    assert end_of_the_day[-1]["day_records_emitted"] == len(day_records)
    assert end_of_the_day[-1]["last_timestamp"][:26] == day_records[-1]["timestamp"].replace(" ", "T")


def test_killed_run_resumes_from_its_last_state_without_loss(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.set_faults(error_rate=0.03, error_statuses=[500], seed=4)
    broken = run_tap(base_config(clean_emulator, max_retries=1, max_concurrency=1, page_size=5))
    assert broken.returncode == 1, "the injected 500s stopped the run part-way"
    assert broken.states, "it emitted a state before dying"
    clean_emulator.set_faults(error_rate=0.0)
    resumed = run_tap(base_config(clean_emulator, page_size=5), state=broken.states[-1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for category, stream in STREAMS.items():
        expected = [(d, p) for d, p, _ in expected_rows(category)]
        combined = keys(broken.records.get(stream, [])) + keys(resumed.records.get(stream, []))
        assert sorted(set(combined)) == sorted(expected), category
        bookmark = broken.states[-1]["bookmarks"].get(stream)
        resume_from = (bookmark["day"], bookmark["day_records_emitted"]) if bookmark else ("", 0)
        assert keys(resumed.records.get(stream, [])) == [key for key in expected if key >= resume_from]
