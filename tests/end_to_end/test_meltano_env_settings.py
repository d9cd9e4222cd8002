"""Numeric settings given as environment variables reach the plugins through Meltano, fractional ones included.

Meltano 4.4.1 turns a ``kind: decimal`` value read from the environment into a Python Decimal and then fails to
write the plugin's config ("Object of type Decimal is not JSON serializable"), so fractional settings are
``kind: string`` in meltano.yml and the plugins' settings layer reads "0.25" as 0.25.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest

from emulators.testing import EmulatorProcess
from tap_duckdb.settings import DuckDBSettings
from tap_kahuna_logs.settings import KahunaSettings
from tap_kaon_insights.settings import KaonSettings
from target_kissmetrics.settings import KissmetricsSettings
from tests.end_to_end.meltano_helpers import MeltanoProject

pytestmark = pytest.mark.meltano

NUMERIC_SETTINGS = {
    "tap-kaon-insights": {"request_timeout": 45.5, "devices_buffer_mb": 64, "backoff_base_seconds": 0.25},
    "tap-kahuna-logs": {"request_timeout": 40, "page_size": 250, "backoff_base_seconds": 0.25},
    "tap-duckdb": {"lock_wait_seconds": 7},  # its only number (no retries: it sends no requests)
    "target-kissmetrics": {"request_timeout": 15, "backoff_base_seconds": 0.25, "state_flush_seconds": 3},
}
SETTINGS_CLASSES = {
    "tap-kaon-insights": KaonSettings,
    "tap-kahuna-logs": KahunaSettings,
    "tap-duckdb": DuckDBSettings,
    "target-kissmetrics": KissmetricsSettings,
}


def env_name(plugin: str, setting: str) -> str:
    return f"{plugin.replace('-', '_').upper()}_{setting.upper()}"


@pytest.mark.parametrize("plugin", sorted(NUMERIC_SETTINGS))
def test_numeric_settings_from_the_environment_reach_the_plugin(project: MeltanoProject, plugin: str) -> None:
    expected = NUMERIC_SETTINGS[plugin]
    project.settings.update({env_name(plugin, name): str(value) for name, value in expected.items()})
    result = project.run("invoke", "--dump=config", plugin)
    config = json.loads(result.stdout)
    settings = SETTINGS_CLASSES[plugin].from_config(config)
    assert {name: getattr(settings, name) for name in expected} == expected


BACKOFF = 1.25  # above every plugin's default first wait (1, 0.5, 0.5 s), so an ignored setting shows


def first_retry_gaps(emulator: EmulatorProcess) -> list[float]:
    """Seconds between the first and second try of each distinct request (the emulator's clock is real time)."""
    tries: dict[str, list[datetime]] = {}
    for entry in emulator.requests():
        request = json.dumps([entry["path"], entry["query"], entry.get("json")], sort_keys=True)
        tries.setdefault(request, []).append(datetime.fromisoformat(entry["time"]))
    return [(times[1] - times[0]).total_seconds() for times in tries.values() if len(times) > 1]


@pytest.mark.parametrize(
    ("pipeline", "failing_service", "plugin"),
    [
        (("tap-kaon-insights", "target-duckdb"), "kaon", "tap-kaon-insights"),
        (("tap-kahuna-logs", "target-duckdb"), "kahuna", "tap-kahuna-logs"),
        (("tap-kahuna-logs", "target-kissmetrics--kahuna-events"), "kissmetrics", "target-kissmetrics"),
    ],
    ids=["tap-kaon-insights", "tap-kahuna-logs", "target-kissmetrics"],
)
def test_fractional_backoff_from_the_environment_through_meltano_run(
    project: MeltanoProject,
    start_emulator: Callable[..., EmulatorProcess],
    pipeline: tuple[str, str],
    failing_service: str,
    plugin: str,
) -> None:
    log = ["--request-log"] if failing_service == "kissmetrics" else []
    # The failing service's clock follows real time (no --now): its request log then shows the waits.
    failing = EmulatorProcess(failing_service, "--error-rate", "1", "--error-statuses", "503", *log)
    try:
        kahuna = start_emulator("kahuna") if failing_service == "kissmetrics" else failing
        url = {"kaon": f"{failing.url}/api", "kahuna": f"{kahuna.url}/api/kahunalogs"}
        project.settings.update(
            {
                "TAP_KAON_INSIGHTS_API_URL": url["kaon"],
                "TAP_KAHUNA_LOGS_API_URL": url["kahuna"],
                "TAP_KAHUNA_LOGS_START_DATE": "2026-11-18",
                "TAP_KAHUNA_LOGS_END_DATE": "2026-11-18",
                "TAP_KAHUNA_LOGS_CATEGORIES": '["inapp"]',
                "TARGET_KISSMETRICS_TRACKING_URL": failing.url,
                env_name(plugin, "max_retries"): "1",
                env_name(plugin, "backoff_base_seconds"): str(BACKOFF),
            }
        )
        result = project.run("run", *pipeline, check=False)
        assert result.returncode != 0, "every request failed, so the run must fail"
        gaps = first_retry_gaps(failing)
    finally:
        failing.stop()
    assert gaps, "no request was retried"
    assert all(BACKOFF <= gap < BACKOFF * 1.1 + 1.0 for gap in gaps), gaps
