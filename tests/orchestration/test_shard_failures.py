"""A failing shard fails alone and re-runs alone; a shard killed with SIGKILL re-runs exactly (no --force)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import timedelta

import psutil
import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import LOAD_SHARDS_JOB, shards_run_config
from tests.end_to_end.meltano_helpers import FIXED_NOW, wait_for
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

pytestmark = [pytest.mark.meltano, pytest.mark.postgres, pytest.mark.slow]

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 40
FAILING_ID = "EXT-0001"


def table_exists(warehouse: psycopg.Connection, table: str) -> bool:
    """Whether ``schema.table`` exists."""
    return warehouse.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def test_a_shard_whose_service_fails_fails_alone_and_rerunning_its_partition_completes_it(
    dagster_project: DagsterProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kaon = start_emulator("kaon", "--error-rate", "1.0", "--error-statuses", "500")
    point_at_emulators(
        dagster_project.meltano, kahuna=kahuna, kaon=kaon, kahuna_start=FIXED_NOW - timedelta(days=KAHUNA_DAYS - 1)
    )
    dagster_project.meltano.settings["TAP_KAON_INSIGHTS_MAX_RETRIES"] = "1"  # fail within seconds
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    kahuna_partitions = [("inapp", day) for day in dataset.days]
    kahuna_keys = [kahuna_key(category, day) for category, day in kahuna_partitions]

    failed = dagster_project.execute(
        LOAD_SHARDS_JOB,
        shards_run_config({"kahuna_logs": kahuna_keys, "kaon_clickstreams": [FAILING_ID]}, max_concurrent=4),
        check=False,
    )

    assert failed.returncode != 0
    assert f"dev:tap-kaon-insights--clicks-to-target-postgres:{FAILING_ID}: meltano run failed" in failed.stderr
    (run,) = dagster_project.runs()
    statuses = {key: stats.status.value for key, stats in dagster_project.step_stats(run.run_id).items()}
    shard_statuses = sorted(status for key, status in statuses.items() if key.startswith("load_shard"))
    assert shard_statuses == ["FAILURE", "SUCCESS", "SUCCESS", "SUCCESS"], statuses
    assert dagster_project.materialized_partitions("kahuna_logs") == set(kahuna_keys)
    assert dagster_project.materialized_partitions("kaon_clickstreams") == set()
    expected_inapp = {row for _, day in kahuna_partitions for row in expected_kahuna_rows(dataset, "inapp", day)}
    assert {comparable(row) for row in kahuna_rows(warehouse, "inapp")} == expected_inapp
    assert not table_exists(warehouse, "kaon.external_id_hits") or clicks_table(warehouse) == {}
    states_before = dagster_project.completed_states()
    assert set(states_before) == {f"dev:tap-kahuna-logs-to-target-postgres:inapp-{day}" for _, day in kahuna_partitions}

    # The service is back: materialize just that partition, as the README says.
    kaon.set_faults(error_rate=0.0)
    kahuna.reset()
    dagster_project.dagster("asset", "materialize", "--select", "kaon_clickstreams", "--partition", FAILING_ID)

    assert clicks_table(warehouse) == expected_clicks_table(kaon_dataset(), [FAILING_ID])
    assert dagster_project.materialized_partitions("kaon_clickstreams") == {FAILING_ID}
    # The other shards are untouched: no request to their service, same state, same rows, one materialization.
    assert kahuna.requests() == []
    states_after = dagster_project.completed_states()
    assert {state_id: states_after[state_id] for state_id in states_before} == states_before
    for key in kahuna_keys:
        assert len(dagster_project.materializations("kahuna_logs", key)) == 1
    assert {comparable(row) for row in kahuna_rows(warehouse, "inapp")} == expected_inapp


def shard_process_group(state_id_suffix: str) -> int | None:
    """The process group of a running shard (its launcher leads it), found by its state ID suffix."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(part.endswith("isolated_meltano.py") for part in cmdline) and state_id_suffix in cmdline:
            return os.getpgid(process.pid)
    return None


def test_a_shard_killed_mid_run_reruns_at_once_and_loses_and_doubles_nothing(
    dagster_project: DagsterProject,
    start_emulator: Callable[..., EmulatorProcess],
    warehouse: psycopg.Connection,
) -> None:
    kahuna = start_emulator("kahuna", "--days", "1", "--logs-per-day", "400", "--latency-ms", "60")
    point_at_emulators(dagster_project.meltano, kahuna=kahuna, kahuna_start=FIXED_NOW)
    # Small pages and batches: the kill lands after some rows are in the table, before the day is done.
    dagster_project.meltano.settings.update(
        {
            "TAP_KAHUNA_LOGS_PAGE_SIZE": "10",
            "TAP_KAHUNA_LOGS_MAX_CONCURRENCY": "1",
            "TARGET_POSTGRES_BATCH_SIZE_ROWS": "20",
        }
    )
    day = FIXED_NOW.date()
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=1, logs_per_day=400, env="p")
    suffix = f"push-{day.isoformat()}"

    shard = dagster_project.start_execute(
        LOAD_SHARDS_JOB,
        shards_run_config({"kahuna_logs": [kahuna_key("push", day)]}),
        log_path=dagster_project.meltano.workdir / "killed.log",
    )
    wait_for(lambda: table_exists(warehouse, "kahuna.push_logs") and len(kahuna_rows(warehouse, "push")) >= 20)
    group = shard_process_group(suffix)
    assert group is not None, "the shard ended before it could be killed"
    os.killpg(group, signal.SIGKILL)
    assert shard.wait(timeout=120) != 0
    loaded_before = len(kahuna_rows(warehouse, "push"))
    assert 0 < loaded_before < len(dataset.records("push", day))

    kahuna.set_faults(latency_ms=0.0)
    (killed_run,) = dagster_project.runs()
    dagster_project.reexecute_from_failure(killed_run.run_id)  # the UI's "Re-execute > From failure"

    loaded = [comparable(row) for row in kahuna_rows(warehouse, "push")]
    assert len(loaded) == len(set(loaded))
    assert set(loaded) == expected_kahuna_rows(dataset, "push", day)
    bookmark = dagster_project.meltano_state(f"dev:tap-kahuna-logs-to-target-postgres:{suffix}")["singer_state"]
    assert bookmark["bookmarks"]["push_logs"]["day_records_emitted"] == len(dataset.records("push", day))
    # The killed run was marked failed by the code that saw it die, not skipped with --force.
    killed_log = (dagster_project.meltano.workdir / "killed.log").read_text()
    assert "marked failed, so the partition can run again" in killed_log
    # The re-execution ran the killed shard only, not the plan again, and its run succeeded.
    killed, rerun = dagster_project.runs()
    assert rerun.parent_run_id == killed.run_id
    assert rerun.is_success
    assert [key for key in dagster_project.step_stats(rerun.run_id) if key.startswith("plan")] == []
