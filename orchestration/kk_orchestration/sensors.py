"""Sensors: Kaon's dynamic partitions follow the settings; the replay follows the loads its marts read."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from kk_orchestration.assets import MARTS_SOURCES
from kk_orchestration.jobs import shards_run_config
from kk_orchestration.partitions import KAON_EXTERNAL_IDS, KAON_PATHS
from kk_orchestration.project import kaon_lists

KAON_PARTITIONS_INTERVAL_SECONDS = 300


def partition_changes(
    context: dg.SensorEvaluationContext, partitions_def: dg.DynamicPartitionsDefinition, wanted: list[str]
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """Requests that make a dynamic partitions definition hold exactly ``wanted``."""
    assert partitions_def.name is not None
    existing = set(context.instance.get_dynamic_partitions(partitions_def.name))
    added = [key for key in wanted if key not in existing]
    removed = sorted(existing - set(wanted))
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(partitions_def.build_add_request(added))
    if removed:
        requests.append(partitions_def.build_delete_request(removed))
    return requests


@dg.sensor(
    name="kaon_partitions_from_settings",
    minimum_interval_seconds=KAON_PARTITIONS_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One kaon_clickstreams partition per configured external ID, one kaon_path_hits partition per path.",
)
def kaon_partitions_from_settings(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Add and remove Kaon partitions as tap-kaon-insights' ``external_ids`` and ``paths`` change."""
    external_ids, paths = kaon_lists()
    requests = partition_changes(context, KAON_EXTERNAL_IDS, external_ids) + partition_changes(
        context, KAON_PATHS, paths
    )
    return dg.SensorResult(dynamic_partitions_requests=requests)


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
