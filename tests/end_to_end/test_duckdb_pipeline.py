"""``meltano run`` of the Kaon and Kahuna jobs into DuckDB: exact rows, incremental state, upserts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import MeltanoProject, as_date, record_counts
from tests.support.datasets import FIXED_NOW, KAHUNA_STREAMS

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
