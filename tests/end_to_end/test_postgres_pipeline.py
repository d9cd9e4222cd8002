"""The PostgreSQL warehouse: Kahuna through target-postgres and dbt, then the marts via tap-postgres -> Kissmetrics.

Needs the server that ``make postgres`` (and ``make test``) starts on 127.0.0.1:$KK_PG_PORT (55432 by default).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import (
    MeltanoProject,
    as_date,
    expected_aliases,
    expected_events,
    primary_key_columns,
)
from tests.support.datasets import FIXED_NOW, KAHUNA_STREAMS

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 60

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]


def test_kahuna_through_postgres_then_replayed_into_kissmetrics(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kissmetrics = start_emulator("kissmetrics")
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url,
        }
    )
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")

    project.run("run", "kahuna-to-postgres")

    for category, table in KAHUNA_STREAMS.items():
        rows = warehouse.execute(f"SELECT log_date, log_position FROM kahuna.{table}").fetchall()  # noqa: S608
        keys = [(as_date(day), int(position)) for day, position in rows]
        expected = {(day, position) for day in dataset.days for position in range(len(dataset.records(category, day)))}
        assert len(keys) == len(set(keys)), table
        assert set(keys) == expected, table
    assert primary_key_columns(warehouse, "kahuna.inapp_logs") == ["log_date", "log_position"]

    # The load job ended with dbt build: the marts are there before any replay.
    merges = warehouse.execute("SELECT person, alias FROM marts.kissmetrics_aliases WHERE source = 'kahuna_merge'")
    assert {frozenset(pair) for pair in merges.fetchall()} == expected_aliases(dataset, self_merges=False)

    project.run("run", "postgres-to-kissmetrics")

    dedup = kissmetrics.control("dedup")
    events = {(event["person"], event["event"], event["time"]) for event in dedup["events"]}
    assert events == expected_events(dataset)
    assert {frozenset(pair) for pair in dedup["aliases"]} >= expected_aliases(dataset, self_merges=False)
    platforms = {(item["person"], item["value"]) for item in dedup["properties"] if item["name"] == "platform"}
    platform_rows = warehouse.execute(
        "SELECT person, platform FROM marts.kissmetrics_people WHERE platform IS NOT NULL"
    )
    assert platforms == set(platform_rows.fetchall())
    assert platforms
