"""The Kaon scenarios the pipeline benchmarks share: their emulator, their ``meltano run`` in isolation, sampled.

- clicks: ``external_id_hits`` of 10 external IDs (the emulator's clock then moved a year on, so every click is
  visible); devices: ``devices`` of one full week (week 775).
- :func:`meltano_env`: this repository's Meltano project (``dev``) with its own state directory, DuckDB file and
  ``.meltano`` run directory, settings and stream selection from environment variables;
  :func:`sampled_run`: the run with its process tree sampled (``sampling.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sampling import SAMPLE_SECONDS, TreeSampler

from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MELTANO = str(VENV_BIN / "meltano")
NOW = "2026-11-18T15:30:00+00:00"
#: Clicks run up to the end of the week after NOW; the clock moves past that so every click is visible.
CLICKS_VISIBLE_AT = datetime.fromisoformat(NOW) + timedelta(days=365)
DEVICES_WEEK = 775  # the last full week before NOW's week 776 (which is still filling)
EXTERNAL_IDS = 10
RUN_TIMEOUT_SECONDS = 900
ROW_COUNT_QUERIES = {
    "external_id_hits": "SELECT count(*) FROM kaon.external_id_hits",
    "devices": "SELECT count(*) FROM kaon.devices",
}


@dataclass
class Scenario:
    """One data set: emulator knobs, tap settings, the stream and the rows expected in DuckDB."""

    name: str
    stream: str
    emulator_args: list[str]
    settings: dict[str, Any]
    expected_rows: int
    visible_at: datetime | None = None


def clicks_scenario(total: int) -> Scenario:
    """``total`` clickstream rows over 10 external IDs (``total`` must be a multiple of 10)."""
    if total <= 0 or total % EXTERNAL_IDS:
        raise SystemExit(f"--clicks must be a positive multiple of {EXTERNAL_IDS}, not {total}")
    per_id = total // EXTERNAL_IDS
    dataset = KaonDataset(now=datetime.fromisoformat(NOW), external_ids=EXTERNAL_IDS, clicks_per_id=per_id)
    visible = dataset.at(CLICKS_VISIBLE_AT)
    ids = visible.external_id_names
    expected = sum(len(visible.clickstream(external_id)) for external_id in ids)
    return Scenario(
        name=f"clicks ({total:,} rows)",
        stream="external_id_hits",
        emulator_args=["--external-ids", str(EXTERNAL_IDS), "--clicks-per-id", str(per_id)],
        settings={"external_ids": ids, "start_week": DEVICES_WEEK, "end_week": DEVICES_WEEK},
        expected_rows=expected,
        visible_at=CLICKS_VISIBLE_AT,
    )


def devices_scenario(devices: int) -> Scenario:
    """One full week with ``devices`` devices."""
    dataset = KaonDataset(now=datetime.fromisoformat(NOW), weeks_before_now=1, devices_per_week=devices)
    return Scenario(
        name=f"devices ({devices:,} in one week)",
        stream="devices",
        emulator_args=["--weeks-before-now", "1", "--devices-per-week", str(devices), "--paths", "2"],
        settings={"external_ids": [], "start_week": DEVICES_WEEK, "end_week": DEVICES_WEEK},
        expected_rows=dataset.device_count(DEVICES_WEEK),
    )


def start_emulator(scenario: Scenario) -> EmulatorProcess:
    """The scenario's Kaon emulator, its clock where all the scenario's data is visible."""
    emulator = EmulatorProcess("kaon", "--now", NOW, *scenario.emulator_args)
    if scenario.visible_at:
        emulator.set_clock(now=scenario.visible_at.isoformat())
    return emulator


def meltano_env(work: Path, scenario: Scenario, emulator_url: str) -> dict[str, str]:
    """Environment of an isolated ``meltano run`` of the project's dev environment."""
    sys_dir = work / "meltano-sys"
    sys_dir.mkdir()
    for plugin_type in ("extractors", "loaders", "utilities"):
        (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
    settings = {"api_url": f"{emulator_url}/api", **scenario.settings}
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_STATE_BACKEND_URI": (work / "state").as_uri(),
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_CLI_LOG_LEVEL": "info",
        "TARGET_DUCKDB_FILEPATH": str(work / "warehouse.duckdb"),
        "TAP_KAON_INSIGHTS__SELECT": json.dumps([f"{scenario.stream}.*"]),
        **{
            f"TAP_KAON_INSIGHTS_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in settings.items()
        },
    }


def sampled_run(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    sampler_for: Callable[[int], TreeSampler],
    timeout: float = RUN_TIMEOUT_SECONDS,
) -> tuple[subprocess.Popen[bytes], float, TreeSampler]:
    """Run a command in the project (output in ``log_path``), sampling its process tree; killed past ``timeout``."""
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = sampler_for(process.pid)
        while process.poll() is None:
            sampler.sample()
            if time.monotonic() - started > timeout:
                process.kill()
            time.sleep(SAMPLE_SECONDS)
        return process, time.monotonic() - started, sampler
