"""The retry policy as every plugin applies it: the same settings, the same meanings, against always-failing servers.

- ``max_retries: 2`` is the first try and 2 retries: exactly 3 requests per call (per beacon for the target);
- a fractional ``backoff_base_seconds`` from the environment (``--config=ENV``) is the first wait: the emulator's
  request log (its clock follows real time here) shows the gap between the two tries of one call.

tap-duckdb is not in this contract: it reads a local file and sends no requests, so it has nothing to retry and
no retry settings (the last test holds it to that). Its one wait is ``lock_wait_seconds`` for a process that is
writing the file, tested in ``tests/tap_duckdb``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import TAP_DUCKDB, TAP_KAHUNA, TAP_KAON, TARGET_KM, PluginRun, run_plugin
from tests.support.datasets import KAHUNA_API_KEY, KAHUNA_SECRET_KEY, KAON_API_KEY, KAON_CLIENT, KM_API_KEY

PLUGINS = {TAP_KAON: "kaon", TAP_KAHUNA: "kahuna", TARGET_KM: "kissmetrics"}
RETRY_SETTINGS = ("max_retries", "backoff_base_seconds", "backoff_max_seconds", "request_timeout")
BACKOFF = 1.25  # above every plugin's default first wait (1, 0.5, 0.5 s), so a setting that is ignored shows
ONE_EVENT = "".join(
    json.dumps(message) + "\n"
    for message in (
        {"type": "SCHEMA", "stream": "events", "schema": {"properties": {"person": {}, "event": {}, "timestamp": {}}}},
        {"type": "RECORD", "stream": "events", "record": {"person": "p-1", "event": "Played", "timestamp": 1262304000}},
    )
)


def settings(plugin: str, url: str) -> dict[str, Any]:
    """Each plugin's settings for its emulator at ``url`` (one small call, or one beacon)."""
    if plugin == TAP_KAON:
        return {"api_key": KAON_API_KEY, "client": KAON_CLIENT, "api_url": f"{url}/api"}
    if plugin == TAP_KAHUNA:
        return {
            "secret_key": KAHUNA_SECRET_KEY,
            "api_key": KAHUNA_API_KEY,
            "api_url": f"{url}/api/kahunalogs",
            "start_date": "2026-11-18",
            "end_date": "2026-11-18",
            "categories": ["inapp"],
            "max_concurrency": 1,
        }
    return {"api_key": KM_API_KEY, "tracking_url": url, "max_concurrency": 1, "dead_letter_path": "dead.jsonl"}


@pytest.fixture(params=list(PLUGINS), ids=lambda plugin: Path(plugin).name)
def failing(request: pytest.FixtureRequest) -> Iterator[tuple[str, EmulatorProcess]]:
    """A plugin and its emulator answering every service request with 503, the clock following real time."""
    plugin = request.param
    log = ("--request-log",) if plugin == TARGET_KM else ()
    with EmulatorProcess(PLUGINS[plugin], "--error-rate", "1", "--error-statuses", "503", *log) as emulator:
        yield plugin, emulator


def run(plugin: str, config: dict[str, Any] | None, workdir: Path, env: dict[str, str] | None = None) -> PluginRun:
    return run_plugin(plugin, config, workdir, stdin=ONE_EVENT if plugin == TARGET_KM else None, env=env)


def test_max_retries_2_is_exactly_3_requests(failing: tuple[str, EmulatorProcess], tmp_path: Path) -> None:
    plugin, emulator = failing
    config = {**settings(plugin, emulator.url), "max_retries": 2, "backoff_base_seconds": 0.05}
    result = run(plugin, config, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert [entry["status"] for entry in emulator.requests()] == [503, 503, 503]
    assert len(result.error_lines) == 1, result.error_lines
    assert "2 retries" in result.error_lines[0] or "3 attempts" in result.error_lines[0], result.error_lines


def test_fractional_backoff_from_the_environment_is_the_first_wait(
    failing: tuple[str, EmulatorProcess], tmp_path: Path
) -> None:
    plugin, emulator = failing
    prefix = Path(plugin).name.upper().replace("-", "_")
    values = {**settings(plugin, emulator.url), "max_retries": 1, "backoff_base_seconds": str(BACKOFF)}
    env = {f"{prefix}_{name.upper()}": v if isinstance(v, str) else json.dumps(v) for name, v in values.items()}
    assert not any(name.startswith(prefix) for name in os.environ), "the test's own environment is clean"
    result = run(plugin, None, tmp_path, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    first, second = (datetime.fromisoformat(entry["time"]) for entry in emulator.requests())
    gap = (second - first).total_seconds()
    assert BACKOFF <= gap < BACKOFF * 1.1 + 1.0, gap


def about_settings(plugin: str) -> set[str]:
    about = subprocess.run([plugin, "--about", "--format=json"], capture_output=True, text=True, check=True).stdout
    return set(json.loads(about)["settings"]["properties"])


def test_the_plugins_with_requests_have_the_retry_settings_and_tap_duckdb_has_none() -> None:
    for plugin in PLUGINS:
        assert set(RETRY_SETTINGS) <= about_settings(plugin), plugin
    duckdb_settings = about_settings(TAP_DUCKDB)
    assert not duckdb_settings & {*RETRY_SETTINGS, "backoff_base", "backoff_max"}, "a setting that would do nothing"
    assert "lock_wait_seconds" in duckdb_settings
