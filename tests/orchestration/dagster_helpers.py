"""Run the Dagster code location for real: the ``dagster`` CLI, its multi-process executor, the emulators,
the local PostgreSQL (warehouse and Meltano's system database, one schema per test).

Each Dagster command is its own process (as in a deployment, where every run is a fresh run worker),
with this test's ``DAGSTER_HOME``, Meltano system database and emulator settings in its environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
import yaml

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from kk_orchestration.pools import set_warehouse_pools
from kk_orchestration.project import SETTINGS_VARIABLE
from tests.end_to_end.meltano_helpers import POSTGRES, PROJECT_ROOT, VENV_BIN, MeltanoProject, log_tail
from tests.support.cli import run_checked
from tests.tap_kaon_insights.kaon_tap_helpers import dataset as kaon_dataset, expected_clicks

CODE_LOCATION = "kk_orchestration.definitions"
DAGSTER_TIMEOUT_SECONDS = 420
SYSTEM_DATABASE = os.environ.get("KK_PG_SYSTEM_DATABASE", "kk_meltano")
KAHUNA_TABLES = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}


@pytest.fixture
def system_database() -> Iterator[str]:
    """Meltano's system database for this test: a schema of its own in the shared PostgreSQL database."""
    schema = f"meltano_test_{uuid.uuid4().hex[:12]}"
    server = "{user}:{password}@{host}:{port}".format(**POSTGRES)
    try:
        connection = psycopg.connect(f"postgresql://{server}/{SYSTEM_DATABASE}", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"no database {SYSTEM_DATABASE} on 127.0.0.1:{POSTGRES['port']} ({error}): run `make postgres`")
    connection.execute(f"CREATE SCHEMA {schema}")
    yield f"postgresql+psycopg://{server}/{SYSTEM_DATABASE}?options=-csearch_path%3D{schema}"
    connection.execute(f"DROP SCHEMA {schema} CASCADE")
    connection.close()


@dataclass
class DagsterProject:
    """The code location with this test's instance, system database and Meltano settings."""

    meltano: MeltanoProject
    system_database_uri: str

    @property
    def home(self) -> Path:
        """This test's ``DAGSTER_HOME`` (runs, event logs, compute logs)."""
        home = self.meltano.workdir / "dagster"
        if not home.exists():
            home.mkdir()
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            with dg.DagsterInstance.from_config(str(home)) as instance:
                set_warehouse_pools(instance)  # as make dagster-dev does (python -m kk_orchestration.pools)
        return home

    def env(self) -> dict[str, str]:
        """The environment of every dagster command: the Meltano test settings plus the instance and database."""
        env = {**self.meltano.env(), "DAGSTER_HOME": str(self.home), "MELTANO_DATABASE_URI": self.system_database_uri}
        env.pop(SETTINGS_VARIABLE, None)  # the partitions come from this test's settings, not this process's
        return env

    def dagster(self, *args: str, check: bool = True, code_location: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``dagster <args> -m kk_orchestration.definitions``; on failure the assertion shows the log's end."""
        command = self.command(*args) if code_location else [str(VENV_BIN / "dagster"), *args]
        return self.run_command(command, f"dagster {' '.join(args)}", check=check)

    def run_command(self, command: list[str], label: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in this test's environment; on failure the assertion shows the steps' failures."""
        return run_checked(
            command,
            cwd=PROJECT_ROOT,
            env=self.env(),
            timeout=DAGSTER_TIMEOUT_SECONDS,
            label=label,
            explain=lambda result: failures(result.stdout + result.stderr),
            check=check,
        )

    def command(self, *args: str) -> list[str]:
        """A dagster command line against the code location."""
        return [str(VENV_BIN / "dagster"), *args, "-m", CODE_LOCATION]

    def run_config_file(self, run_config: Mapping[str, Any]) -> Path:
        """The run config as a YAML file for ``dagster job execute -c``."""
        path = self.meltano.workdir / f"run-config-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(dict(run_config)))
        return path

    def execute(self, job: str, run_config: Mapping[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        """``dagster job execute``: one run, in this process's instance, with the multi-process executor."""
        return self.dagster("job", "execute", "-j", job, "-c", str(self.run_config_file(run_config)), check=check)

    def start_execute(self, job: str, run_config: Mapping[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``dagster job execute`` in the background."""
        with log_path.open("wb") as log:
            return subprocess.Popen(
                self.command("job", "execute", "-j", job, "-c", str(self.run_config_file(run_config))),
                cwd=PROJECT_ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def reexecute_from_failure(self, run_id: str) -> subprocess.CompletedProcess[str]:
        """Re-execute a run's failed steps only, as the UI's "Re-execute > From failure" does."""
        script = Path(__file__).with_name("reexecute_from_failure.py")
        return self.run_command([sys.executable, str(script), run_id], f"re-execution of {run_id}")

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """This test's Dagster instance, to read runs, steps and materializations."""
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            yield instance

    def runs(self) -> list[dg.DagsterRun]:
        """Every run of the instance, oldest first."""
        with self.instance() as instance:
            return list(reversed(instance.get_runs()))

    def step_stats(self, run_id: str) -> dict[str, Any]:
        """Per step key: its stats (status, start and end time)."""
        with self.instance() as instance:
            return {stats.step_key: stats for stats in instance.get_run_step_stats(run_id)}

    def materialized_partitions(self, asset: str) -> set[str]:
        """The partitions of an asset with at least one materialization."""
        with self.instance() as instance:
            return set(instance.get_materialized_partitions(dg.AssetKey.from_user_string(asset)))

    def materialization_count(self, asset: str) -> int:
        """How many times an asset (any partition; ``marts/kissmetrics_events``: a dbt model) was materialized."""
        with self.instance() as instance:
            return len(instance.fetch_materializations(dg.AssetKey.from_user_string(asset), limit=1000).records)

    def materializations(self, asset: str, partition: str) -> list[dg.EventLogRecord]:
        """The materializations of one partition, newest first."""
        with self.instance() as instance:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(asset), asset_partitions=[partition]),
                limit=100,
            )
            return list(records.records)

    def check_evaluations(self, run_id: str) -> dict[tuple[str, str], bool]:
        """Per (asset, check) evaluated in a run (the dbt tests): whether it passed."""
        with self.instance() as instance:
            records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = {}
        for record in records:
            assert record.dagster_event is not None
            evaluation = record.dagster_event.event_specific_data
            evaluations[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = evaluation.passed
        return evaluations

    def meltano_state(self, state_id: str) -> dict[str, Any]:
        """A state ID's Singer state in the shared system database (``meltano state get``)."""
        result = self.systemdb_meltano("state", "get", state_id)
        return json.loads(result.stdout or "{}")

    def state_ids(self) -> set[str]:
        """Every state ID in the shared system database (``meltano state list``)."""
        return {line.strip() for line in self.systemdb_meltano("state", "list").stdout.splitlines() if line.strip()}

    def completed_states(self) -> dict[str, dict[str, Any]]:
        """Every state ID's completed state, read from Meltano's ``state`` table in one query.

        What ``meltano state get`` prints for a state ID whose runs all finished (no partial state left),
        without one meltano process per state ID.
        """
        with psycopg.connect(self.system_database_uri.replace("+psycopg", "", 1)) as connection:
            rows = connection.execute("SELECT state_id, completed_state, partial_state FROM state").fetchall()
        states = {}
        for state_id, completed, partial in rows:
            assert not (json.loads(partial) if isinstance(partial, str) else partial), f"{state_id}: partial state left"
            states[state_id] = json.loads(completed) if isinstance(completed, str) else completed
        return states

    def systemdb_settings(self) -> dict[str, str]:
        """The settings that put a meltano command on the shards' system database and state backend."""
        return {"MELTANO_DATABASE_URI": self.system_database_uri, "MELTANO_STATE_BACKEND_URI": "systemdb"}

    def systemdb_env(self) -> dict[str, str]:
        """The environment of a shell running meltano commands against the shards' system database."""
        return {**self.meltano.env(), **self.systemdb_settings()}

    def systemdb_meltano(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A meltano command against the shared system database and its state backend."""
        project = MeltanoProject(self.meltano.workdir, {**self.meltano.settings, **self.systemdb_settings()})
        return project.run(*args, check=check)


def failures(log: str) -> str:
    """The steps' failure descriptions in a dagster log, else its end."""
    described = [line for line in log.splitlines() if "Failure:" in line or "failed (exit" in line]
    return "\n".join(dict.fromkeys(described)) or log_tail(log)


def point_at_emulators(
    project: MeltanoProject,
    *,
    kahuna: EmulatorProcess | None = None,
    kaon: EmulatorProcess | None = None,
    kissmetrics: EmulatorProcess | None = None,
    kahuna_start: datetime | None = None,
) -> None:
    """Settings that point the dev environment's plugins at this test's emulators."""
    if kahuna is not None:
        project.settings["TAP_KAHUNA_LOGS_API_URL"] = f"{kahuna.url}/api/kahunalogs"
    if kahuna_start is not None:
        project.settings["TAP_KAHUNA_LOGS_START_DATE"] = kahuna_start.date().isoformat()
    if kaon is not None:
        project.settings["TAP_KAON_INSIGHTS_API_URL"] = f"{kaon.url}/api"
        project.settings["TAP_KAON_INSIGHTS_EXTERNAL_ID_PAGE_SIZE"] = "40"
    if kissmetrics is not None:
        project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = kissmetrics.url


def kahuna_key(category: str, day: Any) -> str:
    """The kahuna_logs partition key of (category, day)."""
    return str(dg.MultiPartitionKey({"category": category, "day": str(day)}))


def kahuna_rows(warehouse: psycopg.Connection, category: str) -> list[tuple[Any, ...]]:
    """(log_date, log_position, timestamp, user_id-or-surviving_user_id) of a category's table, as loaded."""
    person = "surviving_user_id" if category == "user_merge" else "user_id"
    return warehouse.execute(
        f'SELECT log_date, log_position, "timestamp", {person} FROM kahuna.{KAHUNA_TABLES[category]}'  # noqa: S608
    ).fetchall()


def expected_kahuna_rows(dataset: KahunaDataset, category: str, day: Any) -> set[tuple[str, int, str, str]]:
    """What the emulator serves for one (category, day): (day, position, UTC timestamp, person)."""
    person = "surviving_user_id" if category == "user_merge" else "user_id"
    return {
        (day.isoformat(), position, record["timestamp"], str(record.get(person)))
        for position, record in enumerate(dataset.records(category, day))
    }


def comparable(row: tuple[Any, ...]) -> tuple[str, int, str, str]:
    """A loaded row in the emulator's terms (ISO day, int position, ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC, text)."""
    log_date, position, timestamp, person = row
    day = log_date.isoformat()[:10] if hasattr(log_date, "isoformat") else str(log_date)[:10]
    moment = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(str(timestamp))
    return day, int(position), moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"), str(person)


ClicksTable = dict[tuple[str, str, int, int], str | None]


def expected_clicks_table(data: Any, external_ids: list[str]) -> ClicksTable:
    """kaon.external_id_hits as the tap tests expect it for these IDs: key -> path."""
    return {
        (row["client"], row["external_id"], row["timestamp_unix"], row["sequence_in_second"]): row["path"]
        for external_id in external_ids
        for row in expected_clicks(data, external_id)
    }


def clicks_table(warehouse: psycopg.Connection) -> ClicksTable:
    """kaon.external_id_hits as loaded: key -> path; fails on a duplicate key."""
    table: ClicksTable = {}
    for client, external_id, unix_seconds, sequence, path in warehouse.execute(
        "SELECT client, external_id, timestamp_unix, sequence_in_second, path FROM kaon.external_id_hits"
    ).fetchall():
        key = (client, external_id, int(unix_seconds), int(sequence))
        assert key not in table, f"duplicate click {key}"
        table[key] = path
    return table


__all__ = ["kaon_dataset"]
