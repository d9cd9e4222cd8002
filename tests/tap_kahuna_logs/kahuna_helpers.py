"""Helpers for the tap-kahuna-logs tests: the emulator and the expected rows from its dataset."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.support.cli import TAP_KAHUNA as TAP
from tests.support.datasets import (
    FIXED_NOW_TEXT as NOW,
    KAHUNA_API_KEY as API_KEY,
    KAHUNA_CATEGORIES as CATEGORIES,
    KAHUNA_SECRET_KEY as SECRET_KEY,
    KAHUNA_STREAMS as STREAMS,
    SMALL_DATA,
    kahuna_dataset,
    kahuna_emulator_dataset,
)

__all__ = ["API_KEY", "CATEGORIES", "NOW", "SECRET_KEY", "STREAMS", "TAP"]

#: Days of 3,801 records per category: 3,201 spread over the day with a run of 300 sharing one timestamp, plus a
#: burst of 600 in the minute 10:15 (the last day partial, up to NOW).
HARD_DAYS = [
    *("--days", "3", "--logs-per-day", "3200", "--day-size-jitter", "0", "--same-timestamp-run", "300"),
    *("--burst-minute", "10:15", "--burst-records", "600"),
]


def start_kahuna(*args: str) -> EmulatorProcess:
    """A Kahuna emulator with the small data set, frozen at NOW (later args win)."""
    return EmulatorProcess("kahuna", "--now", NOW, *SMALL_DATA["kahuna"], *args)


def dataset(now: str = NOW, env: str = "p") -> Any:
    """The emulator's deterministic data for ``now``."""
    return kahuna_dataset(datetime.fromisoformat(now), env=env)


def emulator_dataset(*args: str, now: str = NOW, env: str = "p") -> KahunaDataset:
    """The data an emulator started with ``start_kahuna(*args)`` serves at ``now`` (its data knobs included)."""
    return kahuna_emulator_dataset(*args, now=datetime.fromisoformat(now), env=env)


def first_day() -> date:
    """The oldest day the emulator has."""
    return dataset().days[0]


def base_config(emulator: EmulatorProcess, **overrides: Any) -> dict[str, Any]:
    """A config that reads the emulator's whole data set up to its today, in small pages."""
    data = dataset()
    config: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "api_key": API_KEY,
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": data.days[0].isoformat(),
        "end_date": data.days[-1].isoformat(),
        "page_size": 17,
        "max_concurrency": 3,
        "max_retries": 4,
    }
    config.update(overrides)
    return config


def expected_rows(category: str, now: str = NOW, days: list[date] | None = None) -> list[tuple[str, int, dict]]:
    """(log_date, log_position, raw record) for every record of ``category`` the API holds at ``now``."""
    data = dataset(now)
    rows = []
    for day in days or data.days:
        rows.extend((day.isoformat(), position, raw) for position, raw in enumerate(data.records(category, day)))
    return rows


def keys(records: list[dict]) -> list[tuple[str, int]]:
    """The primary key of each record, in output order."""
    return [(record["log_date"], record["log_position"]) for record in records]


def minute_of(raw: dict[str, Any]) -> str:
    """A raw record's ``HH:MM``."""
    return raw["timestamp"][11:16]


def iso(raw_timestamp: str) -> str:
    """The record form of a raw Kahuna timestamp (``2026-11-18 15:29:59.123456`` -> ISO with ``+00:00``)."""
    return raw_timestamp.replace(" ", "T") + "+00:00"


def data_keys(
    data: KahunaDataset, category: str, days: list[date] | None = None, skip: dict[date, int] | None = None
) -> list[tuple[str, int]]:
    """Every (log_date, log_position) of ``category`` in ``data`` on ``days`` (default all), in order, less each
    day's first ``skip[day]``."""
    skipped = skip or {}
    return [
        (day.isoformat(), position)
        for day in days or data.days
        for position in range(len(data.records(category, day)))
        if position >= skipped.get(day, 0)
    ]


def bookmark_after(data: KahunaDataset, category: str, day: date, emitted: int) -> dict[str, Any]:
    """The documented bookmark after the first ``emitted`` records (or all) of ``category``'s ``day`` in ``data``."""
    records = data.records(category, day)[:emitted]
    last = records[-1]
    return {
        "day": day.isoformat(),
        "day_records_emitted": len(records),
        "last_timestamp": iso(last["timestamp"]),
        "minute_records_emitted": sum(1 for raw in records if raw["timestamp"][:16] == last["timestamp"][:16]),
    }


def assert_bookmark(bookmark: dict[str, Any], expected: dict[str, Any]) -> None:
    """``bookmark`` holds ``expected``'s fields with their values (the SDK adds its own next to them)."""
    assert {name: bookmark.get(name) for name in expected} == expected
