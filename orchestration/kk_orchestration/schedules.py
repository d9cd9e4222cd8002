"""meltano.yml's schedules, one Dagster schedule each (same cron, UTC; the name with ``_`` for ``-``).

The three PostgreSQL jobs run sharded: each tick launches one shards run of the partitions due then.
Every other Meltano job (DuckDB, Snowflake, the direct replays) runs unsharded, as ``meltano run <job>``
would from cron.

- ``kahuna-to-postgres``: today's partition of every category, and yesterday's until one run read it
  after midnight (a day is only complete once read after it ended); then the dbt build, as the Meltano job.
- ``kaon-to-postgres``: the current week (and the previous one until read after it ended), every
  configured external ID and path; then the dbt build.
- ``postgres-to-kissmetrics``: the dbt build, then every replay shard.
"""

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import dagster as dg

from kk_orchestration.jobs import (
    LOAD_SHARDS_JOB,
    REPLAY_SHARDS_JOB,
    dagster_job_name,
    dagster_name,
    shards_run_config,
)
from kk_orchestration.partitions import ShardedAsset
from kk_orchestration.project import PartitionSettings
from tap_kaon_insights.week_numbers import week_of, week_start

TickPartitions = Callable[[dg.ScheduleEvaluationContext], dict[str, list[str]]]


def read_after(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str, moment: datetime) -> bool:
    """Whether the partition was materialized after ``moment`` (e.g. after its day ended)."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=asset_key, asset_partitions=[partition_key], after_timestamp=moment.timestamp()
        ),
        limit=1,
    )
    return bool(result.records)


def midnight(day: date) -> datetime:
    """The start of a UTC day."""
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def tick_time(context: dg.ScheduleEvaluationContext) -> datetime:
    """The tick's scheduled time in UTC (now when evaluated by hand)."""
    scheduled = context.scheduled_execution_time or datetime.now(timezone.utc)
    return scheduled.astimezone(timezone.utc)


def kahuna_due(sharded: Mapping[str, ShardedAsset], settings: PartitionSettings) -> TickPartitions:
    """Today's (category, day) partitions, and yesterday's ones not read after midnight."""
    asset = sharded["kahuna_logs"]

    def keys_of(day: date) -> list[str]:
        return [str(dg.MultiPartitionKey({"category": c, "day": day.isoformat()})) for c in settings.kahuna_categories]

    def due(context: dg.ScheduleEvaluationContext) -> dict[str, list[str]]:
        today = tick_time(context).date()
        yesterday = today - timedelta(days=1)
        keys = []
        if yesterday >= settings.kahuna_start_date:
            keys = [k for k in keys_of(yesterday) if not read_after(context.instance, asset.key, k, midnight(today))]
        return {"kahuna_logs": keys + keys_of(today)}

    return due


def kaon_due(sharded: Mapping[str, ShardedAsset]) -> TickPartitions:
    """The current week (and the previous one until read after it ended), every external ID and path."""
    weekly = sharded["kaon_weekly_tables"]
    external_ids = list(sharded["kaon_clickstreams"].partitions_def.get_partition_keys())
    paths = list(sharded["kaon_path_hits"].partitions_def.get_partition_keys())

    def due(context: dg.ScheduleEvaluationContext) -> dict[str, list[str]]:
        current = week_of(tick_time(context).date())
        previous_key = week_start(current - 1).isoformat()
        weeks = [week_start(current).isoformat()]
        if weekly.partitions_def.has_partition_key(previous_key) and not read_after(
            context.instance, weekly.key, previous_key, midnight(week_start(current))
        ):
            weeks.insert(0, previous_key)
        return {"kaon_weekly_tables": weeks, "kaon_clickstreams": external_ids, "kaon_path_hits": paths}

    return due


def replay_due(sharded: Mapping[str, ShardedAsset]) -> TickPartitions:
    """Every shard of the replay."""
    keys = list(sharded["kissmetrics_replay"].partitions_def.get_partition_keys())
    return lambda _context: {"kissmetrics_replay": keys}


def sharded_schedule(
    name: str, cron: str, job: dg.JobDefinition, partitions_due: TickPartitions, *, build_marts: bool = False
) -> dg.ScheduleDefinition:
    """A schedule whose every tick is one shards run of the partitions due at that time (then the dbt build)."""

    @dg.schedule(name=name, cron_schedule=cron, job=job, execution_timezone="UTC")
    def tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        partitions = {asset: keys for asset, keys in partitions_due(context).items() if keys}
        if not partitions:
            return dg.SkipReason("no partition is due")
        return dg.RunRequest(
            run_config=shards_run_config(partitions, build_marts=build_marts), tags={"kk/schedule": name}
        )

    return tick


def build_schedules(
    meltano_yml: Mapping[str, Any],
    jobs: Mapping[str, dg.JobDefinition],
    sharded: Mapping[str, ShardedAsset],
    settings: PartitionSettings,
) -> list[dg.ScheduleDefinition]:
    """One Dagster schedule per meltano.yml schedule."""
    # Meltano job -> (Dagster job, the partitions of a tick, whether the loads end with the dbt build).
    # The replay job always builds the marts first (its first step).
    sharded_jobs: dict[str, tuple[str, TickPartitions, bool]] = {
        "kahuna-to-postgres": (LOAD_SHARDS_JOB, kahuna_due(sharded, settings), True),
        "kaon-to-postgres": (LOAD_SHARDS_JOB, kaon_due(sharded), True),
        "postgres-to-kissmetrics": (REPLAY_SHARDS_JOB, replay_due(sharded), False),
    }
    schedules = []
    for entry in meltano_yml.get("schedules") or []:
        name, cron, meltano_job = dagster_name(entry["name"]), entry["interval"], entry["job"]
        if meltano_job in sharded_jobs:
            job_name, due, build_marts = sharded_jobs[meltano_job]
            schedules.append(sharded_schedule(name, cron, jobs[job_name], due, build_marts=build_marts))
        else:
            schedules.append(
                dg.ScheduleDefinition(
                    name=name, cron_schedule=cron, job=jobs[dagster_job_name(meltano_job)], execution_timezone="UTC"
                )
            )
    return schedules
