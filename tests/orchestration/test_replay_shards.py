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
from dagster_helpers import DagsterProject
from meltano_helpers import FIXED_NOW, PROJECT_ROOT

from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import REPLAY_SHARDS_JOB, shards_run_config
from kk_orchestration.partitions import replay_shard
from kk_orchestration.shards import records_by_stream

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 60
SHARDS = 3
REPLAY_STREAMS = ("kissmetrics-events", "kissmetrics-people", "kissmetrics-aliases")


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


def property_keys(view: dict[str, Any]) -> set[tuple[str, str, int]]:
    """(person, name, time) of every property in a dedup view."""
    return {(item["person"], item["name"], item["time"]) for item in view["properties"]}


def platforms(view: dict[str, Any]) -> set[tuple[str, str, int, str]]:
    """The people view's `platform` properties, values included."""
    return {(p["person"], p["name"], p["time"], p["value"]) for p in view["properties"] if p["name"] == "platform"}


@pytest.mark.parametrize("shard_count", [1, 3, 4])
def test_every_row_of_a_person_goes_to_exactly_one_shard_by_a_stable_hash(shard_count: int) -> None:
    people = ["160000006", "a@example.com", "user 42+test@example.com", "Ünïcødé", ""]
    for person in people:
        expected = int(hashlib.md5(person.encode()).hexdigest()[:8], 16) % shard_count  # noqa: S324 (a shard key)
        assert shards_keeping(person, shard_count) == [expected] * len(REPLAY_STREAMS), person


def test_one_shard_the_unsharded_default_keeps_every_row() -> None:
    assert tap_postgres_config()["stream_map_config"] == {"shard_count": 1, "shard_index": 0}


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_the_replay_in_shards_delivers_the_same_deduplicated_view_as_one_unsharded_replay(
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
    project.run("run", "kahuna-to-postgres")

    project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = unsharded.url
    whole = project.run("run", "warehouse-to-kissmetrics")
    project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = sharded.url
    keys = [f"shard-{index}-of-{SHARDS}" for index in range(SHARDS)]
    dagster_project.execute(REPLAY_SHARDS_JOB, shards_run_config({"kissmetrics_replay": keys}, max_concurrent=SHARDS))

    expected, delivered = unsharded.control("dedup"), sharded.control("dedup")
    assert expected["events"]
    assert expected["aliases"]
    assert expected["properties"]
    for kind in ("events", "aliases"):
        assert sorted(map(repr, delivered[kind])) == sorted(map(repr, expected[kind])), kind
    # A property keeps the last value received per (person, name, time): two events of one person in one
    # second with different campaigns make that value depend on delivery order, so only the keys must match,
    # and every value of the people view's one-per-person `platform`.
    assert property_keys(delivered) == property_keys(expected)
    assert platforms(delivered) == platforms(expected)
    # Each row left exactly one shard: as many beacons as the unsharded replay sent, split over all shards.
    assert sharded.control("stats")["raw"] == unsharded.control("stats")["raw"]
    shard_records = {}
    for key in keys:
        (materialization,) = dagster_project.materializations("kissmetrics_replay", key)
        shard_records[key] = materialization.asset_materialization.metadata["records"].value
    assert all(shard_records.values()), shard_records
    sent_whole = sum(records_by_stream(whole.stderr.splitlines(), "target-kissmetrics--warehouse").values())
    assert sum(shard_records.values()) == sent_whole
    assert dagster_project.materialization_count("kissmetrics_views") == 1  # applied once, before the shards
    assert dagster_project.state_ids() >= {f"dev:tap-postgres-to-target-kissmetrics--warehouse:{key}" for key in keys}
