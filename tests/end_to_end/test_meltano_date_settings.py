"""Dates mean what the user typed: Meltano passes a date setting's text through, and the tap's strict check stops.

With ``kind: date_iso8601`` Meltano 4.4 parses a value leniently before the plugin sees it: ``2026-31-01`` became
2026-01-31 (ten months more data), ``01/12/2026`` 12 January and ``yesterday`` a date-time. The definitions declare
date settings as strings, so the text reaches the tap unchanged, through ``meltano run`` (environment) and
``meltano config set`` (``meltano.yml``) alike, and the tap refuses it with one line before any request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import FIXED_NOW, MELTANO, PROJECT_ROOT, MeltanoProject

pytestmark = pytest.mark.meltano

LENIENTLY_PARSED = ["2026-31-01", "01/12/2026", "yesterday"]
TOMORROW = (datetime.now(timezone.utc).date() + timedelta(days=1)).isoformat()


def error_lines(stderr: str) -> list[str]:
    """The ERROR lines of a Meltano log."""
    return [line for line in stderr.splitlines() if "[error" in line]


def test_no_date_setting_is_left_to_meltanos_lenient_date_parsing() -> None:
    for path in [PROJECT_ROOT / "plugins.meltano.yml", *PROJECT_ROOT.glob("*/meltano-plugin.yml")]:
        definitions = yaml.safe_load(path.read_text())
        plugins = [plugin for group in definitions.get("plugins", {}).values() for plugin in group]
        settings = [setting for plugin in plugins or [definitions] for setting in plugin.get("settings", [])]
        assert settings, path
        assert [s["name"] for s in settings if s.get("kind") == "date_iso8601"] == [], path
    kahuna = next(
        plugin
        for plugin in yaml.safe_load((PROJECT_ROOT / "plugins.meltano.yml").read_text())["plugins"]["extractors"]
        if plugin["name"] == "tap-kahuna-logs"
    )
    dates = {s["name"]: s["kind"] for s in kahuna["settings"] if s["name"] in ("start_date", "end_date")}
    assert dates == {"start_date": "string", "end_date": "string"}


@pytest.mark.parametrize("typed", LENIENTLY_PARSED)
def test_a_date_meltano_would_have_guessed_stops_meltano_run_before_any_request(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], typed: str
) -> None:
    kahuna = start_emulator("kahuna")
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": typed,
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
        }
    )
    result = project.run("run", "tap-kahuna-logs", "target-duckdb", check=False)
    assert result.returncode != 0
    expected = f"start_date must be a date like 2026-11-01 (got '{typed}')"
    assert [line for line in error_lines(result.stderr) if expected in line], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert kahuna.requests() == []
    assert project.state("dev:tap-kahuna-logs-to-target-duckdb") == {}
    assert not project.duckdb_path.exists() or project.query(
        "select count(*) from information_schema.tables where table_schema = 'kahuna'"
    ) == [(0,)]


def test_a_start_date_in_the_future_stops_the_run_with_one_line(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon")
    project.settings.update({"TAP_KAON_INSIGHTS_API_URL": f"{kaon.url}/api", "TAP_KAON_INSIGHTS_START_DATE": TOMORROW})
    result = project.run("run", "tap-kaon-insights", "target-duckdb", check=False)
    assert result.returncode != 0
    expected = f"start_date is in the future ({TOMORROW}; today is "
    assert [line for line in error_lines(result.stderr) if expected in line], result.stderr[-3000:]
    assert kaon.requests() == []
    assert project.state("dev:tap-kaon-insights-to-target-duckdb") == {}


def scratch_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the project's definitions whose ``meltano config set`` may write, with the installed plugins."""
    root = tmp_path / "scratch-project"
    root.mkdir()
    for name in ("meltano.yml", "plugins.meltano.yml"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    sys_dir = root / "sys"
    sys_dir.mkdir()
    for plugin_type in ("extractors", "loaders", "utilities"):
        (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return root, env


@pytest.mark.parametrize("typed", ["2026-31-01", TOMORROW])
def test_meltano_config_set_keeps_the_text_and_the_tap_refuses_it(tmp_path: Path, typed: str) -> None:
    root, env = scratch_project(tmp_path)

    def meltano(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MELTANO, "--environment", "dev", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert meltano("config", "set", "tap-kahuna-logs", "start_date", typed).returncode == 0
    dumped = meltano("invoke", "--dump=config", "tap-kahuna-logs")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert json.loads(dumped.stdout)["start_date"] == typed
    invoked = meltano("invoke", "tap-kahuna-logs")
    assert invoked.returncode != 0
    assert invoked.stdout == ""  # not one Singer message
    problem = "must be a date like 2026-11-01" if typed != TOMORROW else "is in the future"
    assert [line for line in error_lines(invoked.stderr) if f"start_date {problem}" in line], invoked.stderr[-2000:]
