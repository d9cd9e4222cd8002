"""``meltano run`` of the Kaon and Kahuna jobs into DuckDB: exact rows, incremental state, upserts."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import MeltanoProject, as_date, record_counts
from tests.support.datasets import FIXED_NOW, KAHUNA_STREAMS, StoredOrder, kahuna_emulator_dataset

KAHUNA_DAYS = 5
KAHUNA_LOGS_PER_DAY = 120
KAHUNA_STATE_ID = "dev:tap-kahuna-logs-to-target-duckdb"

pytestmark = pytest.mark.meltano


def kahuna_settings(kahuna: EmulatorProcess) -> dict[str, str]:
    """Settings that point the dev environment's Kahuna tap at this emulator's days."""
    first_day = FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)
    return {
        "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
        "TAP_KAHUNA_LOGS_START_DATE": first_day.isoformat(),
        # the tap's "today" is the machine's; the emulator's clock is frozen in the tests
        "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
        "TAP_KAHUNA_LOGS_MAX_CONCURRENCY": "2",
    }


def expected_kahuna_keys(dataset: KahunaDataset, category: str) -> set[tuple[str, int]]:
    """(log_date, log_position) of every record the emulator serves in one category."""
    return {
        (day.isoformat(), position) for day in dataset.days for position in range(len(dataset.records(category, day)))
    }


def loaded_kahuna_keys(project: MeltanoProject, table: str) -> list[tuple[str, int]]:
    """(log_date, log_position) of every row of one DuckDB table (duplicates kept)."""
    rows = project.query(f"select log_date, log_position from kahuna.{table}")  # noqa: S608 (our table names)
    return [(as_date(day).isoformat(), int(position)) for day, position in rows]


def requested_days(kahuna: EmulatorProcess) -> set[date]:
    """The UTC days the Kahuna emulator was asked for (by ``timestamp``; cursors continue one of them)."""
    bodies = [request["json"] for request in kahuna.requests() if isinstance(request.get("json"), dict)]
    return {
        datetime.strptime(body["timestamp"].split()[0], "%m/%d/%Y").date() for body in bodies if "timestamp" in body
    }


def test_kahuna_logs_land_exactly_then_today_is_upserted(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kahuna = start_emulator("kahuna")
    project.settings.update(kahuna_settings(kahuna))
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")

    first = project.run("run", "kahuna-to-warehouse")

    for category, table in KAHUNA_STREAMS.items():
        keys = loaded_kahuna_keys(project, table)
        assert len(keys) == len(set(keys))
        assert set(keys) == expected_kahuna_keys(dataset, category), table
    first_counts = record_counts(first.stderr)
    assert sum(first_counts.values()) == sum(len(expected_kahuna_keys(dataset, c)) for c in KAHUNA_STREAMS)
    assert project.state(KAHUNA_STATE_ID)["completed"]["singer_state"]["bookmarks"]

    # Two hours later, today's log has grown; nothing else changed.
    later = FIXED_NOW + timedelta(hours=2)
    kahuna.set_clock(now=later.isoformat())
    kahuna.reset()
    second = project.run("run", "kahuna-to-warehouse")

    later_dataset = dataset.at(later)
    assert requested_days(kahuna) == {FIXED_NOW.date()}
    today = FIXED_NOW.date()
    second_counts = record_counts(second.stderr)
    grown_today = sum(len(later_dataset.records(c, today)) - len(dataset.records(c, today)) for c in KAHUNA_STREAMS)
    assert grown_today > 0
    assert (
        grown_today <= sum(second_counts.values()) <= sum(len(later_dataset.records(c, today)) for c in KAHUNA_STREAMS)
    )
    for category, table in KAHUNA_STREAMS.items():
        keys = loaded_kahuna_keys(project, table)
        assert len(keys) == len(set(keys)), f"{table} holds duplicates after the second run"
        assert set(keys) == expected_kahuna_keys(later_dataset, category), table


def test_kahuna_logs_land_exactly_when_the_api_caps_each_cursor_chain(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    """The capped reading of number_of_records (chains of page_size records, paged by 100): every row once."""
    shape = [
        "--logs-per-day",
        "900",
        "--same-timestamp-run",
        "120",
        "--burst-minute",
        "10:15",
        "--burst-records",
        "150",
    ]
    kahuna = start_emulator("kahuna", "--records-cap", "chain", "--chain-page-size", "100", *shape)
    project.settings.update({**kahuna_settings(kahuna), "TAP_KAHUNA_LOGS_PAGE_SIZE": "300"})
    dataset = kahuna_emulator_dataset(*shape)

    project.run("run", "kahuna-to-warehouse")

    for category, table in KAHUNA_STREAMS.items():
        expected = expected_kahuna_keys(dataset, category)
        (count,) = project.query(f"select count(*) from kahuna.{table}")[0]  # noqa: S608 (our table names)
        assert count == len(expected) == sum(len(dataset.records(category, day)) for day in dataset.days), table
        assert set(loaded_kahuna_keys(project, table)) == expected, table
    starts = Counter(
        (r["json"]["categories_to_return"][0], r["json"]["timestamp"].split()[0])
        for r in kahuna.requests()
        if "timestamp" in r["json"]
    )
    for category in KAHUNA_STREAMS:
        for day in dataset.days:
            # each chain stops at 300 records; the day goes on from the minute of its last, then one check for more
            chains = math.ceil(len(dataset.records(category, day)) / 300) + 1
            assert starts[category, f"{day:%m/%d/%Y}"] >= chains, (category, day)


#: Every reading of the Kahuna seed a client can be exact under, at once (see tests/tap_kahuna_logs/test_readings.py).
ADVERSARIAL_KAHUNA_READINGS = {
    "last_page_more_records": "absent",
    "cursor_error": "generic",
    "restart_from": "day_start",
    "page_overlap": True,
    "order": "stored",
}


def test_kahuna_logs_land_exactly_under_the_most_adversarial_readings(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kahuna = start_emulator("kahuna")
    kahuna.control("kahuna/readings", ADVERSARIAL_KAHUNA_READINGS)
    kahuna.control("kahuna/cursors", {"expire_rate": 0.15, "seed": 4})
    project.settings.update({**kahuna_settings(kahuna), "TAP_KAHUNA_LOGS_PAGE_SIZE": "25"})
    dataset = StoredOrder(kahuna_emulator_dataset())

    first = project.run("run", "kahuna-to-warehouse")

    assert kahuna.control("kahuna/cursors")["expired_answers"] > 0, "cursors expired (a generic 400) mid-chain"
    for category, table in KAHUNA_STREAMS.items():
        keys = loaded_kahuna_keys(project, table)
        assert len(keys) == len(set(keys)), f"{table}: a row loaded twice"
        assert set(keys) == expected_kahuna_keys(dataset, category), table
    assert sum(record_counts(first.stderr).values()) == sum(
        len(expected_kahuna_keys(dataset, category)) for category in KAHUNA_STREAMS
    )
    bookmarks = project.state(KAHUNA_STATE_ID)["completed"]["singer_state"]["bookmarks"]
    assert any(bookmark["last_timestamp"] is None for bookmark in bookmarks.values()), "some stream came unsorted"
    today = dataset.days[-1]
    for category, table in KAHUNA_STREAMS.items():
        served = dataset.records(category, today)
        minutes = [raw["timestamp"][:16] for raw in served]
        if any(minute < max(minutes[:i]) for i, minute in enumerate(minutes) if i):
            # records out of timestamp order: no minute to resume from, the next run re-reads today by position
            assert bookmarks[table]["last_timestamp"] is None, bookmarks[table]
        else:  # a day whose late records still came in order
            assert bookmarks[table]["last_timestamp"].startswith(served[-1]["timestamp"].replace(" ", "T"))
        assert bookmarks[table]["day"] == today.isoformat()
        assert bookmarks[table]["day_records_emitted"] == len(dataset.records(category, today))

    kahuna.reset()
    second = project.run("run", "kahuna-to-warehouse")
    assert sum(record_counts(second.stderr).values()) == 0, "nothing new: nothing re-sent"
    assert requested_days(kahuna) == {FIXED_NOW.date()}
    for category, table in KAHUNA_STREAMS.items():
        assert set(loaded_kahuna_keys(project, table)) == expected_kahuna_keys(dataset, category), table
