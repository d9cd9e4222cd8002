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

import duckdb
import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import TAP_DUCKDB, TAP_KAHUNA, TAP_KAON, TARGET_KM, run_plugin
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
DUCKDB_STREAMS = ("marts-empty_mart", "marts-events")  # discovered in schema, table order


@pytest.fixture(scope="module")
def kaon() -> Any:
    with EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kaon"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def kahuna() -> Any:
    with EmulatorProcess("kahuna", "--now", FIXED_NOW_TEXT, *SMALL_DATA["kahuna"]) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small DuckDB file: ``marts.events`` (3 rows, one DECIMAL column) and ``marts.empty_mart`` (no rows)."""
    path = tmp_path_factory.mktemp("duckdb") / "small.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        connection.execute("create table marts.events (id integer primary key, amount decimal(12, 2))")
        connection.execute("insert into marts.events values (1, 1.25), (2, 2.5), (3, 3.75)")
        connection.execute("create table marts.empty_mart (id integer)")
    return path


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
    [
        (TAP_KAHUNA, "page_sise", "page_size"),
        (TAP_DUCKDB, "filter_schema", "filter_schemas"),
        (TARGET_KM, "tracking_uri", "tracking_url"),
    ],
    ids=["tap-kahuna-logs", "tap-duckdb", "target-kissmetrics"],
)
def test_every_plugin_names_unknown_settings(
    kahuna: EmulatorProcess, duckdb_file: Path, tmp_path: Path, plugin: str, typo: str, closest: str
) -> None:
    if plugin == TAP_KAHUNA:
        run = run_plugin(plugin, kahuna_config(kahuna, categories=["user_merge"], **{typo: 5}), tmp_path)
    elif plugin == TAP_DUCKDB:
        # Discovery: a sync with no catalog selects nothing and stops (nothing to read), warning or not.
        config = {"path": str(duckdb_file), typo: ["marts"]}
        run = run_plugin(plugin, config, tmp_path, args=("--discover",), parse=False)
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


def test_the_sql_taps_standard_settings_are_known(duckdb_file: Path, tmp_path: Path) -> None:
    standard = {
        "use_singer_decimal": True,  # singer-sdk's SQL taps add it to the tap's own settings
        "stream_maps": {"marts-events": {"amount": None}},
        "flattening_enabled": False,
        "batch_config": None,
    }
    run = run_plugin(TAP_DUCKDB, {"path": str(duckdb_file), **standard}, tmp_path, args=("--discover",), parse=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert warnings_of(run.stderr) == []
    (events,) = [entry for entry in json.loads(run.stdout)["streams"] if entry["tap_stream_id"] == "marts-events"]
    assert events["schema"]["properties"]["amount"] == {"type": ["string", "null"], "format": "x-singer.decimal"}


def test_connection_test_prints_one_line_per_stream(
    kaon: EmulatorProcess, kahuna: EmulatorProcess, duckdb_file: Path, tmp_path: Path
) -> None:
    # singer-sdk's SQL streams keep their selection in their catalog entry, which the SDK's forced selection of
    # ``--test`` does not change: tap-duckdb reads each stream's first record (the lines say so) but writes none.
    for plugin, config, streams, without_records, written in (
        (TAP_KAON, kaon_config(kaon, start_week=776), KAON_STREAMS, ("external_id_hits", "path_hits"), 6),
        (TAP_KAHUNA, kahuna_config(kahuna), KAHUNA_STREAMS, (), 4),
        (TAP_DUCKDB, {"path": str(duckdb_file)}, DUCKDB_STREAMS, ("marts-empty_mart",), 0),
    ):
        run = run_plugin(plugin, config, tmp_path, args=("--test",))
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.error_lines == []
        lines = [line.split("| ", 3)[-1] for line in run.stderr.splitlines() if "Connection test" in line]
        expected = [
            f"Connection test: stream '{name}' "
            + ("found no records for these settings" if name in without_records else "read its first record")
            for name in streams
        ]
        assert lines == [*expected, f"Connection test passed for {len(streams)} streams"]
        assert len(run.record_messages) == written


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
        (
            TAP_DUCKDB,
            lambda e: {"path": str(e["tmp"] / "nowhere.duckdb")},
            "nowhere.duckdb does not exist: set `path` to a DuckDB database file",
        ),
        (
            TAP_DUCKDB,
            lambda e: {"path": str(e["duckdb_file"]), "lock_wait_seconds": "-1"},
            "lock_wait_seconds must be 0 or more (got -1)",
        ),
    ],
    ids=["kaon-wrong-key", "kahuna-wrong-key", "kaon-bad-setting", "duckdb-missing-file", "duckdb-bad-setting"],
)
def test_connection_test_failures_are_the_runs_one_line(
    kaon: EmulatorProcess,
    kahuna: EmulatorProcess,
    duckdb_file: Path,
    tmp_path: Path,
    plugin: str,
    config_of: Any,
    message: str,
) -> None:
    places = {"kaon": kaon, "kahuna": kahuna, "duckdb_file": duckdb_file, "tmp": tmp_path}
    run = run_plugin(plugin, config_of(places), tmp_path, args=("--test",))
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
