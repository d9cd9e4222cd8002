"""Every DuckDB job and every direct replay job of ``meltano.yml`` runs first time in a fresh clone, with the
project's default paths (``output/warehouse.duckdb``, ``state/``, ``output/dbt/``): nothing is created by luck.

The clone is ``git clone`` of this repository (CI runs on a fresh clone of main: the same files); its Meltano
system directory links the installed plugins, as ``make meltano-install`` would have made them. Only the port
variables point the dev environment at this test's emulators.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, VENV_BIN

pytestmark = pytest.mark.meltano

DUCKDB_JOBS = ("kaon-to-warehouse", "kahuna-to-warehouse", "warehouse-to-kissmetrics")
DIRECT_REPLAY_JOBS = ("kahuna-to-kissmetrics", "kaon-clicks-to-kissmetrics")


def port_of(emulator: EmulatorProcess) -> str:
    """The port an emulator listens on."""
    return emulator.url.rsplit(":", 1)[1]


def fresh_clone(tmp_path: Path) -> tuple[Path, Path]:
    """A ``git clone`` of the repository and a system directory linking the installed plugins."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True, timeout=120)
    sys_dir = tmp_path / "meltano-sys"
    sys_dir.mkdir()
    for plugin_type in ("extractors", "loaders", "utilities"):
        (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
    return clone, sys_dir


def test_each_duckdb_and_direct_replay_job_runs_first_time_in_a_fresh_clone(
    tmp_path: Path, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    kaon = start_emulator("kaon", "--now", now)
    kahuna = start_emulator("kahuna", "--now", now, "--days", "2")
    kissmetrics = start_emulator("kissmetrics")
    clone, sys_dir = fresh_clone(tmp_path)
    assert not (clone / "output").exists(), "a fresh clone has no output/ folder"
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "KK_KAON_PORT": port_of(kaon),
        "KK_KAHUNA_PORT": port_of(kahuna),
        "KK_KISSMETRICS_PORT": port_of(kissmetrics),
    }

    beacons_before = 0
    for job in (*DUCKDB_JOBS, *DIRECT_REPLAY_JOBS):
        result = subprocess.run(
            [sys.executable, str(clone / "scripts" / "isolated_meltano.py"), "run", job],
            cwd=clone, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{job} failed first time:\n{result.stderr[-4000:]}"
        if job in {"warehouse-to-kissmetrics", *DIRECT_REPLAY_JOBS}:
            received = kissmetrics.control("stats")["raw"]["total"]
            assert received > beacons_before, f"{job} sent beacons"
            beacons_before = received

    warehouse = clone / "output" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = {
            f"{schema}.{table}": connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # noqa: S608
            for schema, table in connection.execute(
                "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
            ).fetchall()
        }
    assert tables["kahuna.push_logs"] > 0, tables
    assert tables["kaon.weeks"] > 0, tables
    assert any(name.startswith("marts.") and count > 0 for name, count in tables.items()), "dbt built the marts"
    assert (clone / "output" / "dbt" / "duckdb" / "target" / "run_results.json").exists()
    states = {path.parent.name: json.loads(path.read_text()) for path in (clone / "state").glob("*/state.json")}
    assert {
        "dev:tap-kaon-insights-to-target-duckdb",
        "dev:tap-kahuna-logs-to-target-duckdb",
        "dev:tap-kahuna-logs-to-target-kissmetrics--kahuna-events",
    } <= set(states), sorted(states)
