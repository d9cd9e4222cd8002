"""Snowflake, offline (no account is reachable here): the dbt project parses through the dbt-snowflake
utility with the settings Meltano resolves, a missing account is one clear line, and every model compiles
to Snowflake SQL against fakesnow standing in for the account."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.end_to_end.meltano_helpers import MeltanoProject
from tests.transform.transform_helpers import PROJECT_ROOT, TRANSFORM, project_arguments

CHECK_PYTHON = PROJECT_ROOT / ".venv-snowflake-check" / "bin" / "python"
REQUIREMENTS = Path(__file__).with_name("requirements-snowflake-check.txt")
MODELS = 16
ACCOUNT = {"SNOWFLAKE_ACCOUNT": "myorg-acct1", "SNOWFLAKE_USER": "dbt", "SNOWFLAKE_PASSWORD": "canary-pw-7"}

pytestmark = pytest.mark.meltano


@pytest.fixture
def project(tmp_path: Path) -> MeltanoProject:
    """The Meltano project with this test's own dbt artifacts."""
    return MeltanoProject(tmp_path)


def test_dbt_snowflake_parses_the_project_with_the_settings_meltano_resolves(project: MeltanoProject) -> None:
    project.settings.update(ACCOUNT)
    config = json.loads(project.run("config", "print", "dbt-snowflake").stdout)
    assert (config["account"], config["user"], config["database"], config["warehouse"]) == (
        "myorg-acct1",
        "dbt",
        "KK_DEV",
        "KK_DEV_WH",
    )
    assert config["profiles_dir"] == str(TRANSFORM / "profiles" / "snowflake")

    result = project.run("invoke", "dbt-snowflake:parse")

    manifest = json.loads((project.workdir / "dbt" / "snowflake" / "target" / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    tests = [node for node in manifest["nodes"].values() if node["resource_type"] == "test"]
    assert len(models) == MODELS
    assert len(tests) > 50
    assert manifest["metadata"]["adapter_type"] == "snowflake"
    assert "canary-pw-7" not in result.stdout + result.stderr


def test_dbt_snowflake_without_an_account_stops_with_one_clear_line(project: MeltanoProject) -> None:
    project.settings.update({**ACCOUNT, "SNOWFLAKE_ACCOUNT": ""})

    result = project.run("invoke", "dbt-snowflake:parse", check=False)

    assert result.returncode != 0
    assert "Env var required but not provided: 'DBT_SNOWFLAKE_ACCOUNT'" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "canary-pw-7" not in result.stdout + result.stderr


def test_every_model_compiles_to_snowflake_sql(tmp_path: Path) -> None:
    if not CHECK_PYTHON.exists():
        pytest.fail("the Snowflake check venv is missing: run `make snowflake-check-venv` (make test does it)")
    env = {
        "PATH": str(CHECK_PYTHON.parent),
        "HOME": str(tmp_path),
        "DO_NOT_TRACK": "1",
        "DBT_SNOWFLAKE_ACCOUNT": "offline-check",
        "DBT_SNOWFLAKE_USER": "dbt",
        "DBT_SNOWFLAKE_PASSWORD": "unused",
        "DBT_SNOWFLAKE_WAREHOUSE": "KK_WH",
        "DBT_SNOWFLAKE_DATABASE": "KK",
        "DBT_SNOWFLAKE_THREADS": "1",  # fakesnow attaches its database per connection: one at a time
    }
    target = tmp_path / "dbt-target"
    fakesnow_dbt = [str(CHECK_PYTHON), str(Path(__file__).with_name("fakesnow_dbt.py"))]
    result = subprocess.run(
        [*fakesnow_dbt, "compile", *project_arguments("snowflake", tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    compiled = {
        path.stem: path.read_text()
        for path in (target / "compiled").rglob("models/**/*.sql")
        if not path.parent.name.endswith(".yml")  # the compiled tests live under their .yml file's name
    }
    tests = [path for path in (target / "compiled").rglob("*.yml/*.sql")]
    assert len(tests) > 50
    assert len(compiled) == MODELS
    # Snowflake's own SQL where the warehouses differ: lists flattened, naive UTC times given their zone.
    assert "lateral flatten(input => lists.surviving_credentials)" in compiled["stg_kahuna__credentials"]
    assert "timestamp_tz_from_parts(" in compiled["stg_kahuna__inapp_logs"]
    # fakesnow holds no raw table: every source reads as an empty, typed select
    assert "cast(null as variant) as credentials" in compiled["stg_kahuna__inapp_logs"]


def test_the_check_uses_the_dbt_snowflake_that_meltano_installs() -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    (definition,) = [plugin for plugin in project["plugins"]["utilities"] if plugin["name"] == "dbt-snowflake"]
    pinned = set(definition["pip_url"].split())
    checked = {line.strip() for line in REQUIREMENTS.read_text().splitlines() if re.match(r"^dbt-", line)}
    assert checked == pinned
