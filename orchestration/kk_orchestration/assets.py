"""The Meltano assets: every partition of a sharded asset is one shard (the dbt models between the loads and the
replay are in kk_orchestration.dbt_models)."""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

from collections.abc import Sequence

import dagster as dg

from kk_orchestration.partitions import ShardedAsset
from kk_orchestration.shards import MeltanoProject

# Every shard step takes a slot of this pool: a deployment caps concurrent shards across runs with it
# (dagster.yaml `concurrency: pools: default_limit`, orchestration/README.md).
SHARD_POOL = "meltano_shards"
# The loads the marts are built from: Kahuna's logs (events, people, aliases) and Kaon's clicks (events).
MARTS_SOURCES = (dg.AssetKey("kahuna_logs"), dg.AssetKey("kaon_clickstreams"))


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
