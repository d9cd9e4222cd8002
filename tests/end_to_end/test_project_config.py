"""meltano.yml itself: settings in step with the plugins, schedules, offline checks of the Snowflake loader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, MeltanoProject

pytestmark = pytest.mark.meltano

JOBS = {
    "kaon-to-warehouse": ["tap-kaon-insights target-duckdb"],
    "kahuna-to-warehouse": ["tap-kahuna-logs target-duckdb"],
    "warehouse-to-kissmetrics": ["warehouse-sql:apply", "tap-postgres target-kissmetrics--warehouse"],
    "kahuna-to-kissmetrics": ["tap-kahuna-logs target-kissmetrics--kahuna-events"],
    "kaon-clicks-to-kissmetrics": ["tap-kaon-insights--clicks target-kissmetrics--kaon-clicks"],
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


def test_snowflake_loader_without_an_account_stops_with_a_clear_message(project: MeltanoProject) -> None:
    project.settings.update({"SNOWFLAKE_ACCOUNT": "", "SNOWFLAKE_USER": "loader", "SNOWFLAKE_PASSWORD": "canary-pw-7"})
    result = subprocess.run(
        project.command("invoke", "target-snowflake"),
        cwd=PROJECT_ROOT,
        env=project.env(),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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


@pytest.mark.parametrize(
    ("plugin", "args"),
    [
        ("tap-kaon-insights", ("--discover",)),
        ("tap-kaon-insights--clicks", ("--discover",)),
        ("tap-kahuna-logs", ("--discover",)),
        ("target-kissmetrics--kahuna-events", ()),
        ("target-kissmetrics--kaon-clicks", ()),
    ],
)
def test_the_projects_config_holds_no_key_the_plugins_do_not_know(
    project: MeltanoProject, plugin: str, args: tuple[str, ...]
) -> None:
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
