"""Plain ``meltano run``s that share a tap, started at the same moment, through the project's launcher.

Without it both rewrite ``.meltano/run/tap-kahuna-logs/tap.properties.json`` and break each other
(``Invalid catalog``, ``No such file or directory``); with it each run has its own system directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import FIXED_NOW, PROJECT_ROOT, MeltanoProject, as_date, log_tail
from tests.orchestration.dagster_helpers import KAHUNA_TABLES, comparable, expected_kahuna_rows, kahuna_rows

pytestmark = [pytest.mark.meltano, pytest.mark.postgres, pytest.mark.slow]

KAHUNA_DAYS = 2
KAHUNA_LOGS_PER_DAY = 30
ROUNDS = 5
# The README's cron lines: meltano.yml's schedules of the two jobs, through the launcher.
SCHEDULES = ("kahuna-to-warehouse-hourly", "kahuna-to-postgres-hourly")
LAUNCHER = PROJECT_ROOT / "scripts" / "isolated_meltano.py"


def test_two_scheduled_jobs_sharing_a_tap_started_at_the_same_moment_both_succeed_five_times(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
        }
    )
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")

    for round_number in range(ROUNDS):
        logs = [project.workdir / f"round-{round_number}-{name}.log" for name in SCHEDULES]
        runs = [project.start("schedule", "run", name, log_path=log) for name, log in zip(SCHEDULES, logs, strict=True)]
        for name, run, log in zip(SCHEDULES, runs, logs, strict=True):
            assert run.wait(timeout=300) == 0, f"round {round_number}, {name}:\n{log_tail(log.read_text())}"

    for category, table in KAHUNA_TABLES.items():
        expected = {row for day in dataset.days for row in expected_kahuna_rows(dataset, category, day)}
        loaded = [comparable(row) for row in kahuna_rows(warehouse, category)]
        assert len(loaded) == len(set(loaded)), table
        assert set(loaded) == expected, table
        duckdb_keys = project.query(f"select log_date, log_position from kahuna.{table}")  # noqa: S608
        assert sorted((as_date(day).isoformat(), int(position)) for day, position in duckdb_keys) == sorted(
            (day, position) for day, position, _, _ in expected
        ), table
    # No run wrote its files into the shared system directory.
    assert not (project.sys_dir() / "run").exists()


def test_the_launcher_refuses_commands_that_change_the_shared_installation() -> None:
    result = subprocess.run(
        [sys.executable, str(LAUNCHER), "--environment", "dev", "install"], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "`meltano install` changes the shared installation" in result.stderr + result.stdout


def test_the_launcher_removes_its_private_directory_and_passes_the_exit_code_on(
    project: MeltanoProject, tmp_path: Path
) -> None:
    private_root = tmp_path / "private"
    private_root.mkdir()
    project.settings["TMPDIR"] = str(private_root)

    failed = project.run("run", "no-such-job", check=False)

    assert failed.returncode == 1
    assert "no-such-job" in failed.stderr
    assert list(private_root.iterdir()) == []
    shutil.rmtree(private_root)


def test_the_launcher_runs_a_python_module_with_the_same_private_system_directory(
    project: MeltanoProject, tmp_path: Path
) -> None:
    (tmp_path / "show_isolation.py").write_text(
        "import json, os, sys\n"
        "sys_dir = os.environ['MELTANO_SYS_DIR_ROOT']\n"
        "links = {name: os.path.realpath(os.path.join(sys_dir, name)) for name in os.listdir(sys_dir)}\n"
        "print(json.dumps([sys_dir, links, os.environ['MELTANO_DATABASE_URI'], sys.argv[1:]]))\n"
        "raise SystemExit(3)\n"
    )
    project.settings["PYTHONPATH"] = str(tmp_path)

    shown = subprocess.run(
        [*project.command("--module", "show_isolation", "--flag", "value")],
        cwd=PROJECT_ROOT,
        env=project.env(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert shown.returncode == 3  # the module's exit status, passed on
    sys_dir, links, database, arguments = json.loads(shown.stdout)
    assert sys_dir != str(project.sys_dir())  # private,
    assert not Path(sys_dir).exists()  # and removed afterwards
    shared = project.sys_dir().resolve()
    for installed in ("extractors", "loaders", "utilities"):  # the installation linked
        assert links[installed] == str((shared / installed).resolve())
    assert Path(links.get("run", sys_dir)).resolve().parent != shared  # no shared run files
    assert database == f"sqlite:///{project.sys_dir().resolve() / 'meltano.db'}"
    assert arguments == ["--flag", "value"]
    missing = subprocess.run([sys.executable, str(LAUNCHER), "--module"], capture_output=True, text=True, check=False)
    assert missing.returncode != 0
    assert "--module needs a module name" in missing.stderr
