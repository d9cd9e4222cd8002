"""meltano.yml itself: settings in step with the plugins, schedules, offline checks of the Snowflake loader."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import duckdb
import pytest
import yaml

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, MeltanoProject

pytestmark = pytest.mark.meltano

JOBS = {
    "kaon-to-warehouse": ["tap-kaon-insights target-duckdb", "dbt-duckdb:build"],
    "kahuna-to-warehouse": ["tap-kahuna-logs target-duckdb", "dbt-duckdb:build"],
    "warehouse-to-kissmetrics": ["dbt-duckdb:build", "tap-duckdb target-kissmetrics--warehouse"],
    "kaon-to-postgres": ["tap-kaon-insights target-postgres", "dbt-postgres:build"],
    "kahuna-to-postgres": ["tap-kahuna-logs target-postgres", "dbt-postgres:build"],
    "postgres-to-kissmetrics": ["dbt-postgres:build", "tap-postgres target-kissmetrics--warehouse"],
    "kaon-to-snowflake": ["tap-kaon-insights target-snowflake", "dbt-snowflake:build"],
    "kahuna-to-snowflake": ["tap-kahuna-logs target-snowflake", "dbt-snowflake:build"],
    "snowflake-to-kissmetrics": ["dbt-snowflake:build", "tap-snowflake target-kissmetrics--warehouse"],
    "kahuna-to-kissmetrics": ["tap-kahuna-logs target-kissmetrics--kahuna-events"],
    "kaon-clicks-to-kissmetrics": ["tap-kaon-insights--clicks target-kissmetrics--kaon-clicks"],
}


# Every plugin that opens the DuckDB warehouse file, and the setting that names the file.
DUCKDB_FILE_PLUGINS = {
    ("loaders", "target-duckdb"): "filepath",
    ("utilities", "dbt-duckdb"): "path",
    ("extractors", "tap-duckdb"): "path",
}
WAREHOUSE_DUCKDB = "$MELTANO_PROJECT_ROOT/output/warehouse.duckdb"
MART_STREAMS = ("marts-kissmetrics_events", "marts-kissmetrics_people", "marts-kissmetrics_aliases")
REPLAY_TAPS = ("tap-duckdb", "tap-postgres", "tap-snowflake")


def definitions() -> dict[tuple[str, str], dict[str, Any]]:
    """Every plugin meltano.yml (and the files it includes) defines, by (plugin type, name)."""
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    files = [project, *(yaml.safe_load((PROJECT_ROOT / path).read_text()) for path in project["include_paths"])]
    return {
        (kind, plugin["name"]): plugin
        for contents in files
        for kind, plugins in contents["plugins"].items()
        for plugin in plugins
    }


def test_each_plugin_readme_shows_its_settings_as_about_does() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "readme_settings.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_plugin_definitions_and_the_projects_copy_match_each_plugins_about() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "plugin_definitions.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_job_has_a_schedule(project: MeltanoProject) -> None:
    listed = json.loads(project.run("schedule", "list", "--format=json").stdout)["schedules"]["job"]
    jobs = {schedule["job"]["name"]: schedule["job"]["tasks"] for schedule in listed}
    for job, tasks in JOBS.items():
        assert jobs.get(job) == tasks, job
    assert all(schedule["cron_interval"] for schedule in listed)


def invoke_without_account(project: MeltanoProject, *args: str) -> subprocess.CompletedProcess[str]:
    """``meltano invoke <args>`` with SNOWFLAKE_ACCOUNT empty and a canary password (nothing on stdin)."""
    project.settings.update({"SNOWFLAKE_ACCOUNT": "", "SNOWFLAKE_USER": "someone", "SNOWFLAKE_PASSWORD": "canary-pw-7"})
    return subprocess.run(
        project.command("invoke", *args),
        cwd=PROJECT_ROOT,
        env=project.env(),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_snowflake_loader_without_an_account_stops_with_a_clear_message(project: MeltanoProject) -> None:
    result = invoke_without_account(project, "target-snowflake")
    assert result.returncode != 0
    assert "'account' is a required property" in result.stderr
    assert "canary-pw-7" not in result.stderr + result.stdout


def test_snowflake_loader_settings_resolve_from_the_environment(project: MeltanoProject) -> None:
    project.settings.update(
        {"SNOWFLAKE_ACCOUNT": "myorg-acct1", "SNOWFLAKE_USER": "loader", "SNOWFLAKE_PASSWORD": "pw"}
    )
    config = json.loads(project.run("invoke", "--dump=config", "target-snowflake").stdout)
    assert config["account"] == "myorg-acct1"
    assert config["user"] == "loader"
    assert config["database"] == "KK_DEV"
    assert config["load_method"] == "upsert"


def test_every_plugin_that_opens_the_duckdb_file_pins_one_duckdb_version_and_opens_one_file() -> None:
    plugins = definitions()
    versions = {}
    for (kind, name), setting in DUCKDB_FILE_PLUGINS.items():
        plugin = plugins[kind, name]
        pins = re.findall(r"(?:^|\s)duckdb==(\S+)", plugin["pip_url"])
        assert len(pins) == 1, f"{name}: pin duckdb in its pip_url"
        assert plugin["config"][setting] == WAREHOUSE_DUCKDB, name
        installed = PROJECT_ROOT / ".meltano" / kind / name / "venv" / "bin" / "python"
        version = subprocess.run(
            [str(installed), "-c", "import duckdb; print(duckdb.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        versions[name] = (pins[0], version)
    assert set(versions.values()) == {("1.2.2", "1.2.2")}, versions
    # the tests open the same files with the same version
    assert "duckdb==1.2.2" in (PROJECT_ROOT / "requirements-dev.txt").read_text().split()


def test_the_replay_taps_read_the_three_marts_incrementally_and_the_target_maps_them() -> None:
    plugins = definitions()
    for tap in REPLAY_TAPS:
        plugin = plugins["extractors", tap]
        assert set(plugin["select"]) == {f"{stream}.*" for stream in MART_STREAMS}, tap
        for stream in MART_STREAMS:
            metadata = plugin["metadata"][stream]
            assert (metadata["replication-method"], metadata["replication-key"]) == ("INCREMENTAL", "replay_sequence")
    mapping = plugins["loaders", "target-kissmetrics--warehouse"]["config"]["streams"]
    assert {stream: item["kind"] for stream, item in mapping.items()} == dict(
        zip(MART_STREAMS, ("event", "set", "alias"), strict=True)
    )


def test_snowflake_replay_tap_settings_resolve_from_the_environment(project: MeltanoProject) -> None:
    project.settings.update(
        {"SNOWFLAKE_ACCOUNT": "myorg-acct1", "SNOWFLAKE_USER": "replay", "SNOWFLAKE_PASSWORD": "pw"}
    )
    config = json.loads(project.run("invoke", "--dump=config", "tap-snowflake").stdout)
    assert (config["account"], config["user"], config["database"]) == ("myorg-acct1", "replay", "KK_DEV")
    assert config["tables"] == [stream.replace("-", ".") for stream in MART_STREAMS]


def test_snowflake_replay_tap_without_an_account_stops_with_a_clear_message(project: MeltanoProject) -> None:
    result = invoke_without_account(project, "tap-snowflake", "--discover")
    assert result.returncode != 0
    assert "'account' is a required property" in result.stderr
    assert "canary-pw-7" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("plugin", "args"),
    [
        ("tap-kaon-insights", ("--discover",)),
        ("tap-kaon-insights--clicks", ("--discover",)),
        ("tap-kahuna-logs", ("--discover",)),
        ("tap-duckdb", ("--discover",)),
        ("target-kissmetrics--kahuna-events", ()),
        ("target-kissmetrics--kaon-clicks", ()),
    ],
)
def test_the_projects_config_holds_no_key_the_plugins_do_not_know(
    project: MeltanoProject, plugin: str, args: tuple[str, ...]
) -> None:
    if plugin == "tap-duckdb":
        duckdb.connect(str(project.duckdb_path)).close()  # an empty warehouse file to discover
    result = subprocess.run(
        project.command("invoke", plugin, *args),
        cwd=PROJECT_ROOT,
        env=project.env(),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unknown setting" not in result.stderr, "Meltano's and the SDK's own keys are known settings"


def test_config_test_without_an_environment_names_the_missing_setting(project: MeltanoProject) -> None:
    result = subprocess.run(
        [*project.command("--no-environment", "config", "test", "tap-kahuna-logs")],
        cwd=PROJECT_ROOT,
        env={key: value for key, value in project.env().items() if key != "MELTANO_ENVIRONMENT"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "start_date is required" in result.stdout + result.stderr


def test_config_test_in_the_dev_environment_passes_against_the_emulator(
    project: MeltanoProject, kahuna_emulator: EmulatorProcess
) -> None:
    project.settings["TAP_KAHUNA_LOGS_API_URL"] = f"{kahuna_emulator.url}/api/kahunalogs"
    result = project.run("--environment", "dev", "config", "test", "tap-kahuna-logs")
    assert "Plugin configuration is valid" in result.stdout + result.stderr
