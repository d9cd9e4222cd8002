"""The assets: every partition of a sharded asset is one shard; the dbt marts the replay reads sit between."""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

from collections.abc import Sequence

import dagster as dg

from kk_orchestration.partitions import ShardedAsset
from kk_orchestration.shards import MeltanoProject, ShardContext

# Every shard step takes a slot of this pool: a deployment caps concurrent shards across runs with it
# (dagster.yaml `concurrency: pools: default_limit`, orchestration/README.md).
SHARD_POOL = "meltano_shards"
KISSMETRICS_MARTS = dg.AssetKey("kissmetrics_marts")
# The loads the marts are built from: Kahuna's logs (events, people, aliases) and Kaon's clicks (events).
MARTS_SOURCES = (dg.AssetKey("kahuna_logs"), dg.AssetKey("kaon_clickstreams"))
DBT_BUILD = "dbt-postgres:build"


def build_sharded_asset(sharded: ShardedAsset, deps: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """The partitioned asset: materializing a partition runs its shard."""

    @dg.asset(
        name=sharded.name,
        group_name=sharded.group,
        description=sharded.description,
        partitions_def=sharded.partitions_def,
        kinds=set(sharded.kinds),
        deps=list(deps),
        pool=SHARD_POOL,
    )
    def sharded_asset(context: dg.AssetExecutionContext, meltano: MeltanoProject) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=meltano.run_shard(context, sharded.shard_for(context.partition_key)))

    return sharded_asset


@dg.asset(
    key=KISSMETRICS_MARTS,
    group_name="kissmetrics",
    description="The dbt marts (schema marts: kissmetrics_events, kissmetrics_people, kissmetrics_aliases) the"
    " replay reads, built and tested by the dbt project in transform/.",
    kinds={"meltano", "dbt", "postgres"},
    deps=list(MARTS_SOURCES),
)
def kissmetrics_marts(context: dg.AssetExecutionContext, meltano: MeltanoProject) -> dg.MaterializeResult:
    """``meltano invoke dbt-postgres:build`` once, before any replay shard (never one per shard)."""
    return dg.MaterializeResult(metadata=build_marts(context, meltano))


def build_marts(context: ShardContext, meltano: MeltanoProject) -> dict[str, float]:
    """Build and test the dbt models in PostgreSQL (a failing dbt test fails it); its seconds as metadata."""
    _, seconds = meltano.run_meltano(context, ["invoke", DBT_BUILD], label=DBT_BUILD)
    return {"seconds": round(seconds, 2)}
