"""A Logs API client for the emulator tests: requests as a client makes them, the data they should return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import requests

from emulators.__main__ import build_parser
from emulators.kahuna_data import KahunaDataset, dataset_from_options
from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT

FIXED_NOW = FIXED_NOW_TEXT
SMALL_ARGS = ["--days", "5", "--logs-per-day", "120"]  # tests/conftest.py SMALL_DATA["kahuna"]
SECRET, KEY = "kahuna-demo-secret", "kahuna-demo-key"
AUTH = (SECRET, KEY)
TODAY, YESTERDAY = date(2026, 11, 18), date(2026, 11, 17)
StartEmulator = Callable[..., EmulatorProcess]


def dataset(now: str = FIXED_NOW, env: str = "p", *extra_args: str) -> KahunaDataset:
    """The data an emulator started with the small data set (and ``extra_args``) serves at ``now``."""
    options = build_parser().parse_args(["kahuna", *SMALL_ARGS, *extra_args])
    return dataset_from_options(options, datetime.fromisoformat(now), env)


def post(emulator: EmulatorProcess, body: Any, env: str | None = "p", auth: Any = AUTH) -> requests.Response:
    """One Logs API call as a client makes it."""
    params = {} if env is None else {"env": env}
    return requests.post(f"{emulator.url}/api/kahunalogs", params=params, json=body, auth=auth, timeout=30)


def day_timestamp(day: date, clock: str = "0:00") -> str:
    """The request format ``m/dd/yyyy h:mm``."""
    return f"{day.month}/{day.day:02d}/{day.year} {clock}"


def assert_error(response: requests.Response, status: int, detail_part: str) -> dict[str, Any]:
    """The API's error body with ``status`` and ``detail_part`` in ``error_detail``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error", "error_code", "error_detail"}
    assert body["success"] is False
    assert body["error_code"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    assert detail_part in body["error_detail"], body["error_detail"]
    return body


def read_pages(
    emulator: EmulatorProcess, categories: list[str], timestamp: str, page_size: int, env: str = "p"
) -> list[dict[str, Any]]:
    """Every page of one request, following cursors while ``more_records``, as a client does."""
    pages = []
    body: dict[str, Any] = {"timestamp": timestamp}
    while True:
        response = post(emulator, {**body, "number_of_records": page_size, "categories_to_return": categories}, env)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if not page["more_records"]:
            assert "cursor" not in page
            return pages
        body = {"cursor": page["cursor"]}


def by_category(pages: list[dict[str, Any]], categories: list[str]) -> dict[str, list[dict]]:
    """The records of every page, per category, in order."""
    return {category: [record for page in pages for record in page[category]] for category in categories}


@dataclass
class DayRead:
    """What :func:`read_day_exactly_once` got: the day's records and how the server delivered them."""

    records: list[dict[str, Any]] = field(default_factory=list)
    chains: list[list[int]] = field(default_factory=list)  # page sizes of each cursor chain, in order
    starts: list[str] = field(default_factory=list)  # the timestamp of each chain's first request
    server_errors: int = 0
    expired_cursors: int = 0


def read_day_exactly_once(
    emulator: EmulatorProcess, category: str, day: date, number_of_records: int, max_chains: int = 200
) -> DayRead:
    """Read a day as a client that is exactly-once under both readings of ``number_of_records`` must.

    Each chain starts from the minute of the last record held (00:00 at first) and the records of that
    minute already held come back first and are skipped; a 5xx is retried; an expired cursor starts a
    new chain the same way. The day is done when a chain that ended by itself brought nothing new.
    """
    read = DayRead()
    for _ in range(max_chains):
        minute = read.records[-1]["timestamp"][11:16] if read.records else "00:00"
        held_of_minute = [r for r in read.records if r["timestamp"][11:16] == minute]
        received, ended = _read_chain(emulator, category, day, minute, number_of_records, read)
        assert received[: len(held_of_minute)] == held_of_minute[: len(received)], "a chain starts at its minute"
        new = received[len(held_of_minute) :]
        read.records.extend(new)
        if ended and not new:
            return read
    raise AssertionError(f"the day was not done after {max_chains} chains")


def _read_chain(
    emulator: EmulatorProcess, category: str, day: date, minute: str, number_of_records: int, read: DayRead
) -> tuple[list[dict[str, Any]], bool]:
    """One cursor chain from ``minute``: its records, and whether it ended by itself (not by an expired cursor)."""
    hour, _, minutes = minute.partition(":")
    body: dict[str, Any] = {"timestamp": day_timestamp(day, f"{int(hour)}:{minutes}")}
    read.starts.append(body["timestamp"])
    read.chains.append([])
    received: list[dict[str, Any]] = []
    for _ in range(1000):
        response = post(emulator, {**body, "number_of_records": number_of_records, "categories_to_return": [category]})
        if response.status_code >= 500:
            read.server_errors += 1
            continue
        if response.status_code == 400 and "has expired" in response.json()["error_detail"]:
            read.expired_cursors += 1
            return received, False
        assert response.status_code == 200, response.text
        page = response.json()
        received.extend(page[category])
        read.chains[-1].append(len(page[category]))
        if not page["more_records"]:
            assert "cursor" not in page
            return received, True
        body = {"cursor": page["cursor"]}
    raise AssertionError("a cursor chain did not end after 1000 requests")
