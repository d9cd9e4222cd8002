"""What every plugin's command line does on the skeleton: unknown settings are named, ``--test`` speaks plainly.

- a config key the plugin does not know is one warning at start naming the closest known setting, and the run
  goes on; the SDK's standard keys are known;
- ``--test`` (what ``meltano config test`` runs) prints one line per stream and exits 0, or the same one-line
  error as a run (exit 1, no traceback);
- the target lists only settings that mean something for beacons (no ``load_method``, ``add_record_metadata``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import TAP_KAHUNA, TAP_KAON, TARGET_KM, run_plugin
from tests.support.datasets import (
    FIXED_NOW_TEXT,
    KAHUNA_API_KEY,
    KAHUNA_SECRET_KEY,
    KAON_API_KEY,
    KAON_CLIENT,
    KM_API_KEY,
    SMALL_DATA,
    kaon_dataset,
)

KAON_STREAMS = ("countries", "devices", "engagement", "external_id_hits", "hits", "languages", "path_hits", "weeks")
KAHUNA_STREAMS = ("email_logs", "inapp_logs", "push_logs", "user_merge_logs")


@pytest.fixture(scope="module")
def kaon() -> Any:
    with EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kaon"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def kahuna() -> Any:
    with EmulatorProcess("kahuna", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kahuna"]) as emulator:
        yield emulator


def kaon_config(emulator: EmulatorProcess, **extra: Any) -> dict[str, Any]:
    return {"api_key": KAON_API_KEY, "client": KAON_CLIENT, "api_url": f"{emulator.url}/api", **extra}


def kahuna_config(emulator: EmulatorProcess, **extra: Any) -> dict[str, Any]:
    return {
        "secret_key": KAHUNA_SECRET_KEY,
        "api_key": KAHUNA_API_KEY,
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": FIXED_NOW_TEXT[:10],
        "end_date": FIXED_NOW_TEXT[:10],
        **extra,
    }


def warnings_of(stderr: str) -> list[str]:
    return [line.split("| ", 3)[-1] for line in stderr.splitlines() if "| WARNING" in line and "setting" in line]


def test_a_mistyped_setting_is_named_once_with_the_closest_and_the_run_goes_on(
    kaon: EmulatorProcess, tmp_path: Path
) -> None:
    run = run_plugin(TAP_KAON, kaon_config(kaon, start_weeek=776, end_week=776), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert warnings_of(run.stderr) == ["unknown setting 'start_weeek'; did you mean 'start_week'?"]
    first_listed = kaon_dataset().first_week  # start_week's default (417) is before it
    assert min(row["week"] for row in run.rows("weeks")) == first_listed, "the typo is ignored, as the warning says"


@pytest.mark.parametrize(
    ("plugin", "typo", "closest"),
    [(TAP_KAHUNA, "page_sise", "page_size"), (TARGET_KM, "tracking_uri", "tracking_url")],
    ids=["tap-kahuna-logs", "target-kissmetrics"],
)
def test_every_plugin_names_unknown_settings(
    kahuna: EmulatorProcess, tmp_path: Path, plugin: str, typo: str, closest: str
) -> None:
    if plugin == TAP_KAHUNA:
        run = run_plugin(plugin, kahuna_config(kahuna, categories=["user_merge"], **{typo: 5}), tmp_path)
    else:
        run = run_plugin(plugin, {"api_key": KM_API_KEY, "dry_run": True, typo: "x"}, tmp_path, stdin="")
    assert run.returncode == 0, run.stderr[-2000:]
    assert warnings_of(run.stderr) == [f"unknown setting '{typo}'; did you mean '{closest}'?"]


def test_the_sdks_standard_settings_are_known(kaon: EmulatorProcess, tmp_path: Path) -> None:
    standard = {
        "stream_maps": {"weeks": {"weekname": None}},
        "stream_map_config": {},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "batch_config": None,
        "user_agent": "kk-tests",
    }
    run = run_plugin(TAP_KAON, kaon_config(kaon, start_week=776, **standard), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert warnings_of(run.stderr) == []
    assert all("weekname" not in row for row in run.rows("weeks")), "the stream map was applied"


def test_connection_test_prints_one_line_per_stream(
    kaon: EmulatorProcess, kahuna: EmulatorProcess, tmp_path: Path
) -> None:
    for plugin, config, streams in (
        (TAP_KAON, kaon_config(kaon, start_week=776), KAON_STREAMS),
        (TAP_KAHUNA, kahuna_config(kahuna), KAHUNA_STREAMS),
    ):
        run = run_plugin(plugin, config, tmp_path, args=("--test",))
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.error_lines == []
        lines = [line.split("| ", 3)[-1] for line in run.stderr.splitlines() if "Connection test" in line]
        unconfigured = ("external_id_hits", "path_hits")  # no paths or external IDs set
        expected = [
            f"Connection test: stream '{name}' "
            + ("found no records for these settings" if name in unconfigured else "read its first record")
            for name in streams
        ]
        assert lines == [*expected, f"Connection test passed for {len(streams)} streams"]
        assert len(run.record_messages) == len(streams) - (2 if plugin == TAP_KAON else 0)


@pytest.mark.parametrize(
    ("plugin", "config_of", "message"),
    [
        (TAP_KAON, lambda e: kaon_config(e["kaon"], api_key="wrong"), "Kaon Insights refused the api_key (HTTP 403)"),
        (TAP_KAHUNA, lambda e: kahuna_config(e["kahuna"], api_key="wrong"), "answered 401 (bad credentials)"),
        (
            TAP_KAON,
            lambda e: {"api_key": "k", "client": "c", "max_concurrency": 0},
            "max_concurrency must be 1 or more",
        ),
    ],
    ids=["kaon-wrong-key", "kahuna-wrong-key", "kaon-bad-setting"],
)
def test_connection_test_failures_are_the_runs_one_line(
    kaon: EmulatorProcess, kahuna: EmulatorProcess, tmp_path: Path, plugin: str, config_of: Any, message: str
) -> None:
    run = run_plugin(plugin, config_of({"kaon": kaon, "kahuna": kahuna}), tmp_path, args=("--test",))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert len(run.error_lines) == 1, run.error_lines
    assert message in run.error_lines[0]


def test_the_targets_settings_are_only_those_that_mean_something_for_beacons() -> None:
    about = subprocess.run([TARGET_KM, "--about", "--format=json"], capture_output=True, text=True, check=True)
    settings = json.loads(about.stdout)["settings"]["properties"]
    assert "load_method" not in settings
    assert "add_record_metadata" not in settings
    assert {"batch_size_rows", "validate_records", "streams", "max_retries"} <= set(settings)
