"""Shards side by side: 4 Kahuna partitions and 3 Kaon external IDs in one run of the multi-process executor,
then the dbt build of the marts, as the PostgreSQL load schedules run it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import LOAD_SHARDS_JOB, shards_run_config
from kk_orchestration.shards import state_id_suffix
from tests.end_to_end.meltano_helpers import EVENT_PREFIXES, FIXED_NOW, unix
from tests.end_to_end.replay_helpers import read_marts
from tests.orchestration.dagster_helpers import (
    KAHUNA_TABLES,
    DagsterProject,
    clicks_table,
    comparable,
    expected_clicks_table,
    expected_kahuna_rows,
    kahuna_key,
    kahuna_rows,
    kaon_dataset,
    point_at_emulators,
)

pytestmark = [pytest.mark.meltano, pytest.mark.postgres, pytest.mark.slow]

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 40
SHARDS = 7


def test_kahuna_and_kaon_partitions_load_concurrently_each_with_its_own_state(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kaon = start_emulator("kaon")
    start = FIXED_NOW - timedelta(days=KAHUNA_DAYS - 1)
    point_at_emulators(dagster_project.meltano, kahuna=kahuna, kaon=kaon, kahuna_start=start)
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    days = dataset.days
    kahuna_partitions = [("inapp", days[0]), ("push", days[1]), ("email", days[2]), ("user_merge", days[2])]
    kaon_data = kaon_dataset()
    external_ids = kaon_data.external_id_names

    dagster_project.execute(
        LOAD_SHARDS_JOB,
        shards_run_config(
            {
                "kahuna_logs": [kahuna_key(category, day) for category, day in kahuna_partitions],
                "kaon_clickstreams": external_ids,
            },
            max_concurrent=SHARDS,
            build_marts=True,  # as the kahuna-to-postgres and kaon-to-postgres schedules ask
        ),
    )

    # Every table holds exactly what the emulators serve for the partitions run, nothing else, no duplicate.
    for category, day in kahuna_partitions:
        loaded = [comparable(row) for row in kahuna_rows(warehouse, category)]
        assert len(loaded) == len(set(loaded)), KAHUNA_TABLES[category]
        assert set(loaded) == expected_kahuna_rows(dataset, category, day), KAHUNA_TABLES[category]
    assert clicks_table(warehouse) == expected_clicks_table(kaon_data, external_ids)

    # One state ID per shard, named by its partition, with that partition's bookmark.
    kahuna_ids = {
        f"dev:tap-kahuna-logs-to-target-postgres:{category}-{day.isoformat()}": (category, day)
        for category, day in kahuna_partitions
    }
    kaon_ids = {
        f"dev:tap-kaon-insights--clicks-to-target-postgres:{state_id_suffix(external_id)}": external_id
        for external_id in external_ids
    }
    assert dagster_project.state_ids() == set(kahuna_ids) | set(kaon_ids)
    assert "dev:tap-kaon-insights--clicks-to-target-postgres:user_42_test_example.com-" in " ".join(kaon_ids)
    states = dagster_project.completed_states()
    for state_id, (category, day) in kahuna_ids.items():
        bookmarks = states[state_id]["singer_state"]["bookmarks"]
        assert set(bookmarks) == {KAHUNA_TABLES[category]}, state_id
        bookmark = bookmarks[KAHUNA_TABLES[category]]
        assert bookmark["day"] == day.isoformat()
        assert bookmark["day_records_emitted"] == len(dataset.records(category, day))
    for state_id, external_id in kaon_ids.items():
        partitions = states[state_id]["singer_state"]["bookmarks"]["external_id_hits"]["partitions"]
        assert [p["context"]["external_id"] for p in partitions] == [external_id]
        assert partitions[0]["replication_key_value"] == kaon_data.clickstream(external_id)[-1]["timestamp"]

    # Dagster knows each partition as materialized, and the shards ran side by side.
    assert dagster_project.materialized_partitions("kahuna_logs") == {kahuna_key(c, d) for c, d in kahuna_partitions}
    assert dagster_project.materialized_partitions("kaon_clickstreams") == set(external_ids)
    (run,) = dagster_project.runs()
    shard_steps = [
        stats for key, stats in dagster_project.step_stats(run.run_id).items() if key.startswith("load_shard")
    ]
    assert len(shard_steps) == SHARDS
    assert max(stats.start_time for stats in shard_steps) < min(stats.end_time for stats in shard_steps)

    # Then, once every shard succeeded, one dbt build: the marts hold the loaded partitions' events.
    (build,) = [stats for key, stats in dagster_project.step_stats(run.run_id).items() if key.startswith("build")]
    assert build.start_time >= max(stats.end_time for stats in shard_steps)
    assert dagster_project.materialization_count("marts/kissmetrics_events") == 1
    checks = dagster_project.check_evaluations(run.run_id)  # the dbt tests, as the models' asset checks
    assert ("marts/kissmetrics_events", "unique_kissmetrics_events_event_id") in checks
    assert [check for check, passed in checks.items() if not passed] == []
    marts = read_marts(lambda sql: warehouse.execute(sql).fetchall())
    events = marts["kissmetrics_events"]
    kahuna_events = {
        (r["person"], r["event"], int(r["timestamp"].timestamp())) for r in events if r["source"] != "kaon_click"
    }
    assert kahuna_events == {
        (str(record["user_id"]), f"{EVENT_PREFIXES[category]} {record['action']}", unix(record["timestamp"]))
        for category, day in kahuna_partitions
        if category in EVENT_PREFIXES
        for record in dataset.records(category, day)
        if record.get("user_id") and record.get("action")
    }
    clicks = [r["person"] for r in events if r["source"] == "kaon_click"]
    assert sorted(clicks) == sorted(key[1] for key in expected_clicks_table(kaon_data, external_ids))


def test_backfill_shards_across_categories_load_every_category_of_their_days_under_one_state_id(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    start = FIXED_NOW - timedelta(days=KAHUNA_DAYS - 1)
    point_at_emulators(dagster_project.meltano, kahuna=kahuna, kahuna_start=start)
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    days = dataset.days
    keys = [kahuna_key(category, day) for category in KAHUNA_TABLES for day in days]

    dagster_project.execute(
        LOAD_SHARDS_JOB,
        shards_run_config({"kahuna_logs": keys}, max_concurrent=2, periods_per_shard=2, across_series=True),
    )

    # Two shards (the first two days, the last one), each reading all four categories: every row once.
    for category in KAHUNA_TABLES:
        loaded = [comparable(row) for row in kahuna_rows(warehouse, category)]
        assert len(loaded) == len(set(loaded)), KAHUNA_TABLES[category]
        assert set(loaded) == {row for day in days for row in expected_kahuna_rows(dataset, category, day)}
    pipeline = "dev:tap-kahuna-logs-to-target-postgres"
    shard_days = {
        f"{pipeline}:email.inapp.push.user_merge-{days[0].isoformat()}--{days[1].isoformat()}": days[1],
        f"{pipeline}:email.inapp.push.user_merge-{days[2].isoformat()}": days[2],
    }
    assert dagster_project.state_ids() == set(shard_days)
    states = dagster_project.completed_states()
    for state_id, last_day in shard_days.items():
        bookmarks = states[state_id]["singer_state"]["bookmarks"]
        assert set(bookmarks) == set(KAHUNA_TABLES.values()), state_id
        for category, stream in KAHUNA_TABLES.items():
            assert bookmarks[stream]["day"] == last_day.isoformat(), (state_id, stream)
            assert bookmarks[stream]["day_records_emitted"] == len(dataset.records(category, last_day))
    assert dagster_project.materialized_partitions("kahuna_logs") == set(keys)
    (run,) = dagster_project.runs()
    steps = dagster_project.step_stats(run.run_id)
    assert len([key for key in steps if key.startswith("load_shard")]) == 2
    # No build_marts asked: the dbt build step is skipped (no process, no dbt run), the marts untouched.
    assert steps["build_marts_after_loads"].status.value == "SKIPPED"
    assert steps["build_marts_after_loads"].start_time is None
    assert dagster_project.materialization_count("marts/kissmetrics_events") == 0
