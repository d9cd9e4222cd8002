"""Run the real Meltano project (``meltano run`` in the repository) against emulators on free ports.

Each test gets its own state directory, DuckDB file and dead-letter file through environment
variables that Meltano maps onto settings (``TAP_KAHUNA_LOGS_API_URL`` -> ``api_url``), so the
project's ``dev`` environment runs unchanged against the test's emulators. Every command goes
through ``scripts/isolated_meltano.py``, as the Makefile, cron and Dagster run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset

# Records per stream the taps reported in a Meltano log: the demo's own reading of it.
from scripts.demo import records_by_stream as record_counts  # noqa: F401 (re-exported to the tests)
from tests.support.cli import run_checked

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MELTANO = str(VENV_BIN / "meltano")
LAUNCHER = str(PROJECT_ROOT / "scripts" / "isolated_meltano.py")
FIXED_NOW = datetime.fromisoformat("2026-11-18T15:30:00+00:00")
RUN_TIMEOUT_SECONDS = 300
# The server `make postgres` starts (scripts/postgres.sh): meltano.yml's dev values, or the KK_PG_* variables.
POSTGRES = {
    "host": "127.0.0.1",
    "port": os.environ.get("KK_PG_PORT", "55432"),
    "user": os.environ.get("KK_PG_USER", "kk"),
    "password": os.environ.get("KK_PG_PASSWORD", "kk-dev-password"),
    "database": os.environ.get("KK_PG_DATABASE", "kk_warehouse"),
}
POSTGRES_URL = "postgresql://{user}:{password}@{host}:{port}/{database}".format(**POSTGRES)

KAON_STREAMS = ("weeks", "engagement", "devices", "countries", "languages", "hits", "path_hits", "external_id_hits")
# The event names meltano.yml's Kahuna mappings (and the kissmetrics_events mart) give each category.
EVENT_PREFIXES = {"inapp": "Kahuna in-app", "push": "Kahuna push", "email": "Kahuna email"}


@dataclass
class MeltanoProject:
    """The repository's Meltano project with per-test state, warehouse and settings."""

    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """Where the file state backend keeps this test's state."""
        return self.workdir / "state"

    @property
    def duckdb_path(self) -> Path:
        """This test's DuckDB warehouse."""
        return self.workdir / "warehouse.duckdb"

    def sys_dir(self) -> Path:
        """This test's own ``.meltano``: the installed plugins linked in, its own database.

        The launcher gives each run a private system directory linking this one's entries, so the
        run table (this directory's ``meltano.db``) is per test and no run writes here.
        """
        sys_dir = self.workdir / "meltano-sys"
        if not sys_dir.exists():
            sys_dir.mkdir()
            for plugin_type in ("extractors", "loaders", "utilities"):
                (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
        return sys_dir

    def env(self) -> dict[str, str]:
        """The environment of every Meltano command of this test."""
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_STATE_BACKEND_URI": self.state_dir.as_uri(),
            "MELTANO_SYS_DIR_ROOT": str(self.sys_dir()),
            # Every plugin that opens the DuckDB warehouse: the loader, dbt and the replay tap.
            "TARGET_DUCKDB_FILEPATH": str(self.duckdb_path),
            "DBT_DUCKDB_PATH": str(self.duckdb_path),
            "TAP_DUCKDB_PATH": str(self.duckdb_path),
            **self.dbt_paths(),
            "TARGET_KISSMETRICS_DEAD_LETTER_PATH": str(self.workdir / "dead-letters.jsonl"),
            "MELTANO_CLI_LOG_LEVEL": "info",
            **postgres_settings(),
            **self.settings,
        }

    def dbt_paths(self) -> dict[str, str]:
        """This test's own dbt artifacts (run results, compiled SQL, logs) for each dbt utility."""
        return {
            f"DBT_{warehouse.upper()}_{kind.upper()}_PATH": str(self.workdir / "dbt" / warehouse / kind)
            for warehouse in ("duckdb", "postgres", "snowflake")
            for kind in ("target", "log")
        }

    def command(self, *args: str) -> list[str]:
        """A meltano command line, through the project's launcher (a private system directory per run)."""
        return [sys.executable, LAUNCHER, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``meltano <args>`` in the project; on failure the assertion shows the log's end."""
        return run_checked(
            self.command(*args),
            cwd=PROJECT_ROOT,
            env=self.env(),
            timeout=RUN_TIMEOUT_SECONDS,
            label=f"meltano {' '.join(args)}",
            explain=lambda result: log_tail(result.stderr),
            check=check,
        )

    def start(self, *args: str, log_path: Path) -> subprocess.Popen[bytes]:
        """Start ``meltano <args>`` in its own process group (so a test can kill the whole pipeline: launcher,
        meltano, tap and target)."""
        with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                self.command(*args),
                cwd=PROJECT_ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def state(self, state_id: str) -> dict[str, Any]:
        """The stored state of one state ID (``{}`` when there is none)."""
        path = self.state_dir / state_id / "state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on this test's DuckDB warehouse."""
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture
def project(tmp_path: Path) -> MeltanoProject:
    """The project with this test's own state directory, DuckDB file and dead-letter file."""
    if not (PROJECT_ROOT / ".meltano" / ".installed").exists():
        pytest.fail("the Meltano plugins are not installed: run `make meltano-install` (make test does it)")
    return MeltanoProject(tmp_path)


@pytest.fixture
def warehouse() -> Iterator[psycopg.Connection]:
    """A connection to the PostgreSQL test warehouse, with the schemas the suite writes dropped first."""
    try:
        connection = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"no PostgreSQL on 127.0.0.1:{POSTGRES['port']} ({error}): run `make postgres` (make test does it)")
    for schema in ("marts", "staging", "kissmetrics", "kahuna", "kaon"):
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    yield connection
    connection.close()


def postgres_settings() -> dict[str, str]:
    """The test server's connection for every plugin that opens the PostgreSQL warehouse."""
    return {
        f"{plugin}_{name.upper()}": value
        for plugin in ("TAP_POSTGRES", "TARGET_POSTGRES", "DBT_POSTGRES")
        for name, value in POSTGRES.items()
    }


def log_tail(log: str, lines: int = 40) -> str:
    """The end of a Meltano log without its boxed traceback art."""
    return "\n".join([line for line in log.splitlines() if "│" not in line and line.strip()][-lines:])


def kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a started pipeline and every process it spawned (tap, target)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_for(predicate: Any, timeout: float = 120, interval: float = 0.05) -> None:
    """Wait until ``predicate()`` is true (polling), or fail naming the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def primary_key_columns(connection: Any, table: str) -> list[str]:
    """The primary key columns of a PostgreSQL table (``schema.table``), sorted by name."""
    row = connection.execute(
        "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (table,),
    ).fetchone()
    return row[0] if row else []


def as_date(value: Any) -> date:
    """A DuckDB column value (date, datetime or ISO text) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def unix(timestamp: str) -> int:
    """Unix seconds of a Kahuna ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC timestamp."""
    return int(datetime.fromisoformat(timestamp + "+00:00").timestamp())


def expected_events(dataset: KahunaDataset) -> set[tuple[str, str, int]]:
    """(person, event, time) of every event the modelled view yields from the emulator's logs."""
    return {
        (str(record["user_id"]), f"{prefix} {record['action']}", unix(record["timestamp"]))
        for category, prefix in EVENT_PREFIXES.items()
        for day in dataset.days
        for record in dataset.records(category, day)
        if record.get("user_id") and record.get("action")
    }


def expected_aliases(dataset: KahunaDataset, *, self_merges: bool) -> set[frozenset[str]]:
    """Every merge as an unordered pair; ``self_merges``: keep a user merged into itself (the view drops it)."""
    return {
        frozenset((str(record["surviving_user_id"]), str(record["merged_user_id"])))
        for day in dataset.days
        for record in dataset.records("user_merge", day)
        if record.get("surviving_user_id")
        and record.get("merged_user_id")
        and (self_merges or record["surviving_user_id"] != record["merged_user_id"])
    }
