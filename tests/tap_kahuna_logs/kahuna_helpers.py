"""Helpers for the tap-kahuna-logs tests: the emulator, the real CLI, expected rows from the dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from emulators.testing import EmulatorProcess

NOW = "2026-11-18T15:30:00+00:00"  # tests/conftest.py FIXED_NOW
DAYS = 5
LOGS_PER_DAY = 120
SECRET_KEY = "kahuna-demo-secret"  # noqa: S105 (the emulator's demo credential)
API_KEY = "kahuna-demo-key"
CATEGORIES = ("inapp", "push", "email", "user_merge")
STREAMS = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}
TAP = str(Path(sys.executable).with_name("tap-kahuna-logs"))


def start_kahuna(*args: str) -> EmulatorProcess:
    """A Kahuna emulator with the small data set, frozen at NOW (later args win)."""
    return EmulatorProcess("kahuna", "--now", NOW, "--days", str(DAYS), "--logs-per-day", str(LOGS_PER_DAY), *args)


def dataset(now: str = NOW, env: str = "p") -> Any:
    """The emulator's deterministic data for ``now``."""
    from emulators.kahuna_data import KahunaDataset

    return KahunaDataset(seed=42, now=datetime.fromisoformat(now), days=DAYS, logs_per_day=LOGS_PER_DAY, env=env)


def first_day() -> date:
    """The oldest day the emulator has."""
    return dataset().days[0]


def base_config(emulator: EmulatorProcess, **overrides: Any) -> dict[str, Any]:
    """A config that reads the emulator's whole data set up to its today, in small pages."""
    data = dataset()
    config: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "api_key": API_KEY,
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": data.days[0].isoformat(),
        "end_date": data.days[-1].isoformat(),
        "page_size": 17,
        "max_concurrency": 3,
        "max_retries": 4,
    }
    config.update(overrides)
    return config


@dataclass
class TapRun:
    """What one CLI run printed."""

    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)

    @property
    def final_state(self) -> dict:
        """The last STATE message's value."""
        assert self.states, f"no STATE emitted; stderr:\n{self.stderr[-3000:]}"
        return self.states[-1]


def run_cli(
    workdir: Path,
    config: dict,
    state: dict | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> TapRun:
    """Run the real ``tap-kahuna-logs`` CLI with a config (and state) and parse its messages."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("config-*.json")))
    config_path = workdir / f"config-{n}.json"
    config_path.write_text(json.dumps(config))
    command = [TAP, "--config", str(config_path), *args]
    if state is not None:
        state_path = workdir / f"state-{n}.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, check=False
    )
    result = TapRun(completed.returncode, completed.stdout, completed.stderr)
    for line in completed.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            result.records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            result.states.append(message["value"])
    return result


def expected_rows(category: str, now: str = NOW, days: list[date] | None = None) -> list[tuple[str, int, dict]]:
    """(log_date, log_position, raw record) for every record of ``category`` the API holds at ``now``."""
    data = dataset(now)
    rows = []
    for day in days or data.days:
        rows.extend((day.isoformat(), position, raw) for position, raw in enumerate(data.records(category, day)))
    return rows


def keys(records: list[dict]) -> list[tuple[str, int]]:
    """The primary key of each record, in output order."""
    return [(record["log_date"], record["log_position"]) for record in records]
