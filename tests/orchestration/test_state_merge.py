"""Shard states folded back into the unsharded pipelines, with the commands orchestration/README.md gives."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import LOAD_SHARDS_JOB, shards_run_config
from kk_orchestration.states import condensed_bookmark, merge_partitions, merge_states
from tests.end_to_end.meltano_helpers import FIXED_NOW, PROJECT_ROOT
from tests.orchestration.dagster_helpers import (
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

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 40
KAHUNA_UNSHARDED = "dev:tap-kahuna-logs-to-target-postgres"
CLICKS_UNSHARDED = "dev:tap-kaon-insights--clicks-to-target-postgres"
# orchestration/README.md, "Merging shard states back": the Kahuna loop, as written there.
KAHUNA_MERGE_LOOP = """
pipeline=dev:tap-kahuna-logs-to-target-postgres
for shard in $(scripts/isolated_meltano.py state list --pattern "$pipeline:inapp-*" | sort); do
  scripts/isolated_meltano.py state merge --from-state-id "$shard" "$pipeline"
done
"""


def test_partition_lists_merge_by_context_and_objects_key_by_key() -> None:
    first = {"bookmarks": {"a": {"day": "2026-11-16"}, "clicks": {"partitions": [{"context": {"id": "x"}, "v": 1}]}}}
    second = {"bookmarks": {"a": {"day": "2026-11-17"}, "clicks": {"partitions": [{"context": {"id": "y"}, "v": 2}]}}}
    merged = merge_states(first, second)
    assert merged["bookmarks"]["a"] == {"day": "2026-11-17"}
    assert merged["bookmarks"]["clicks"]["partitions"] == [
        {"context": {"id": "x"}, "v": 1},
        {"context": {"id": "y"}, "v": 2},
    ]
    assert merge_partitions([{"context": {"id": "x"}, "v": 1}], [{"context": {"id": "x"}, "v": 3}]) == [
        {"context": {"id": "x"}, "v": 3}
    ]


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_shard_states_merged_into_the_unsharded_pipelines_resume_them_where_the_shards_stopped(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kaon = start_emulator("kaon")
    project = dagster_project.meltano
    point_at_emulators(project, kahuna=kahuna, kaon=kaon, kahuna_start=FIXED_NOW - timedelta(days=KAHUNA_DAYS - 1))
    project.settings["TAP_KAHUNA_LOGS_CATEGORIES"] = json.dumps(["inapp"])
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    first_days, last_day = dataset.days[:-1], dataset.days[-1]
    kaon_data = kaon_dataset()
    external_ids = kaon_data.external_id_names[:2]

    dagster_project.execute(
        LOAD_SHARDS_JOB,
        shards_run_config(
            {"kahuna_logs": [kahuna_key("inapp", day) for day in first_days], "kaon_clickstreams": external_ids}
        ),
    )
    shell = subprocess.run(
        ["bash", "-c", KAHUNA_MERGE_LOOP],
        cwd=PROJECT_ROOT,
        env=dagster_project.systemdb_env(),
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0, shell.stderr
    clicks_shards = [f"{CLICKS_UNSHARDED}:{external_id}" for external_id in external_ids]
    merged = subprocess.run(
        [sys.executable, "-m", "kk_orchestration.states", "merge", CLICKS_UNSHARDED, *clicks_shards],
        cwd=PROJECT_ROOT,
        env=dagster_project.systemdb_env(),
        capture_output=True,
        text=True,
    )
    assert merged.returncode == 0, merged.stderr

    kahuna_bookmark = dagster_project.meltano_state(KAHUNA_UNSHARDED)["singer_state"]["bookmarks"]["inapp_logs"]
    assert kahuna_bookmark["day"] == first_days[-1].isoformat()
    clicks = dagster_project.meltano_state(CLICKS_UNSHARDED)["singer_state"]["bookmarks"]["external_id_hits"]
    assert sorted(p["context"]["external_id"] for p in clicks["partitions"]) == sorted(external_ids)

    # The unsharded pipelines go on from there: no earlier day or click is asked for again.
    kahuna.reset()
    kaon.reset()
    project.settings.update(
        {"TAP_KAHUNA_LOGS_END_DATE": last_day.isoformat(), "TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps(external_ids)}
    )
    dagster_project.systemdb_meltano("run", "kahuna-to-postgres")
    dagster_project.systemdb_meltano("run", "tap-kaon-insights--clicks", "target-postgres")

    bodies = [request.get("json") or {} for request in kahuna.requests()]
    asked_days = {body["timestamp"][:10] for body in bodies if "timestamp" in body}
    assert asked_days == {day.strftime("%m/%d/%Y") for day in (first_days[-1], last_day)}
    expected = {row for day in dataset.days for row in expected_kahuna_rows(dataset, "inapp", day)}
    loaded = [comparable(row) for row in kahuna_rows(warehouse, "inapp")]
    assert len(loaded) == len(set(loaded))
    assert set(loaded) == expected
    starts: dict[str, int] = {}
    for request in kaon.requests():
        if "start" in request["query"]:
            starts.setdefault(request["query"]["id"], int(request["query"]["start"]))
    assert starts == {external_id: kaon_data.clickstream(external_id)[-1]["timestamp"] for external_id in external_ids}
    assert clicks_table(warehouse) == expected_clicks_table(kaon_data, external_ids)


def test_a_bookmark_condensed_puts_its_value_first_and_names_the_last_partition() -> None:
    bookmark = {"replication_key": "week", "replication_key_value": 776, "starting_replication_value": 417}
    assert condensed_bookmark(bookmark) == (
        '{"replication_key_value": 776, "replication_key": "week", "starting_replication_value": 417}'
    )
    partitioned = {"partitions": [{"context": {"path": f"p{n}"}, "replication_key_value": n} for n in range(3)]}
    assert condensed_bookmark(partitioned) == (
        '3 partitions, last {"context": {"path": "p2"}, "replication_key_value": 2}'
    )
    long = {"replication_key_value": "x" * 300}
    assert condensed_bookmark(long, 150) == ('{"replication_key_value": "' + "x" * 150)[:147] + "..."
    assert len(condensed_bookmark(long)) == 160
