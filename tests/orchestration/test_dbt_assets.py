"""The dbt models as Dagster assets (dagster-dbt), their tests as asset checks, one dbt build per warehouse.

Everything through the real ``dagster`` CLI and its multi-process executor, on the local PostgreSQL
(warehouse and Meltano's system database), against the emulators.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import REPLAY_SHARDS_JOB, shards_run_config
from kk_orchestration.pools import WAREHOUSE_POOLS, require_single_slot
from tests.end_to_end.meltano_helpers import FIXED_NOW, PROJECT_ROOT, VENV_BIN, kill_process_group, wait_for
from tests.end_to_end.replay_helpers import assert_view_matches_marts, read_marts, received_beacons
from tests.orchestration.dagster_helpers import CODE_LOCATION, DagsterProject, kahuna_key, point_at_emulators
from tests.support.chromium import chromium, png_size

DBT_MODELS = "group:dbt_staging or group:dbt_marts"
DBT_STEP = "dbt_postgres_models"
REPLAY_KEY = "shard-0-of-1"
MARTS = ("kissmetrics_events", "kissmetrics_people", "kissmetrics_aliases")
BROKEN_CHECK = ("marts/kissmetrics_events", "unique_kissmetrics_events_event_id")


def test_a_build_refuses_to_start_where_the_pool_would_let_two_overlap() -> None:
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.Failure, match=r"pool dbt_postgres has no limit .*`python -m kk_orchestration.pools`"):
            require_single_slot(instance, "dbt_postgres")
        instance.event_log_storage.set_concurrency_slots("dbt_postgres", 2)
        with pytest.raises(dg.Failure, match="has a limit of 2"):
            require_single_slot(instance, "dbt_postgres")
        instance.event_log_storage.set_concurrency_slots("dbt_postgres", 1)
        require_single_slot(instance, "dbt_postgres")


def test_the_pools_command_gives_every_warehouse_pool_one_slot(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {"DAGSTER_HOME": str(home), "PATH": str(VENV_BIN)}
    command = [str(VENV_BIN / "python"), "-m", "kk_orchestration.pools"]
    result = subprocess.run(
        command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"pool {pool}: limit 1" for pool in WAREHOUSE_POOLS.values()]
    listed = subprocess.run(
        [str(VENV_BIN / "dagster"), "instance", "concurrency", "get", "--all"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    limits = sorted(line for line in listed.stdout.splitlines() if "slots occupied" in line)
    assert limits == sorted(f'"{pool}": 0 / 1 slots occupied' for pool in WAREHOUSE_POOLS.values())


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_a_day_partition_then_the_dbt_assets_then_the_replay_and_a_broken_mart_stops_the_replay(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", "2", "--logs-per-day", "60")
    kissmetrics = start_emulator("kissmetrics")
    point_at_emulators(
        dagster_project.meltano, kahuna=kahuna, kissmetrics=kissmetrics, kahuna_start=FIXED_NOW - timedelta(days=1)
    )
    dagster_project.meltano.settings["KK_REPLAY_SHARDS"] = "1"
    day = FIXED_NOW.date()

    def query(sql: str) -> list[tuple]:
        return warehouse.execute(sql).fetchall()

    # A Kahuna day partition, then the dbt models (one run), then the replay.
    for category in ("inapp", "push", "user_merge"):
        dagster_project.dagster(
            "asset", "materialize", "--select", "kahuna_logs", "--partition", kahuna_key(category, day)
        )
    dagster_project.dagster("asset", "materialize", "--select", DBT_MODELS)
    models_run = dagster_project.runs()[-1]
    steps = dagster_project.step_stats(models_run.run_id)
    assert {key: stats.status.value for key, stats in steps.items()} == {DBT_STEP: "SUCCESS"}  # one dbt build
    checks = dagster_project.check_evaluations(models_run.run_id)
    assert len(checks) > 100
    assert BROKEN_CHECK in checks
    assert [check for check, passed in checks.items() if not passed] == []
    for mart in MARTS:
        assert dagster_project.materialization_count(f"marts/{mart}") == 1
    assert dagster_project.materialization_count("staging/stg_kahuna__inapp_logs") == 1
    marts = read_marts(query)
    assert marts["kissmetrics_events"], {mart: len(rows) for mart, rows in marts.items()}
    assert marts["kissmetrics_aliases"], {mart: len(rows) for mart, rows in marts.items()}

    dagster_project.dagster("asset", "materialize", "--select", "kissmetrics_replay", "--partition", REPLAY_KEY)
    replay_run = dagster_project.runs()[-1]
    assert_view_matches_marts(kissmetrics, marts)
    sent = len(received_beacons(kissmetrics))
    assert sent == sum(len(rows) for rows in marts.values())

    # A broken mart (a row in it twice, say a hand-made fix): its unique check fails, the dbt step fails,
    # and the replay downstream of it in the same run does not run; nothing more reaches Kissmetrics.
    warehouse.execute(
        "INSERT INTO marts.kissmetrics_events SELECT * FROM marts.kissmetrics_events ORDER BY replay_sequence LIMIT 1"
    )
    broken = dagster_project.dagster(
        "asset", "materialize", "--select", f"{DBT_MODELS} or key:kissmetrics_replay", "--partition", REPLAY_KEY,
        check=False,
    )  # fmt: skip
    assert broken.returncode != 0
    broken_run = dagster_project.runs()[-1]
    steps = dagster_project.step_stats(broken_run.run_id)
    assert steps[DBT_STEP].status.value == "FAILURE"
    assert "kissmetrics_replay" not in steps or steps["kissmetrics_replay"].status.value == "SKIPPED", steps
    assert dagster_project.check_evaluations(broken_run.run_id)[BROKEN_CHECK] is False
    assert [record.run_id for record in dagster_project.materializations("kissmetrics_replay", REPLAY_KEY)] == [
        replay_run.run_id
    ]
    # The shards job (what the schedule and the sensor run) stops at its dbt build too: no shard starts.
    failed = dagster_project.execute(
        REPLAY_SHARDS_JOB, shards_run_config({"kissmetrics_replay": [REPLAY_KEY]}), check=False
    )
    assert failed.returncode != 0
    job_steps = dagster_project.step_stats(dagster_project.runs()[-1].run_id)
    assert job_steps["build_kissmetrics_marts"].status.value == "FAILURE"
    assert not [key for key in job_steps if key.startswith("load_shard")], job_steps
    assert len(received_beacons(kissmetrics)) == sent


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_two_dbt_builds_of_one_warehouse_started_together_run_one_after_the_other(
    dagster_project: DagsterProject, warehouse: psycopg.Connection, tmp_path: Path
) -> None:
    assert dagster_project.state_ids() == set()  # Meltano's system database set up once, before both start
    logs = [tmp_path / f"build-{index}.log" for index in range(2)]
    builds = []
    try:
        for log in logs:
            with log.open("wb") as output:
                command = dagster_project.command("asset", "materialize", "--select", DBT_MODELS)
                builds.append(
                    subprocess.Popen(
                        command,
                        cwd=PROJECT_ROOT,
                        env=dagster_project.env(),
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for build, log in zip(builds, logs, strict=True):
            assert build.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        for build in builds:
            if build.poll() is None:
                kill_process_group(build)

    runs = dagster_project.runs()
    assert len(runs) == 2
    first, second = sorted(
        (dagster_project.step_stats(run.run_id)[DBT_STEP] for run in runs), key=lambda s: s.start_time
    )
    assert first.status.value == second.status.value == "SUCCESS"
    assert second.start_time >= first.end_time, "two dbt builds of one warehouse overlapped"
    waited = [log.read_text() for log in logs]
    # The one that started second logged that it waited (Dagster's STEP_CONCURRENCY_BLOCKED event).
    assert sum("Step blocked by limit for pool dbt_postgres" in text for text in waited) == 1, "no build waited"
    assert warehouse.execute("SELECT count(*) FROM marts.kissmetrics_events").fetchone() == (0,)


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def graphql(url: str, query: str) -> dict:
    """A query to the webserver's GraphQL API (what the UI reads)."""
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(  # noqa: S310 (the test's own webserver)
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the test's own webserver)
        return json.loads(response.read())["data"]


@pytest.mark.meltano
@pytest.mark.postgres
@pytest.mark.slow
def test_the_ui_shows_the_dbt_models_in_the_lineage_between_the_loads_and_the_replay(
    dagster_project: DagsterProject, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "webserver.log").open("wb") as log:
        webserver = subprocess.Popen(
            [str(VENV_BIN / "dagster-webserver"), "-m", CODE_LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT, env=dagster_project.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: webserver.poll() is not None or server_answers(url), timeout=240, interval=0.5)
        assert webserver.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
        nodes = graphql(url, "{ assetNodes { assetKey { path } dependencyKeys { path } groupName } }")["assetNodes"]
        graph = {
            "/".join(node["assetKey"]["path"]): (
                {"/".join(dep["path"]) for dep in node["dependencyKeys"]},
                node["groupName"],
            )
            for node in nodes
        }
        assert graph["kissmetrics_replay"] == ({f"marts/{mart}" for mart in MARTS}, "kissmetrics")
        assert graph["staging/stg_kahuna__inapp_logs"] == ({"kahuna_logs"}, "dbt_staging")
        assert graph["staging/stg_kaon__external_id_hits"] == ({"kaon_clickstreams"}, "dbt_staging")
        assert graph["marts/kissmetrics_events"][1] == "dbt_marts"
        assert "staging/stg_kahuna__inapp_logs" in graph["marts/kissmetrics_events"][0]

        # The marts' lineage page as a browser renders it: the marts, the staging models upstream, the replay.
        lineage = f"{url}/locations/{CODE_LOCATION}/asset-groups/dbt_marts/lineage"
        budget = "--virtual-time-budget=60000"  # let the page's scripts fetch and lay out the graph
        dom = chromium(budget, "--window-size=1600,1000", "--dump-dom", lineage, cwd=tmp_path).stdout
        for name in (*MARTS, "stg_kahuna__inapp_logs", "kissmetrics_replay"):
            assert name in dom, f"{name} is not in the rendered lineage"
        chromium(budget, "--window-size=1600,1000", "--screenshot=lineage.png", lineage, cwd=tmp_path)
        png = (tmp_path / "lineage.png").read_bytes()
        assert png_size(png) == (1600, 1000)
        assert len(png) > 30_000  # nodes, edges and labels; an empty page compresses to a few kilobytes
    finally:
        if webserver.poll() is None:
            kill_process_group(webserver)


def server_answers(url: str) -> bool:
    """Whether the webserver answers (its code location loaded)."""
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5):  # noqa: S310 (the test's own webserver)
            return True
    except OSError:
        return False
