"""Jobs: many shards in one run (one step per shard, run side by side by the multi-process executor),
and the project's unsharded Meltano jobs (DuckDB's single writer, Snowflake, the direct Kissmetrics replays).

A shards run lists partitions per asset::

    ops:
      plan_shards:
        config:
          partitions:
            kahuna_logs: ["inapp|2026-11-16", "push|2026-11-16"]
            kaon_clickstreams: ["EXT-0001"]
          periods_per_shard: 1    # backfills: up to N consecutive days (or weeks) per shard
          across_series: false    # true: a shard reads every category of its days (even shards)
          build_marts: true       # load_shards: then the dbt build once, after every shard succeeded
    execution:
      config:
        max_concurrent: 4

Each step reports its asset partition as materialized, exactly as materializing the partition itself
would; a failed step fails alone, and "Re-execute from failure" runs only the failed shards again.
"""

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from pydantic import Field

from kk_orchestration.assets import SHARD_POOL
from kk_orchestration.dbt_models import DBT_POOL, WAREHOUSE_POOLS, build_models_in_op, require_single_slot
from kk_orchestration.partitions import ShardedAsset
from kk_orchestration.shards import MeltanoProject

CODE_LOCATION_MODULE = "kk_orchestration.definitions"
# The Dagster instance's storage modules, imported once by the forkserver rather than by every step.
STEP_PRELOAD_MODULE = "kk_orchestration.step_preload"
LOAD_SHARDS_JOB = "load_shards"
REPLAY_SHARDS_JOB = "kissmetrics_replay_shards"
MARTS_AFTER_LOADS_OP = "build_marts_after_loads"
DEFAULT_MAX_CONCURRENT_SHARDS = 4
_MAPPING_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class ShardsConfig(dg.Config):
    """Which partitions a shards run materializes, and how many consecutive periods one shard may read."""

    partitions: dict[str, list[str]] = Field(
        default_factory=dict, description="Per sharded asset name, the partition keys to materialize."
    )
    periods_per_shard: int = Field(
        default=1,
        ge=1,
        description="Backfills: consecutive days (kahuna_logs, per category) or weeks (kaon_weekly_tables) one shard"
        " reads. 1: a shard per partition (finest retries); more: fewer Meltano start-ups.",
    )
    across_series: bool = Field(
        default=False,
        description="Backfills of kahuna_logs: a shard reads every category of its consecutive days (up to"
        " periods_per_shard days; a day missing a category starts a new shard), so shards are even however"
        " uneven the categories are. false: a shard reads one category.",
    )
    build_marts: bool = Field(
        default=False,
        description="load_shards: build and test the dbt models (dbt build through Meltano's dbt-postgres) once every"
        " shard of the run succeeded,"
        " as meltano.yml's PostgreSQL load jobs do. false: the build step is skipped (no process starts for it).",
    )


def max_concurrent_shards() -> int:
    """Shards one run runs at once: ``KK_MAX_CONCURRENT_SHARDS`` (default 4)."""
    text = os.environ.get("KK_MAX_CONCURRENT_SHARDS", str(DEFAULT_MAX_CONCURRENT_SHARDS))
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_CONCURRENT_SHARDS


def shards_run_config(
    partitions: Mapping[str, Sequence[str]],
    max_concurrent: int | None = None,
    periods_per_shard: int = 1,
    *,
    across_series: bool = False,
    build_marts: bool = False,
) -> dict[str, Any]:
    """The run config of a shards run: its partitions, how many (and, ``across_series``, which series) one
    shard reads, how many shards run at once, and (``load_shards`` only) whether the dbt marts are built after
    the loads."""
    plan: dict[str, Any] = {"partitions": {name: list(keys) for name, keys in partitions.items()}}
    if periods_per_shard > 1:
        plan["periods_per_shard"] = periods_per_shard
    if across_series:
        plan["across_series"] = True
    if build_marts:
        plan["build_marts"] = True
    return {
        "ops": {"plan_shards": {"config": plan}},
        "execution": {
            "config": {
                "max_concurrent": max_concurrent or max_concurrent_shards(),
                # Steps fork from a process that imported the code location and the instance's storage
                # once: no per-shard import.
                "start_method": {"forkserver": {"preload_modules": [CODE_LOCATION_MODULE, STEP_PRELOAD_MODULE]}},
            }
        },
    }


def mapping_key(asset_name: str, partition_key: str, partitions: int = 1) -> str:
    """A step's mapping key: readable, unique per (asset, first partition, span), only characters Dagster allows."""
    label = f"{asset_name}__{partition_key}" + (f"__{partitions}" if partitions > 1 else "")
    digest = hashlib.sha256(f"{asset_name}\0{partition_key}\0{partitions}".encode()).hexdigest()[:8]
    return f"{_MAPPING_KEY_UNSAFE.sub('_', label)[:80]}_{digest}"


def build_shard_jobs(sharded: Mapping[str, ShardedAsset]) -> list[dg.JobDefinition]:
    """The load shards job (every sharded asset but the replay; the dbt build after them if asked) and the
    replay job (the dbt build, then the replay shards)."""

    @dg.op(
        out={
            "shards": dg.DynamicOut(),
            # Yielded only with build_marts: without it the build step is skipped before any process starts.
            "marts": dg.Out(dg.Nothing, is_required=False),
        },
        ins={"after": dg.In(dg.Nothing)},
        description="One output per (asset, partition) of the run config; unknown names or keys stop the run.",
    )
    def plan_shards(
        context: dg.OpExecutionContext, config: ShardsConfig
    ) -> Iterator[dg.DynamicOutput[Any] | dg.Output[None]]:
        for name, keys in config.partitions.items():
            asset = sharded.get(name)
            if asset is None:
                raise dg.Failure(f"plan_shards: no sharded asset {name!r}; choose from {sorted(sharded)}")
            unknown = [key for key in keys if not asset.partitions_def.has_partition_key(key)]
            if unknown:
                raise dg.Failure(f"plan_shards: {name} has no partition {unknown}")
            for span in asset.spans(keys, config.periods_per_shard, across_series=config.across_series):
                key = mapping_key(name, span[0], len(span))
                yield dg.DynamicOutput((name, span), output_name="shards", mapping_key=key)
        if config.build_marts:
            yield dg.Output(None, output_name="marts")

    @dg.op(pool=SHARD_POOL, description="One shard: meltano run --state-id-suffix <partition> of its partitions.")
    def load_shard(context: dg.OpExecutionContext, target: tuple[str, list[str]], meltano: MeltanoProject) -> None:
        name, keys = target
        asset = sharded[name]
        metadata = meltano.run_shard(context, asset.shard_of(keys))
        for key in keys:
            context.log_event(dg.AssetMaterialization(asset_key=asset.key, partition=key, metadata=metadata))

    @dg.op(
        pool=DBT_POOL,
        description="dbt build (Meltano's dbt-postgres) of every model and test, once before the replay's shards;"
        " a failed dbt test fails it and no shard runs.",
    )
    def build_kissmetrics_marts(context: dg.OpExecutionContext, dbt: DbtCliResource) -> None:
        build_models_in_op(context, dbt)

    @dg.op(
        name=MARTS_AFTER_LOADS_OP,
        ins={"loaded": dg.In(dg.Nothing), "asked": dg.In(dg.Nothing)},
        pool=DBT_POOL,
        description="With plan_shards' `build_marts`: dbt build (Meltano's dbt-postgres) once every shard"
        " succeeded; skipped otherwise.",
    )
    def build_marts_after_loads(context: dg.OpExecutionContext, dbt: DbtCliResource) -> None:
        build_models_in_op(context, dbt)

    replay_keys = sharded["kissmetrics_replay"].partitions_def.get_partition_keys()

    @dg.job(
        name=LOAD_SHARDS_JOB,
        description="Materialize many partitions of the load assets in one run, one shard per step; then, if"
        " asked, the dbt marts.",
        executor_def=dg.multiprocess_executor,
        config=shards_run_config({}),
    )
    def load_shards() -> None:
        planned = plan_shards()
        build_marts_after_loads(loaded=planned.shards.map(load_shard).collect(), asked=planned.marts)

    @dg.job(
        name=REPLAY_SHARDS_JOB,
        description="Build the dbt marts, then replay every shard of the people side by side.",
        executor_def=dg.multiprocess_executor,
        config=shards_run_config({"kissmetrics_replay": replay_keys}),
    )
    def kissmetrics_replay_shards() -> None:
        plan_shards(after=build_kissmetrics_marts()).shards.map(load_shard)

    return [load_shards, kissmetrics_replay_shards]


def dagster_name(meltano_name: str) -> str:
    """A Meltano name as a Dagster name (no `-`): `kahuna-to-postgres-hourly` -> `kahuna_to_postgres_hourly`."""
    return meltano_name.replace("-", "_")


def dagster_job_name(meltano_job: str) -> str:
    """The Dagster name of an unsharded Meltano job: ``kahuna-to-warehouse`` -> ``meltano_kahuna_to_warehouse``."""
    return "meltano_" + dagster_name(meltano_job)


def warehouse_pool(tasks: Sequence[str]) -> str | None:
    """The pool of the warehouse a Meltano job's tasks write or build (DuckDB, Snowflake), if any."""
    plugins = " ".join(tasks)
    return next((pool for warehouse, pool in WAREHOUSE_POOLS.items() if warehouse in plugins), None)


def build_meltano_job(meltano_job: str, tasks: Sequence[str] = ()) -> dg.JobDefinition:
    """A Dagster job running one Meltano job unsharded (``meltano run <job>``, its usual state ID).

    A job on DuckDB or Snowflake runs in that warehouse's pool (limit 1): DuckDB takes one writer, and its
    dbt build (or Snowflake's) never overlaps another of the same warehouse.
    """
    pool = warehouse_pool(tasks)

    @dg.op(name=f"run_{dagster_job_name(meltano_job)}", description=f"meltano run {meltano_job}", pool=pool)
    def run_job(context: dg.OpExecutionContext, meltano: MeltanoProject) -> None:
        if pool is not None:
            require_single_slot(context.instance, pool)
        meltano.run_meltano(context, ["run", meltano_job], label=meltano_job)

    @dg.job(name=dagster_job_name(meltano_job), description=f"meltano run {meltano_job} (unsharded)")
    def meltano_job_def() -> None:
        run_job()

    return meltano_job_def
