"""The assets: every partition of a sharded asset is one shard; the views the replay reads sit between."""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

from collections.abc import Sequence

import dagster as dg

from kk_orchestration.partitions import ShardedAsset
from kk_orchestration.shards import MeltanoProject, ShardContext

# Every shard step takes a slot of this pool: a deployment caps concurrent shards across runs with it
# (dagster.yaml `concurrency: pools: default_limit`, orchestration/README.md).
SHARD_POOL = "meltano_shards"
KISSMETRICS_VIEWS = dg.AssetKey("kissmetrics_views")


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
    key=KISSMETRICS_VIEWS,
    group_name="kissmetrics",
    description="The beacon-shaped views of warehouse/kissmetrics_views.sql (schema kissmetrics) the replay reads.",
    kinds={"meltano", "postgres"},
    deps=[dg.AssetKey("kahuna_logs")],
)
def kissmetrics_views(context: dg.AssetExecutionContext, meltano: MeltanoProject) -> None:
    """``meltano invoke warehouse-sql:apply`` once, before any replay shard (never one per shard)."""
    apply_views(context, meltano)


def apply_views(context: ShardContext, meltano: MeltanoProject) -> None:
    """Create or replace the replay's views."""
    meltano.run_meltano(context, ["invoke", "warehouse-sql:apply"], label="warehouse-sql:apply")
