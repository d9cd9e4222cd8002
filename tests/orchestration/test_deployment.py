"""orchestration/deploy/dagster.yaml, the deployment's instance: PostgreSQL storage, queued runs, shard and dbt pools.

A shard materialized against that instance (its storage in a schema of its own: Dagster and Meltano
both keep an ``alembic_version`` and a ``runs`` table, so they never share one).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator

import dagster as dg
import psycopg
import pytest
import yaml

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import FIXED_NOW, POSTGRES, PROJECT_ROOT
from tests.orchestration.dagster_helpers import (
    SYSTEM_DATABASE,
    DagsterProject,
    comparable,
    expected_kahuna_rows,
    kahuna_key,
    kahuna_rows,
    point_at_emulators,
)

pytestmark = [pytest.mark.meltano, pytest.mark.postgres, pytest.mark.slow]

DEPLOYMENT_INSTANCE = PROJECT_ROOT / "orchestration" / "deploy" / "dagster.yaml"
DBT_MODELS = "group:dbt_staging or group:dbt_marts"


@pytest.fixture
def dagster_storage_schema() -> Iterator[str]:
    """A schema for Dagster's own tables, apart from Meltano's."""
    schema = f"dagster_test_{uuid.uuid4().hex[:12]}"
    server = "{user}:{password}@{host}:{port}".format(**POSTGRES)
    with psycopg.connect(f"postgresql://{server}/{SYSTEM_DATABASE}", autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        yield schema
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_shard_runs_against_the_deployment_instance(
    dagster_project: DagsterProject,
    dagster_storage_schema: str,
    start_emulator: Callable[..., EmulatorProcess],
    warehouse: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance_config = yaml.safe_load(DEPLOYMENT_INSTANCE.read_text())
    instance_config["storage"]["postgres"]["postgres_db"]["params"] = {
        "options": f"-csearch_path={dagster_storage_schema}"
    }
    (dagster_project.home / "dagster.yaml").write_text(yaml.safe_dump(instance_config))
    for name, value in (("HOST", "host"), ("PORT", "port"), ("USER", "user"), ("PASSWORD", "password")):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", str(POSTGRES[value]))
    monkeypatch.setenv("DAGSTER_PG_DB", SYSTEM_DATABASE)
    kahuna = start_emulator("kahuna", "--days", "1", "--logs-per-day", "20")
    point_at_emulators(dagster_project.meltano, kahuna=kahuna, kahuna_start=FIXED_NOW)
    dataset = KahunaDataset(seed=42, now=FIXED_NOW, days=1, logs_per_day=20, env="p")
    key = kahuna_key("inapp", FIXED_NOW.date())

    info = dagster_project.dagster("instance", "info", code_location=False)
    dagster_project.dagster("asset", "materialize", "--select", "kahuna_logs", "--partition", key)

    assert "run_storage: PostgresRunStorage" in info.stdout
    assert {comparable(row) for row in kahuna_rows(warehouse, "inapp")} == expected_kahuna_rows(
        dataset, "inapp", FIXED_NOW.date()
    )
    with dg.DagsterInstance.from_config(str(dagster_project.home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 8
        (run,) = instance.get_runs()
        assert run.is_success
        assert set(instance.get_materialized_partitions(dg.AssetKey("kahuna_logs"))) == {key}
    server = "{user}:{password}@{host}:{port}".format(**POSTGRES)
    with psycopg.connect(f"postgresql://{server}/{SYSTEM_DATABASE}") as connection:
        (event_logs,) = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'event_logs'",
            (dagster_storage_schema,),
        ).fetchone()
    assert event_logs == 1

    # The dbt models through the same instance: refused until the warehouse pools have their one slot
    # (the deployment's default_limit 8 would let 8 dbt builds overlap), then one build in pool dbt_postgres.
    refused = dagster_project.dagster("asset", "materialize", "--select", DBT_MODELS, check=False)
    assert refused.returncode != 0
    assert "pool dbt_postgres has a limit of 8" in refused.stdout + refused.stderr
    pools = dagster_project.run_command([sys.executable, "-m", "kk_orchestration.pools"], "kk_orchestration.pools")
    assert "pool dbt_postgres: limit 1" in pools.stdout
    dagster_project.dagster("asset", "materialize", "--select", DBT_MODELS)
    with dg.DagsterInstance.from_config(str(dagster_project.home)) as instance:
        runs = instance.get_runs()  # newest first
        assert [run.is_success for run in runs] == [True, False, True]
        assert instance.fetch_materializations(dg.AssetKey(["marts", "kissmetrics_events"]), limit=10).records
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 8  # the shards' pool unchanged
    events = warehouse.execute("SELECT count(*) FROM marts.kissmetrics_events").fetchone()
    assert events is not None
    inapp = dataset.records("inapp", FIXED_NOW.date())
    assert events[0] == sum(1 for record in inapp if record.get("user_id") and record.get("action")) > 0
