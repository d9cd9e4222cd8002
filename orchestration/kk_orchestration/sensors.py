"""Sensors: the replay follows the loads its marts read."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from kk_orchestration.assets import MARTS_SOURCES
from kk_orchestration.jobs import shards_run_config


def build_replay_after_loads_sensor(
    load_job: dg.JobDefinition, replay_job: dg.JobDefinition, replay_keys: list[str]
) -> dg.RunStatusSensorDefinition:
    """After a shards run that loaded what the marts read succeeds: the dbt build, then every replay shard."""

    @dg.run_status_sensor(
        name="kissmetrics_replay_after_loads",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[load_job],
        request_job=replay_job,
        description="Builds the marts and replays them into Kissmetrics once the Kahuna logs or Kaon clicks they"
        " read are loaded (instead of a fixed :45).",
    )
    def replay_after_loads(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        return replay_request_after(run.run_id, run.run_config or {}, replay_keys)

    return replay_after_loads


def replay_request_after(
    run_id: str, run_config: Mapping[str, Any], replay_keys: list[str]
) -> dg.RunRequest | dg.SkipReason:
    """The replay of every shard after a successful shards run that loaded a source of the marts (once per run)."""
    loaded = run_config.get("ops", {}).get("plan_shards", {}).get("config", {}).get("partitions", {})
    sources = [key.to_user_string() for key in MARTS_SOURCES]
    if not any(loaded.get(source) for source in sources):
        return dg.SkipReason(f"run {run_id} loaded none of the marts' sources ({', '.join(sources)})")
    return dg.RunRequest(
        run_key=f"after-{run_id}",
        run_config=shards_run_config({"kissmetrics_replay": replay_keys}),
        tags={"kk/after-run": run_id},
    )
