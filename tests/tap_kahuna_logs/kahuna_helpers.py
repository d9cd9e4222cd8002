"""Helpers for the tap-kahuna-logs tests: the emulator and the expected rows from its dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from emulators.kahuna_data import KahunaDataset
from emulators.kahuna_readings import CONTRACT_READINGS, stored_order
from emulators.testing import EmulatorProcess
from tests.support.cli import TAP_KAHUNA as TAP
from tests.support.datasets import (
    FIXED_NOW_TEXT as NOW,
    KAHUNA_API_KEY as API_KEY,
    KAHUNA_CATEGORIES as CATEGORIES,
    KAHUNA_SECRET_KEY as SECRET_KEY,
    KAHUNA_STREAMS as STREAMS,
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


def sorted_prefix(records: list[dict[str, Any]]) -> int:
    """How many of ``records`` come first in timestamp order (by minute, as the tap tells order)."""
    latest = ""
    for index, raw in enumerate(records):
        minute = raw["timestamp"][:16]
        if minute < latest:
            return index
        latest = minute
    return len(records)


def request_minute(day: date, minute: str = "00:00") -> str:
    """The ``timestamp`` of a request for ``day`` from ``minute`` (default its start)."""
    return f"{day.strftime('%m/%d/%Y')} {minute}"


@dataclass(frozen=True)
class DayReading:
    """One way a server may read the seed's paging sentences, as the emulator serves it: its readings
    (``/_emulator/kahuna/readings``, the rest as the contract reads them), its reading of ``number_of_records``
    (``/_emulator/kahuna/paging``) and how often its cursors expire."""

    readings: dict[str, Any] = field(default_factory=dict)
    records_cap: str = "page"
    chain_page_size: int = 5
    expire_rate: float = 0.0
    #: the least ``page_size`` a client needs under this reading: under the chain cap, more than the fullest
    #: minute of the small data set holds (19 records), or the tap stops with its one line; with cursors expiring
    #: and restarts answered from 00:00, enough that a chain from 00:00 often gets past the records held (else
    #: ten expiries in a row stop the day with its one line)
    min_page_size: int = 1

    def config(self, emulator: EmulatorProcess, **overrides: Any) -> dict[str, Any]:
        """:func:`base_config` with ``overrides``, its ``page_size`` at least ``min_page_size``."""
        config = base_config(emulator, **overrides)
        return {**config, "page_size": max(config["page_size"], self.min_page_size)}

    @property
    def order(self) -> str:
        """The order the server sends a day's records in."""
        return str(self.readings.get("order", "timestamp"))

    @property
    def in_timestamp_order(self) -> bool:
        """Whether the server sends records in timestamp order (then bookmarks carry a minute)."""
        return self.order == "timestamp"

    def serve(self, emulator: EmulatorProcess) -> EmulatorProcess:
        """Switch ``emulator`` to this reading (cursor expiry reseeded, so each run meets the same expiries)."""
        emulator.control("kahuna/paging", {"records_cap": self.records_cap, "chain_page_size": self.chain_page_size})
        wanted = {**CONTRACT_READINGS, **self.readings}
        assert emulator.control("kahuna/readings", wanted) == wanted
        emulator.control("kahuna/cursors", {"expire_rate": self.expire_rate, "seed": 7})
        return emulator

    def served(
        self, category: str, day: date, now: str = NOW, data: KahunaDataset | None = None
    ) -> list[dict[str, Any]]:
        """``category``'s records of ``day`` in the order the server sends them from 00:00 at ``now`` (of ``data``,
        default the small data set at ``now``)."""
        data = data or dataset(now)
        records = data.records(category, day)
        return records if self.in_timestamp_order else stored_order(records, data.now_text, self.order)

    def rows(
        self, category: str, now: str = NOW, days: list[date] | None = None, data: KahunaDataset | None = None
    ) -> list[tuple[str, int, dict]]:
        """(log_date, log_position, raw record) for every record of ``category`` the server sends at ``now``."""
        data = data or dataset(now)
        return [
            (day.isoformat(), position, raw)
            for day in days or data.days
            for position, raw in enumerate(self.served(category, day, now, data))
        ]

    def keys(
        self, category: str, now: str = NOW, days: list[date] | None = None, data: KahunaDataset | None = None
    ) -> list[tuple[str, int]]:
        """The primary key of every record of ``category`` the server sends at ``now``, in order."""
        return [(day, position) for day, position, _ in self.rows(category, now, days, data)]

    def bookmark(self, category: str, day: date, now: str = NOW) -> dict[str, Any]:
        """The bookmark once all of ``category``'s ``day`` (as served at ``now``) is emitted: with its last minute
        while the records served so far are in timestamp order, without one (the next run re-reads the day from
        00:00 by position) once one came out of order."""
        records = self.served(category, day, now)
        if sorted_prefix(records) < len(records):
            return {"day": day.isoformat(), "day_records_emitted": len(records), "last_timestamp": None}
        last = records[-1]["timestamp"]
        return {
            "day": day.isoformat(),
            "day_records_emitted": len(records),
            "last_timestamp": iso(last),
            "minute_records_emitted": sum(1 for raw in records if raw["timestamp"][:16] == last[:16]),
        }


#: The readings every day-reading test runs under: each a client can be exact under, alone and together, under
#: the page-size reading of ``number_of_records`` and under the chain cap (with readings a capped client can get
#: past; the others are ``test_readings``' one-line stops). ``order: one_late`` is left to ``test_readings``: a
#: record arriving late into a part of today read before is beyond every client's request (README, known limits).
DAY_READINGS: dict[str, DayReading] = {
    "contract": DayReading(),
    "more_records-absent": DayReading({"last_page_more_records": "absent"}),
    "pages-overlap": DayReading({"page_overlap": True}),
    "stored-order": DayReading({"order": "stored"}),
    "expiring-cursors-generic-400-restart-from-day-start": DayReading(
        {"cursor_error": "generic", "restart_from": "day_start"}, expire_rate=0.08, min_page_size=17
    ),
    "all-at-once": DayReading(
        {
            "last_page_more_records": "absent",
            "cursor_error": "generic",
            "restart_from": "day_start",
            "page_overlap": True,
            "order": "stored",
        },
        expire_rate=0.08,
        min_page_size=17,
    ),
    "chain-cap": DayReading(records_cap="chain", min_page_size=25),
    "chain-cap-all-in-order": DayReading(
        {"last_page_more_records": "absent", "cursor_error": "generic", "page_overlap": True},
        records_cap="chain",
        expire_rate=0.08,
        min_page_size=25,
    ),
}
