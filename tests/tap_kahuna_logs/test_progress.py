"""Positions inside a day and their bookmarks (pure): what a resume starts from, old bookmarks included."""

from __future__ import annotations

from datetime import date

import pytest

from tap_kahuna_logs.progress import DayProgress, progress_from_bookmark, record_minute

DAY = date(2026, 11, 17)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-17 14:03:51.118260", ("2026-11-17", "14:03")),  # as the API sends it
        ("2026-11-17T14:03:51.118260+00:00", ("2026-11-17", "14:03")),  # as records carry it
        ("2026-11-17 14:03:51", ("2026-11-17", "14:03")),
        ("2026-11-18 01:30:00+02:00", ("2026-11-17", "23:30")),  # an offset is converted to UTC
        ("2026-11-17T14:03:51.1+0530", ("2026-11-17", "08:33")),
        ("not a time", None),
        (None, None),
        (1700000000, None),
    ],
)
def test_record_minute_is_the_utc_day_and_minute(timestamp: object, expected: tuple[str, str] | None) -> None:
    assert record_minute(timestamp) == expected


def test_progress_counts_the_records_of_the_latest_minute_and_never_moves_back() -> None:
    progress = DayProgress(DAY)
    for timestamp in [
        "2026-11-17 00:00:00.000000",
        "2026-11-17 14:03:01.000000",
        "2026-11-17 14:03:02.000000",
        "2026-11-17 14:02:59.000000",  # out of order: counted in the day, not in the minute
        None,  # no readable timestamp: the same
        "2026-11-16 23:59:59.000000",  # another day: the same (the reader stops on it before it counts)
        "2026-11-17 14:03:02.000000",
    ]:
        progress.advance(timestamp)
    assert (progress.records, progress.minute, progress.minute_records) == (7, "14:03", 3)
    assert progress.unsorted, "records out of order: the day is continued by position"
    # no minute in the bookmark: the next run re-reads the day from 00:00 and skips the 7 records by position
    assert progress.bookmark() == {
        "day": "2026-11-17",
        "day_records_emitted": 7,
        "last_timestamp": None,
        "minute_records_emitted": 3,
    }
    assert progress_from_bookmark(progress.bookmark()) == (DayProgress(DAY), 7)


def test_progress_in_timestamp_order_bookmarks_its_minute() -> None:
    progress = DayProgress(DAY)
    for timestamp in ["2026-11-17 00:00:00.000000", "2026-11-17 14:03:01.000000", "2026-11-17 14:03:02.000000"]:
        progress.advance(timestamp)
    assert not progress.unsorted
    assert progress.bookmark() == {
        "day": "2026-11-17",
        "day_records_emitted": 3,
        "last_timestamp": "2026-11-17 14:03:02.000000",
        "minute_records_emitted": 2,
    }


def test_a_bookmark_resumes_at_its_minute_with_nothing_to_skip() -> None:
    bookmark = {
        "day": "2026-11-17",
        "day_records_emitted": 1843,
        "last_timestamp": "2026-11-17T14:03:51.118260+00:00",
        "minute_records_emitted": 2,
        "replication_key": "timestamp",
    }
    resume = progress_from_bookmark(bookmark)
    assert resume is not None
    progress, skip = resume
    assert (progress.day, progress.records, progress.minute, progress.minute_records, skip) == (
        DAY,
        1843,
        "14:03",
        2,
        0,
    )
    assert progress.bookmark() == {name: bookmark[name] for name in progress.bookmark()}


@pytest.mark.parametrize(
    "bookmark",
    [
        {"day": "2026-11-17", "day_records_emitted": 7},  # written by 0.1.x
        {"day": "2026-11-17", "day_records_emitted": 7, "last_timestamp": None, "minute_records_emitted": 0},
        {"day": "2026-11-17", "day_records_emitted": 7, "last_timestamp": "2026-11-16T23:59:00.000000+00:00"},
        {"day": "2026-11-17", "day_records_emitted": 7, "last_timestamp": "2026-11-17T01:00:00+00:00"},  # count 0
        {
            "day": "2026-11-17",
            "day_records_emitted": 7,
            "last_timestamp": "2026-11-17T01:00:00+00:00",
            "minute_records_emitted": 8,
        },
    ],
    ids=["0.1.x", "no-readable-timestamp", "timestamp-of-another-day", "no-minute-count", "minute-count-too-big"],
)
def test_a_bookmark_without_a_usable_minute_rereads_its_day_and_skips_by_position(bookmark: dict) -> None:
    assert progress_from_bookmark(bookmark) == (DayProgress(DAY), 7)


def test_no_bookmark_means_no_resume() -> None:
    assert progress_from_bookmark({}) is None
    assert progress_from_bookmark({"replication_key": "timestamp"}) is None
