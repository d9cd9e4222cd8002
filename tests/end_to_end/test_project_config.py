"""meltano.yml itself: settings in step with the plugins, schedules, offline checks of the Snowflake loader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from meltano_helpers import PROJECT_ROOT, MeltanoProject

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


def test_meltano_yml_declares_every_setting_of_the_three_plugins() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "meltano_settings.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


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
