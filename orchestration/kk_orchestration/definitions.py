"""The code location: ``dagster dev -m kk_orchestration.definitions`` (see orchestration/README.md)."""

from __future__ import annotations

import dagster as dg

from kk_orchestration.assets import build_sharded_asset
from kk_orchestration.dbt_models import MART_KEYS, build_dbt_models, dbt_resource
from kk_orchestration.jobs import LOAD_SHARDS_JOB, REPLAY_SHARDS_JOB, build_meltano_job, build_shard_jobs
from kk_orchestration.partitions import sharded_assets
from kk_orchestration.project import meltano_yml, partition_settings
from kk_orchestration.schedules import build_schedules
from kk_orchestration.sensors import build_replay_after_loads_sensor
from kk_orchestration.shards import MeltanoProject

# Meltano jobs the shards replace (the PostgreSQL loads and the PostgreSQL replay); the others run whole
# (DuckDB takes one writer, Snowflake's and the direct replays run as in cron).
SHARDED_MELTANO_JOBS = frozenset({"kahuna-to-postgres", "kaon-to-postgres", "postgres-to-kissmetrics"})


def build_definitions() -> dg.Definitions:
    """Assets, jobs, schedules and sensors of the Meltano project, from its settings and meltano.yml."""
    project = meltano_yml()
    settings = partition_settings()
    sharded = sharded_assets(settings)
    assets = [
        build_sharded_asset(asset, deps=list(MART_KEYS) if name == "kissmetrics_replay" else [])
        for name, asset in sharded.items()
    ]
    shard_jobs = build_shard_jobs(sharded)
    whole_jobs = [
        build_meltano_job(job["name"], job.get("tasks") or [])
        for job in project.get("jobs") or []
        if job["name"] not in SHARDED_MELTANO_JOBS
    ]
    jobs = {job.name: job for job in [*shard_jobs, *whole_jobs]}
    replay_keys = list(sharded["kissmetrics_replay"].partitions_def.get_partition_keys())
    return dg.Definitions(
        assets=[*assets, build_dbt_models()],
        jobs=list(jobs.values()),
        schedules=build_schedules(project, jobs, sharded, settings),
        sensors=[build_replay_after_loads_sensor(jobs[LOAD_SHARDS_JOB], jobs[REPLAY_SHARDS_JOB], replay_keys)],
        resources={
            "meltano": MeltanoProject(system_database_uri=dg.EnvVar("MELTANO_DATABASE_URI")),
            "dbt": dbt_resource(),
        },
    )


defs = build_definitions()
