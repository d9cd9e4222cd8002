"""The code location as Dagster loads it: assets, jobs, meltano.yml's schedules and what their ticks run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from kk_orchestration.jobs import dagster_job_name, dagster_name
from kk_orchestration.project import SETTINGS_VARIABLE
from tests.end_to_end.meltano_helpers import PROJECT_ROOT
from tests.orchestration.dagster_helpers import DagsterProject

pytestmark = pytest.mark.meltano

# The dev environment of meltano.yml (no setting overridden by the test environment).
DEV_EXTERNAL_IDS = ["EXT-0000", "EXT-0001", "user 42+test@example.com"]
REPLAY_KEYS = [f"shard-{index}-of-4" for index in range(4)]
TODAY = datetime.now(timezone.utc).date()
# The Meltano jobs that run as shards, and the Dagster job that runs them; every other one runs whole.
SHARDED_JOBS = {
    "kahuna-to-postgres": "load_shards",
    "kaon-to-postgres": "load_shards",
    "postgres-to-kissmetrics": "kissmetrics_replay_shards",
}


@pytest.fixture(scope="module")
def defs() -> Iterator[dg.Definitions]:
    """The definitions, loaded in this process against meltano.yml's dev environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MELTANO_ENVIRONMENT", "dev")
        patch.delenv("TAP_KAHUNA_LOGS_START_DATE", raising=False)
        patch.setenv(SETTINGS_VARIABLE, "")  # read them here; undone (unset) after the module
        from kk_orchestration.definitions import build_definitions

        yield build_definitions()


def meltano_yml() -> dict:
    """The project file."""
    with (PROJECT_ROOT / "meltano.yml").open() as project_file:
        return yaml.safe_load(project_file)


def test_every_schedule_of_meltano_yml_is_a_dagster_schedule_with_the_same_cron(defs: dg.Definitions) -> None:
    expected = {dagster_name(entry["name"]): entry["interval"] for entry in meltano_yml()["schedules"]}
    schedules = {schedule.name: schedule for schedule in defs.schedules or []}
    assert {name: schedule.cron_schedule for name, schedule in schedules.items()} == expected
    assert all(schedule.execution_timezone == "UTC" for schedule in schedules.values())
    repository = defs.get_repository_def()
    for entry in meltano_yml()["schedules"]:
        job = schedules[dagster_name(entry["name"])].job_name
        assert job == SHARDED_JOBS.get(entry["job"], dagster_job_name(entry["job"])), entry["name"]
        assert repository.has_job(job)


STAGING_MODELS = {
    "stg_kahuna__credentials": {
        "staging/stg_kahuna__" + table for table in ("email_logs", "inapp_logs", "push_logs", "user_merge_logs")
    },
    **{
        f"stg_kahuna__{table}": {"kahuna_logs"}
        for table in ("email_logs", "inapp_logs", "push_logs", "user_merge_logs")
    },
    **{
        f"stg_kaon__{table}": {"kaon_weekly_tables"}
        for table in ("countries", "devices", "engagement", "hits", "languages", "weeks")
    },
    "stg_kaon__external_id_hits": {"kaon_clickstreams"},
    "stg_kaon__path_hits": {"kaon_path_hits"},
}
MARTS = ("kissmetrics_events", "kissmetrics_people", "kissmetrics_aliases")


def test_the_assets_and_their_partitions_come_from_the_settings(defs: dg.Definitions) -> None:
    graph = defs.get_repository_def().asset_graph
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "kahuna_logs",
        "kaon_weekly_tables",
        "kaon_clickstreams",
        "kaon_path_hits",
        "kissmetrics_replay",
        *(f"staging/{model}" for model in STAGING_MODELS),
        *(f"marts/{mart}" for mart in MARTS),
    }
    kahuna = graph.get(dg.AssetKey("kahuna_logs")).partitions_def
    assert kahuna.get_partition_keys()[0] == "inapp|2026-11-01"  # the dev environment's start_date
    assert {key.split("|")[0] for key in kahuna.get_partition_keys()} == {"inapp", "push", "email", "user_merge"}
    assert f"inapp|{TODAY.isoformat()}" in kahuna.get_partition_keys()  # today, still filling up
    weekly = graph.get(dg.AssetKey("kaon_weekly_tables")).partitions_def
    assert weekly.get_first_partition_key() == "2019-12-29"  # the tap's default start_week 417
    replay = graph.get(dg.AssetKey("kissmetrics_replay"))
    assert replay.partitions_def.get_partition_keys() == [f"shard-{i}-of-4" for i in range(4)]
    assert replay.parent_keys == {dg.AssetKey(["marts", mart]) for mart in MARTS}


def test_the_kaon_partitions_are_the_settings_lists_with_no_daemon_or_instance(defs: dg.Definitions) -> None:
    """Static partitions: the webserver alone lists them (no sensor has to add them first)."""
    graph = defs.get_repository_def().asset_graph
    clicks = graph.get(dg.AssetKey("kaon_clickstreams")).partitions_def
    paths = graph.get(dg.AssetKey("kaon_path_hits")).partitions_def
    assert isinstance(clicks, dg.StaticPartitionsDefinition)
    assert clicks.get_partition_keys() == DEV_EXTERNAL_IDS
    assert paths.get_partition_keys() == [
        "home",
        "tours/Main%20Lobby",
        "Caf%C3%A9%20Men%C3%BC/Gr%C3%B6%C3%9Fe",
        "math/a%2Bb%3Dc",
    ]
    assert not defs.sensors or all(sensor.name != "kaon_partitions_from_settings" for sensor in defs.sensors)


def test_a_changed_list_of_external_ids_is_the_partitions_of_the_next_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from kk_orchestration.partitions import sharded_assets
    from kk_orchestration.project import partition_settings

    monkeypatch.setenv("MELTANO_ENVIRONMENT", "dev")
    monkeypatch.setenv("TAP_KAON_INSIGHTS_EXTERNAL_IDS", json.dumps(["EXT-0001", "EXT-0009"]))
    monkeypatch.delenv(SETTINGS_VARIABLE, raising=False)
    settings = partition_settings.__wrapped__()
    assert settings.kaon_external_ids == ("EXT-0001", "EXT-0009")
    clicks = sharded_assets(settings)["kaon_clickstreams"]
    assert clicks.partitions_def.get_partition_keys() == ["EXT-0001", "EXT-0009"]
    # The processes a run starts build the same partitions from the inherited settings.
    inherited = json.loads(os.environ[SETTINGS_VARIABLE])
    assert inherited["kaon_external_ids"] == ["EXT-0001", "EXT-0009"]
    assert len(inherited["kaon_paths"]) == 4


def test_every_dbt_model_is_an_asset_downstream_of_the_load_that_fills_its_source(defs: dg.Definitions) -> None:
    graph = defs.get_repository_def().asset_graph
    for model, parents in STAGING_MODELS.items():
        assert {key.to_user_string() for key in graph.get(dg.AssetKey(["staging", model])).parent_keys} == parents
    events = {key.to_user_string() for key in graph.get(dg.AssetKey(["marts", "kissmetrics_events"])).parent_keys}
    assert {"staging/stg_kahuna__inapp_logs", "staging/stg_kaon__external_id_hits"} <= events
    assert all(
        key.path[0] == "staging" for mart in MARTS for key in graph.get(dg.AssetKey(["marts", mart])).parent_keys
    )
    groups = {graph.get(dg.AssetKey(["staging", model])).group_name for model in STAGING_MODELS}
    assert groups == {"dbt_staging"}
    assert {graph.get(dg.AssetKey(["marts", mart])).group_name for mart in MARTS} == {"dbt_marts"}


def test_every_dbt_test_is_an_asset_check_of_its_model(defs: dg.Definitions) -> None:
    graph = defs.get_repository_def().asset_graph
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert ("marts/kissmetrics_events", "unique_kissmetrics_events_event_id") in checks
    assert ("marts/kissmetrics_events", "not_null_kissmetrics_events_person") in checks
    assert ("marts/kissmetrics_people", "unique_kissmetrics_people_replay_sequence") in checks
    assert ("marts/kissmetrics_aliases", "unique_combination_of_columns_kissmetrics_aliases_person__alias") in checks
    assert {asset for asset, _ in checks} >= {f"marts/{mart}" for mart in MARTS}
    # As many checks as the dbt project has tests.
    manifest = json.loads(manifest_file().read_text())
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    assert len(checks) == len(tests) > 100


def manifest_file() -> Path:
    """The manifest the code location read."""
    from kk_orchestration.dbt_models import manifest_path

    return manifest_path()


def test_every_dbt_build_and_every_duckdb_writer_takes_its_warehouse_pool(defs: dg.Definitions) -> None:
    repository = defs.get_repository_def()
    dbt_models = defs.get_assets_def(dg.AssetKey(["marts", "kissmetrics_events"]))
    assert dbt_models.op.pool == "dbt_postgres"
    pools = {
        job.name: {name: node.definition.pool for name, node in job.graph.node_dict.items()}
        for job in repository.get_all_jobs()
    }
    assert pools["kissmetrics_replay_shards"]["build_kissmetrics_marts"] == "dbt_postgres"
    assert pools["load_shards"]["build_marts_after_loads"] == "dbt_postgres"
    for meltano_job in meltano_yml()["jobs"]:
        if meltano_job["name"] in SHARDED_JOBS:
            continue
        (pool,) = pools[dagster_job_name(meltano_job["name"])].values()
        tasks = " ".join(meltano_job["tasks"])
        expected = "duckdb_warehouse" if "duckdb" in tasks else "dbt_snowflake" if "snowflake" in tasks else None
        assert pool == expected, meltano_job["name"]
    assert pools["meltano_warehouse_to_kissmetrics"] == {"run_meltano_warehouse_to_kissmetrics": "duckdb_warehouse"}


def tick_ops(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, at: datetime) -> dict:
    """The op config of the one run a tick of a schedule asks for."""
    schedule = next(schedule for schedule in defs.schedules or [] if schedule.name == name)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at)
    (request,) = schedule.evaluate_tick(context).run_requests or []
    return request.run_config["ops"]


def tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, at: datetime) -> dict:
    """The partitions one tick of a schedule asks for."""
    return tick_ops(defs, name, instance, at)["plan_shards"]["config"]["partitions"]


def test_the_postgres_schedules_run_the_dbt_build_where_their_meltano_jobs_do(defs: dg.Definitions) -> None:
    jobs = {job["name"]: job["tasks"] for job in meltano_yml()["jobs"]}
    assert jobs["kahuna-to-postgres"][-1] == jobs["kaon-to-postgres"][-1] == "dbt-postgres:build"
    assert jobs["postgres-to-kissmetrics"] == ["dbt-postgres:build", "tap-postgres target-kissmetrics--warehouse"]
    at = datetime.combine(TODAY, time(2, 30), tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        for load in ("kahuna_to_postgres_hourly", "kaon_to_postgres_daily"):
            assert tick_ops(defs, load, instance, at)["plan_shards"]["config"]["build_marts"] is True
        replay = tick_ops(defs, "postgres_to_kissmetrics_hourly", instance, at)
    assert replay == {"plan_shards": {"config": {"partitions": {"kissmetrics_replay": REPLAY_KEYS}}}}
    # The replay job's first step is the dbt build; every shard waits for it.
    job = defs.get_job_def("kissmetrics_replay_shards")
    assert job.graph.dependency_structure.input_to_upstream_outputs_for_node("plan_shards")
    upstream = {
        output.node_name
        for outputs in job.graph.dependency_structure.input_to_upstream_outputs_for_node("plan_shards").values()
        for output in outputs
    }
    assert upstream == {"build_kissmetrics_marts"}


def test_the_kahuna_schedule_loads_today_and_finishes_yesterday_once(defs: dg.Definitions) -> None:
    yesterday = TODAY - timedelta(days=1)
    with dg.instance_for_test() as instance:
        after_midnight = datetime.combine(TODAY, time(0, 10), tzinfo=timezone.utc)
        first = tick(defs, "kahuna_to_postgres_hourly", instance, after_midnight)["kahuna_logs"]
        assert first == [f"{c}|{day}" for day in (yesterday, TODAY) for c in ("inapp", "push", "email", "user_merge")]
        for key in first[:2]:  # inapp and push of yesterday read now, after midnight
            instance.report_runless_asset_event(dg.AssetMaterialization("kahuna_logs", partition=key))
        later = tick(defs, "kahuna_to_postgres_hourly", instance, after_midnight + timedelta(hours=1))["kahuna_logs"]
        assert later == first[2:]


def test_the_kaon_schedule_loads_the_current_week_and_every_configured_id_and_path(defs: dg.Definitions) -> None:
    with dg.instance_for_test() as instance:
        sunday = TODAY - timedelta(days=(TODAY.weekday() + 1) % 7)
        partitions = tick(defs, "kaon_to_postgres_daily", instance, datetime.combine(TODAY, time(2, 30), timezone.utc))
        previous = sunday - timedelta(days=7)
        assert partitions["kaon_weekly_tables"] == [previous.isoformat(), sunday.isoformat()]
        assert partitions["kaon_clickstreams"] == DEV_EXTERNAL_IDS
        assert len(partitions["kaon_path_hits"]) == 4


def test_the_code_location_passes_dg_check_defs_without_a_warning(dagster_project: DagsterProject) -> None:
    """The documented check (orchestration/README.md), Dagster's current one: `dagster definitions validate` is
    superseded (it prints a SupersessionWarning)."""
    readme = (PROJECT_ROOT / "orchestration" / "README.md").read_text()
    assert "(cd orchestration && ../.venv/bin/dg check defs)" in readme
    assert "definitions validate -m" not in readme
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=PROJECT_ROOT / "orchestration", env=dagster_project.env(),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "All definitions loaded successfully." in result.stdout
    assert "Warning" not in result.stdout + result.stderr
