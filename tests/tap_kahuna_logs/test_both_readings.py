"""Exactly once under both readings of ``number_of_records`` (page size, or cap of a cursor chain), no setting needed.

The emulator serves both (``/_emulator/kahuna/paging``: ``records_cap`` ``page`` or ``chain``, pages of 250 in
chain mode) over days of 3,801 records per category: 3,201 spread over the day with a run of 300 records sharing
one timestamp, plus a burst of 600 records in the minute 10:15. The tap reads with ``page_size`` 700, so in chain
mode every chain stops at 700 records and the day goes on from the minute of the last record held.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tap_kahuna_logs.client import request_timestamp
from tests.emulators.kahuna_client import read_day_exactly_once
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import (
    CATEGORIES,
    STREAMS,
    assert_bookmark,
    base_config,
    bookmark_after,
    data_keys,
    iso,
    minute_of,
)

PAGE_SIZE = 700
READINGS = ("page", "chain")


def request_day_and_minute(body: dict[str, Any]) -> tuple[str, str]:
    """(``MM/DD/YYYY``, ``HH:MM``) of a timestamp request in the 24-hour form."""
    day_text, clock = body["timestamp"].split()
    hour, minutes = clock.split(":")
    return day_text, f"{int(hour):02d}:{minutes}"


def config(emulator: EmulatorProcess, data: KahunaDataset, **overrides: Any) -> dict[str, Any]:
    """Every day of ``data``, pages of PAGE_SIZE, quick retries."""
    settings = {
        "start_date": data.days[0].isoformat(),
        "end_date": data.days[-1].isoformat(),
        "page_size": PAGE_SIZE,
        "max_concurrency": 2,
        "max_retries": 8,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        **overrides,
    }
    return base_config(emulator, **settings)


def assert_exactly_the_data(run: PluginRun, data: KahunaDataset, categories: tuple[str, ...] = CATEGORIES) -> None:
    """Exit 0; every record of the data once, in order, with its own timestamp."""
    assert run.returncode == 0, run.stderr[-3000:]
    for category in categories:
        records = run.rows(STREAMS[category])
        keys = [(record["log_date"], record["log_position"]) for record in records]
        assert keys == data_keys(data, category), category
        raws = [raw for day in data.days for raw in data.records(category, day)]
        assert [record["timestamp"] for record in records] == [iso(raw["timestamp"]) for raw in raws], category


def assert_every_state_matches_the_records_before_it(run: PluginRun, data: KahunaDataset) -> None:
    """Each STATE's bookmark of a stream is exactly where that stream's emitted records stand at that point."""
    last_key: dict[str, tuple[str, int]] = {}
    checked = 0
    for message in run.messages:
        if message["type"] == "RECORD":
            last_key[message["stream"]] = (message["record"]["log_date"], message["record"]["log_position"])
        elif message["type"] == "STATE":
            for category, stream in STREAMS.items():
                if stream not in last_key:
                    continue
                day_text, position = last_key[stream]
                bookmark = message["value"]["bookmarks"][stream]
                if bookmark["day"] != day_text:  # the end-of-day STATE of a day with no record left to emit
                    assert bookmark["day"] > day_text, bookmark
                    assert bookmark["day_records_emitted"] == 0, bookmark
                    continue
                assert_bookmark(bookmark, bookmark_after(data, category, date.fromisoformat(day_text), position + 1))
                checked += 1
    assert checked > len(STREAMS), "mid-day STATE messages were checked, not only the last"


def set_reading(emulator: EmulatorProcess, records_cap: str) -> EmulatorProcess:
    """The emulator in one reading of number_of_records, with no faults and an empty request log."""
    emulator.control("kahuna/paging", {"records_cap": records_cap, "chain_page_size": 250})
    emulator.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, latency_ms=0.0)
    emulator.control("kahuna/cursors", {"expire_rate": 0.0, "expire_after_uses": None})
    emulator.reset()
    return emulator


def test_the_hard_days_hold_what_this_module_relies_on(data: KahunaDataset) -> None:
    yesterday = data.days[-2]
    for category in ("inapp", "push", "email"):
        records = data.records(category, yesterday)
        assert len(records) == 3201 + 600
        per_minute = Counter(minute_of(raw) for raw in records)
        assert per_minute["10:15"] >= 600, "the burst"
        assert max(Counter(raw["timestamp"] for raw in records).values()) >= 300, "the run of equal timestamps"
        assert max(per_minute.values()) < PAGE_SIZE, "every minute fits in one capped chain"


@pytest.mark.parametrize("records_cap", READINGS)
def test_every_record_exactly_once_with_cursor_expiry_and_5xx(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], records_cap: str
) -> None:
    emulator = set_reading(hard_days, records_cap)
    emulator.set_faults(error_rate=0.05, error_statuses=[500, 503], seed=11)
    emulator.control("kahuna/cursors", {"expire_rate": 0.1, "seed": 12})

    run = run_tap(config(emulator, data))

    assert_exactly_the_data(run, data)
    requests = emulator.requests()
    assert sum(1 for r in requests if r["status"] >= 500) > 0, "5xx answers were injected and retried"
    assert emulator.control("kahuna/cursors")["expired_answers"] > 0, "cursors expired mid-chain"
    today = data.days[-1]
    for category, stream in STREAMS.items():
        assert_bookmark(run.final_state["bookmarks"][stream], bookmark_after(data, category, today, 10**9))
    assert_every_state_matches_the_records_before_it(run, data)


def test_page_size_reading_costs_one_request_more_per_category_and_day(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = set_reading(hard_days, "page")
    run = run_tap(config(emulator, data))
    assert_exactly_the_data(run, data)
    requests = [r["json"] for r in emulator.requests()]
    for category in CATEGORIES:
        asked = [body for body in requests if body["categories_to_return"] == [category]]
        expected_requests = 0
        for day in data.days:
            records = data.records(category, day)
            last_minute_records = sum(1 for raw in records if minute_of(raw) == minute_of(records[-1]))
            starts = [request_day_and_minute(b)[1] for b in asked if b.get("timestamp", "").startswith(f"{day:%m/%d}")]
            assert starts == ["00:00", minute_of(records[-1])], (category, day)
            expected_requests += math.ceil(len(records) / PAGE_SIZE) + math.ceil(last_minute_records / PAGE_SIZE)
        assert len(asked) == expected_requests, category


def test_capped_reading_continues_each_day_where_a_reference_client_does(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = set_reading(hard_days, "chain")
    run = run_tap(config(emulator, data))
    assert_exactly_the_data(run, data)
    tap_starts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for request in emulator.requests():
        body = request["json"]
        if "timestamp" in body:
            day_text, start = request_day_and_minute(body)
            tap_starts[body["categories_to_return"][0], day_text].append(start)
    for category in CATEGORIES:
        for day in data.days:
            reference = read_day_exactly_once(emulator, category, day, PAGE_SIZE)
            assert reference.records == data.records(category, day)
            expected = [request_day_and_minute({"timestamp": start})[1] for start in reference.starts]
            assert tap_starts[category, f"{day:%m/%d/%Y}"] == expected, (category, day)
            assert len(expected) >= math.ceil(len(data.records(category, day)) / PAGE_SIZE) + 1


def test_am_pm_timestamp_format_reads_the_same_rows(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = set_reading(hard_days, "chain")
    run = run_tap(config(emulator, data, categories=["push"], timestamp_format="am_pm"))
    assert_exactly_the_data(run, data, ("push",))
    timestamps = [r["json"]["timestamp"] for r in emulator.requests() if "timestamp" in r["json"]]
    inside_days = [text for text in timestamps if not text.endswith(" 00:00")]
    assert len(timestamps) - len(inside_days) == len(data.days), "each day starts at 00:00"
    assert inside_days
    assert all(re.fullmatch(r"\d{2}/\d{2}/\d{4} (1[0-2]|[1-9]):\d{2} (AM|PM)", text) for text in inside_days)
    assert any(text.endswith(" PM") for text in inside_days)


@pytest.mark.parametrize(
    ("clock", "form", "expected"),
    [
        ("00:00", "24h", "11/17/2026 00:00"),
        ("00:00", "am_pm", "11/17/2026 00:00"),
        ("00:30", "24h", "11/17/2026 00:30"),
        ("00:30", "am_pm", "11/17/2026 12:30 AM"),
        ("09:05", "24h", "11/17/2026 09:05"),
        ("09:05", "am_pm", "11/17/2026 9:05 AM"),
        ("12:00", "am_pm", "11/17/2026 12:00 PM"),
        ("13:05", "24h", "11/17/2026 13:05"),
        ("13:05", "am_pm", "11/17/2026 1:05 PM"),
        ("23:59", "am_pm", "11/17/2026 11:59 PM"),
    ],
)
def test_request_timestamp_forms(clock: str, form: str, expected: str) -> None:
    assert request_timestamp(date(2026, 11, 17), clock, form) == expected


@pytest.mark.parametrize("records_cap", READINGS)
def test_bookmarks_inside_a_minute_resume_at_the_next_record(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], records_cap: str
) -> None:
    """Each stream resumes from a bookmark at a hard place of yesterday (computed from the data, as documented)."""
    emulator = set_reading(hard_days, records_cap)
    yesterday = data.days[-2]

    def first_from(category: str, clock: str) -> int:
        return next(i for i, raw in enumerate(data.records(category, yesterday)) if minute_of(raw) >= clock)

    longest_run_at = Counter(raw["timestamp"] for raw in data.records("inapp", yesterday)).most_common(1)[0][0]
    inapp_run_start = next(
        i for i, r in enumerate(data.records("inapp", yesterday)) if r["timestamp"] == longest_run_at
    )
    positions = {
        "inapp": inapp_run_start + 150,  # inside 300 records sharing one timestamp
        "push": first_from("push", "10:15") + 450,  # inside the burst
        "email": first_from("email", "12:00"),  # after the last record of a minute, before the next minute's
        "user_merge": 1,  # after the day's 00:00:00.000000 record
    }
    state = {
        "bookmarks": {
            STREAMS[category]: bookmark_after(data, category, yesterday, position)
            for category, position in positions.items()
        }
    }
    run = run_tap(config(emulator, data, start_date=data.days[0].isoformat()), state=state)

    assert run.returncode == 0, run.stderr[-3000:]
    for category, position in positions.items():
        keys = [(r["log_date"], r["log_position"]) for r in run.rows(STREAMS[category])]
        assert keys == data_keys(data, category, data.days[1:], skip={yesterday: position}), category
        bookmark = state["bookmarks"][STREAMS[category]]
        first_asked = next(
            request_day_and_minute(r["json"])
            for r in emulator.requests()
            if r["json"]["categories_to_return"] == [category]
            and r["json"].get("timestamp", "").startswith(f"{yesterday:%m/%d}")
        )
        assert first_asked == (f"{yesterday:%m/%d/%Y}", bookmark["last_timestamp"][11:16])
