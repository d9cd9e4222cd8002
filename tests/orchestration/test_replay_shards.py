"""The Kissmetrics replay in N shards of the people delivers what one unsharded replay delivers."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import yaml

from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import REPLAY_SHARDS_JOB, shards_run_config
from kk_orchestration.partitions import replay_shard
from kk_orchestration.shards import records_by_stream
from tests.end_to_end.meltano_helpers import FIXED_NOW, PROJECT_ROOT
from tests.end_to_end.replay_helpers import (
    assert_view_matches_marts,
    beacon_key,
    beacons_of,
    read_marts,
    received_beacons,
)
from tests.orchestration.dagster_helpers import DagsterProject

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 60
SHARDS = 3
# tap-postgres' streams of the dbt marts (schema marts), as meltano.yml selects them.
REPLAY_STREAMS = ("marts-kissmetrics_events", "marts-kissmetrics_people", "marts-kissmetrics_aliases")
KAHUNA_LATER = FIXED_NOW + timedelta(hours=2)


def tap_postgres_config() -> dict[str, Any]:
    """tap-postgres' base config in meltano.yml (where the shard rule lives)."""
    with (PROJECT_ROOT / "meltano.yml").open() as project_file:
        extractors = yaml.safe_load(project_file)["plugins"]["extractors"]
    return next(plugin for plugin in extractors if plugin["name"] == "tap-postgres")["config"]


def shards_keeping(person: str, shard_count: int) -> list[int]:
    """The shards whose stream map (meltano.yml's rule, run by singer-sdk's mapper) keeps a person's rows."""
    from singer_sdk.mapper import PluginMapper

    stream_maps = tap_postgres_config()["stream_maps"]
    kept = []
    for index in range(shard_count):
        map_config = json.loads(replay_shard(index, shard_count).settings["TAP_POSTGRES_STREAM_MAP_CONFIG"])
        mapper = PluginMapper(
            plugin_config={"stream_maps": stream_maps, "stream_map_config": map_config},
            logger=logging.getLogger("replay-shard-rule"),
        )
        for stream in REPLAY_STREAMS:
            mapper.register_raw_stream_schema(stream, {"type": "object", "properties": {"person": {}}}, [])
            (stream_map,) = mapper.stream_maps[stream]
            if stream_map.transform({"person": person}) is not None:
                kept.append(index)
    return kept


@pytest.mark.parametrize("shard_count", [1, 3, 4])
def test_every_row_of_a_person_goes_to_exactly_one_shard_by_a_stable_hash(shard_count: int) -> None:
    people = ["160000006", "a@example.com", "user 42+test@example.com", "Ünïcødé", ""]
    for person in people:
        expected = int(hashlib.md5(person.encode()).hexdigest()[:8], 16) % shard_count  # noqa: S324 (a shard key)
        assert shards_keeping(person, shard_count) == [expected] * len(REPLAY_STREAMS), person


def test_one_shard_the_unsharded_default_keeps_every_row() -> None:
    assert tap_postgres_config()["stream_map_config"] == {"shard_count": 1, "shard_index": 0}


def shard_metadata(dagster_project: DagsterProject, keys: list[str], field: str) -> dict[str, int]:
    """Per replay shard, a figure of its newest materialization (``records`` sent, ``records_read``)."""
    return {
        key: dagster_project.materializations("kissmetrics_replay", key)[0].asset_materialization.metadata[field].value
        for key in keys
    }


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_the_replay_in_shards_delivers_the_same_deduplicated_view_as_one_unsharded_replay_then_only_new_rows(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    unsharded, sharded = start_emulator("kissmetrics"), start_emulator("kissmetrics")
    project = dagster_project.meltano
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            "KK_REPLAY_SHARDS": str(SHARDS),
        }
    )

    def query(sql: str) -> list[tuple[Any, ...]]:
        return warehouse.execute(sql).fetchall()

    project.run("run", "kahuna-to-postgres")  # the load, then dbt-postgres:build

    project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = unsharded.url
    whole = project.run("run", "postgres-to-kissmetrics")
    project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = sharded.url
    keys = [f"shard-{index}-of-{SHARDS}" for index in range(SHARDS)]
    run_config = shards_run_config({"kissmetrics_replay": keys}, max_concurrent=SHARDS)
    dagster_project.execute(REPLAY_SHARDS_JOB, run_config)

    first = read_marts(query)
    assert all(first.values()), {mart: len(rows) for mart, rows in first.items()}
    assert_view_matches_marts(unsharded, first)
    assert_view_matches_marts(sharded, first)
    expected, delivered = unsharded.control("dedup"), sharded.control("dedup")
    for kind in ("events", "aliases"):
        assert sorted(map(repr, delivered[kind])) == sorted(map(repr, expected[kind])), kind
    # Each row left exactly one shard: as many beacons as the unsharded replay sent, split over all shards.
    assert sharded.control("stats")["raw"] == unsharded.control("stats")["raw"]
    shard_records = shard_metadata(dagster_project, keys, "records")
    assert all(shard_records.values()), shard_records
    sent_whole = sum(records_by_stream(whole.stderr.splitlines(), "target-kissmetrics--warehouse").values())
    assert sum(shard_records.values()) == sent_whole == sum(len(rows) for rows in first.values())
    # Every shard reads every row (the stream map keeps its share): the rows of the others move its bookmark too.
    assert shard_metadata(dagster_project, keys, "records_read") == dict.fromkeys(keys, sent_whole)
    assert dagster_project.materialization_count("marts/kissmetrics_events") == 1  # built once, before the shards
    replay_ids = {f"dev:tap-postgres-to-target-kissmetrics--warehouse:{key}" for key in keys}
    assert dagster_project.state_ids() == replay_ids
    sent_first = len(received_beacons(sharded))

    # Two hours later: new logs loaded; the replay job builds the marts, and each shard reads from its bookmark.
    kahuna.set_clock(now=KAHUNA_LATER.isoformat())
    project.run("run", "tap-kahuna-logs", "target-postgres")
    dagster_project.execute(REPLAY_SHARDS_JOB, run_config)

    second = read_marts(query)
    for mart, rows in first.items():
        assert second[mart][: len(rows)] == rows, f"{mart}: a row replayed before changed"
    new_rows = sum(len(second[mart]) - len(rows) for mart, rows in first.items())
    assert new_rows > 0
    assert_view_matches_marts(sharded, second)
    # The new rows and the one row at each mart's bookmark (replay_sequence >= bookmark), each sent by its shard.
    last_sequence = {mart: rows[-1]["replay_sequence"] for mart, rows in first.items()}
    again = beacons_of(second, lambda mart, rows: [r for r in rows if r["replay_sequence"] >= last_sequence[mart]])
    assert sum(again.values()) == new_rows + len(first)
    sent_second = received_beacons(sharded, offset=sent_first)
    assert sorted(map(beacon_key, sent_second), key=repr) == sorted(again.elements(), key=repr)
    assert shard_metadata(dagster_project, keys, "records_read") == dict.fromkeys(keys, new_rows + len(first))
    assert dagster_project.materialization_count("marts/kissmetrics_events") == 2
    assert dagster_project.state_ids() == replay_ids
