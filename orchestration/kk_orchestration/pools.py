"""The warehouse pools: at most one dbt build per warehouse at once, and one DuckDB writer.

Dagster keeps a pool's limit in the instance (its database), not in code or ``dagster.yaml``. Every step
that builds a warehouse's dbt models (or, for DuckDB, opens the file) takes a slot of that warehouse's pool,
and refuses to run where the pool allows more than one (``require_single_slot``). Set the limits once per
instance::

    DAGSTER_HOME=... .venv/bin/python -m kk_orchestration.pools

(``make dagster-dev`` does; it is what ``dagster instance concurrency set <pool> 1`` does for each pool.)
"""

from __future__ import annotations

import dagster as dg

from kk_orchestration.dagster_compat import pool_limit

#: One slot per warehouse: its dbt builds (and, for DuckDB, every job that opens the file) run one at a time.
WAREHOUSE_POOLS = {"postgres": "dbt_postgres", "duckdb": "duckdb_warehouse", "snowflake": "dbt_snowflake"}
SETUP_COMMAND = "python -m kk_orchestration.pools"


def require_single_slot(instance: dg.DagsterInstance, pool: str) -> None:
    """Refuse a build where the pool would let two run at once (its limit is set per instance, not in code)."""
    limit = pool_limit(instance, pool)
    if limit != 1:
        allowed = "no limit" if limit is None else f"a limit of {limit}"
        raise dg.Failure(
            f"pool {pool} has {allowed} in this Dagster instance, so two builds of one warehouse could overlap:"
            f" run `{SETUP_COMMAND}` (or `dagster instance concurrency set {pool} 1`) with its DAGSTER_HOME"
        )


def set_warehouse_pools(instance: dg.DagsterInstance) -> dict[str, int]:
    """Give every warehouse pool one slot; the limits as the instance now reads them."""
    for pool in WAREHOUSE_POOLS.values():
        instance.event_log_storage.set_concurrency_slots(pool, 1)
    return {pool: pool_limit(instance, pool) or 0 for pool in WAREHOUSE_POOLS.values()}


def main() -> None:
    """Set the pools of ``$DAGSTER_HOME``'s instance and print them."""
    with dg.DagsterInstance.get() as instance:
        for pool, limit in set_warehouse_pools(instance).items():
            print(f"pool {pool}: limit {limit}")


if __name__ == "__main__":
    main()
