"""Bookmarks: a second run continues, today's partial day is re-read without duplicates, a killed run resumes.

Each test runs under every reading of the seed in ``DAY_READINGS`` (the ``reading`` fixture): the records and
bookmarks it expects are the ones that reading's server sends.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import (
    DAY_READINGS,
    STREAMS,
    DayReading,
    assert_bookmark,
    base_config,
    dataset,
    iso,
    keys,
    request_minute,
    sorted_prefix,
)

TODAY = "2026-11-18"


def asked_starts(emulator: EmulatorProcess, category: str) -> list[str]:
    """The ``timestamp`` of every chain the tap started for ``category``, in order."""
    bodies = [r["json"] for r in emulator.requests() if r["json"]["categories_to_return"] == [category]]
    return [body["timestamp"] for body in bodies if "timestamp" in body]


def test_second_run_with_state_emits_nothing_new_and_asks_only_from_where_each_bookmark_resumes(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(reading.config(read_emulator))
    assert first.returncode == 0, first.stderr[-3000:]
    today = dataset().days[-1]
    for category, stream in STREAMS.items():
        assert keys(first.records[stream]) == reading.keys(category)
        assert_bookmark(first.final_state["bookmarks"][stream], reading.bookmark(category, today))
    read_emulator.reset()
    second = run_tap(reading.config(read_emulator), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.records == {}
    for category, stream in STREAMS.items():
        before, after = first.final_state["bookmarks"][stream], second.final_state["bookmarks"][stream]
        assert after == before
        asked = [r["json"] for r in read_emulator.requests() if r["json"]["categories_to_return"] == [category]]
        resumes_from = request_minute(today, before["last_timestamp"][11:16] if before["last_timestamp"] else "00:00")
        starts = asked_starts(read_emulator, category)
        assert starts[0] == resumes_from
        if not reading.expire_rate:  # (expired cursors restart later chains, by position or from a later minute)
            assert set(starts) == {resumes_from}
        if before["last_timestamp"] and reading.records_cap == "page" and not reading.expire_rate:
            # one request from the bookmark's minute of today: it sends that minute's emitted records again
            assert asked == [{"timestamp": resumes_from, "number_of_records": 17, "categories_to_return": [category]}]


def test_clock_advance_within_today_emits_only_todays_new_records(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(reading.config(read_emulator))
    assert first.returncode == 0, first.stderr[-3000:]
    later = "2026-11-18T21:45:00+00:00"
    read_emulator.set_clock(now=later)
    second = run_tap(reading.config(read_emulator), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    today = dataset().days[-1]
    assert today.isoformat() == TODAY
    new_total = 0
    for category, stream in STREAMS.items():
        before = len(reading.served(category, today))
        expected = reading.keys(category, now=later, days=[today])[before:]
        got = keys(second.records.get(stream, []))
        assert got == expected
        assert not set(got) & set(keys(first.records[stream]))
        new_total += len(got)
        assert_bookmark(second.final_state["bookmarks"][stream], reading.bookmark(category, today, now=later))
    assert new_total > 0, "the clock advance made new records visible"


def test_clock_past_midnight_finishes_yesterday_then_reads_the_new_day(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    first = run_tap(reading.config(read_emulator))
    assert first.returncode == 0, first.stderr[-3000:]
    tomorrow_now = "2026-11-19T02:00:00+00:00"
    read_emulator.set_clock(now=tomorrow_now)
    second = run_tap(reading.config(read_emulator, end_date="2026-11-19"), state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    data = dataset(tomorrow_now)
    yesterday, today = [day for day in data.days if day.isoformat() in (TODAY, "2026-11-19")]
    for category, stream in STREAMS.items():
        already = len(reading.served(category, yesterday))
        rows = reading.keys(category, now=tomorrow_now, days=[yesterday, today])
        expected = [(d, p) for d, p in rows if not (d == TODAY and p < already)]
        assert keys(second.records.get(stream, [])) == expected
        assert_bookmark(second.final_state["bookmarks"][stream], reading.bookmark(category, today, now=tomorrow_now))
    assert sum(len(second.records.get(s, [])) for s in STREAMS.values()) > 0


def test_a_0_1_bookmark_without_last_timestamp_resumes_at_the_next_record(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    day = dataset().days[1]
    state = {"bookmarks": {"inapp_logs": {"day": day.isoformat(), "day_records_emitted": 7}}}  # as 0.1.x wrote it
    run = run_tap(reading.config(read_emulator, categories=["inapp"]), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = [(d, p) for d, p in reading.keys("inapp") if d > day.isoformat() or (d == day.isoformat() and p >= 7)]
    assert keys(run.records["inapp_logs"]) == expected
    # the old bookmark's day is read again from 00:00 (its records skipped by position); later days as usual
    timestamps = asked_starts(read_emulator, "inapp")
    asked_days = [datetime.strptime(text.split()[0], "%m/%d/%Y").date() for text in timestamps]
    assert min(asked_days) == day
    assert timestamps[asked_days.index(day)].endswith(" 00:00")
    of_the_day = [s["bookmarks"]["inapp_logs"] for s in run.states if s["bookmarks"]["inapp_logs"]["day"] == str(day)]
    assert_bookmark(of_the_day[-1], reading.bookmark("inapp", day))


def test_killed_run_resumes_from_its_last_state_without_loss(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    read_emulator.set_faults(error_rate=0.03, error_statuses=[500], seed=4)
    broken = run_tap(reading.config(read_emulator, max_retries=0, max_concurrency=1, page_size=5))
    assert broken.returncode == 1, "the injected 500s stopped the run part-way"
    assert broken.states, "it emitted a state before dying"
    read_emulator.set_faults(error_rate=0.0)
    resumed = run_tap(reading.config(read_emulator, page_size=5), state=broken.states[-1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for category, stream in STREAMS.items():
        expected = reading.keys(category)
        combined = keys(broken.records.get(stream, [])) + keys(resumed.records.get(stream, []))
        assert sorted(set(combined)) == sorted(expected), category
        bookmark = broken.states[-1]["bookmarks"].get(stream)
        resume_from = (bookmark["day"], bookmark["day_records_emitted"]) if bookmark else ("", 0)
        assert keys(resumed.records.get(stream, [])) == [key for key in expected if key >= resume_from]


def test_a_day_resumed_from_its_minute_that_turns_out_of_order_is_read_again_from_00_00_by_position(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    """A bookmark with a minute (the day looked sorted so far) meets records out of order after that minute: the
    records it counts arrived first, so from 00:00 the day goes on at its next position, exactly."""
    stored = DAY_READINGS["stored-order"]
    stored.serve(clean_emulator)
    day = dataset().days[1]
    served = stored.served("inapp", day)
    emitted = sorted_prefix(served) - 1  # the bookmark of a run that saw only these, in order
    assert emitted >= 3
    last = served[emitted - 1]["timestamp"]
    state = {
        "bookmarks": {
            "inapp_logs": {
                "day": day.isoformat(),
                "day_records_emitted": emitted,
                "last_timestamp": iso(last),
                "minute_records_emitted": sum(1 for raw in served[:emitted] if raw["timestamp"][:16] == last[:16]),
            }
        }
    }
    run = run_tap(base_config(clean_emulator, categories=["inapp"]), state=state)

    assert run.returncode == 0, run.stderr[-3000:]
    expected = [
        (d, p) for d, p in stored.keys("inapp") if d > day.isoformat() or (d == day.isoformat() and p >= emitted)
    ]
    assert keys(run.records["inapp_logs"]) == expected
    assert f"reading the day again from 00:00 and skipping the {emitted} records emitted before" in run.stderr
    of_the_day = [s["bookmarks"]["inapp_logs"] for s in run.states if s["bookmarks"]["inapp_logs"]["day"] == str(day)]
    assert_bookmark(of_the_day[-1], stored.bookmark("inapp", day))
    assert of_the_day[-1]["last_timestamp"] is None  # the next run reads this day from 00:00 by position too
    of_day = [start for start in asked_starts(clean_emulator, "inapp") if start.startswith(day.strftime("%m/%d/%Y"))]
    assert of_day[:2] == [request_minute(day, last[11:16]), request_minute(day)]


def test_a_bookmark_whose_last_record_is_not_where_it_says_stops_the_day_with_nothing_emitted(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    """Read again from 00:00, the record at the bookmark's last position must be the bookmark's last record: if
    not, positions cannot be matched, and nothing of the day leaves."""
    stored = DAY_READINGS["stored-order"]
    stored.serve(clean_emulator)
    day = dataset().days[1]
    served = stored.served("inapp", day)
    emitted = sorted_prefix(served) - 1
    wrong = served[emitted + 2]["timestamp"]  # the bookmark claims ``emitted`` records, ending with a later one
    assert wrong != served[emitted - 1]["timestamp"]
    state = {
        "bookmarks": {
            "inapp_logs": {
                "day": day.isoformat(),
                "day_records_emitted": emitted,
                "last_timestamp": iso(wrong),
                "minute_records_emitted": 1,
            }
        }
    }
    run = run_tap(base_config(clean_emulator, categories=["inapp"], end_date=day.isoformat()), state=state)

    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert len(run.error_lines) == 1, run.error_lines
    assert f"inapp logs of UTC day {day.isoformat()} out of timestamp order" in run.error_lines[0]
    found = f"a record of {iso(served[emitted - 1]['timestamp'])} at position {emitted - 1}"
    assert found in run.error_lines[0]
    assert run.records.get("inapp_logs", []) == []
    assert run.states
    for emitted_state in run.states:  # the bookmark never moves (the SDK adds its own fields next to it)
        assert_bookmark(emitted_state["bookmarks"]["inapp_logs"], state["bookmarks"]["inapp_logs"])
