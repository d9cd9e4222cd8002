"""The partitioned sources: each partition key maps to exactly one shard (its settings and state ID suffix).

A shard reads only its partition through settings the taps already have, passed as environment
variables for that one run (no tap code knows about Dagster):

- ``kahuna_logs``: (category, UTC day); ``TAP_KAHUNA_LOGS_CATEGORIES`` = ``["inapp"]``,
  ``TAP_KAHUNA_LOGS_START_DATE`` = ``TAP_KAHUNA_LOGS_END_DATE`` = the day; suffix ``inapp-2026-11-16``.
- ``kaon_weekly_tables``: a Kaon week (Sunday); ``TAP_KAON_INSIGHTS_START_DATE`` (its Sunday),
  ``_START_WEEK`` = ``_END_WEEK`` = the week; suffix ``week-776``.
- ``kaon_clickstreams``: one external ID (dynamic); ``TAP_KAON_INSIGHTS_EXTERNAL_IDS``; suffix: the ID, made safe.
- ``kaon_path_hits``: one path (dynamic); ``TAP_KAON_INSIGHTS_PATHS``; suffix: the path, made safe.
- ``kissmetrics_replay``: shard k of N of the people; ``TAP_POSTGRES_STREAM_MAP_CONFIG`` (the rule itself is
  tap-postgres' stream map in meltano.yml); suffix ``shard-1-of-4``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg

from kk_orchestration.project import PartitionSettings, week_of, week_start
from kk_orchestration.shards import Shard, state_id_suffix

KAON_EXTERNAL_IDS = dg.DynamicPartitionsDefinition(name="kaon_external_ids")
KAON_PATHS = dg.DynamicPartitionsDefinition(name="kaon_paths")
KAHUNA_LOAD = ("tap-kahuna-logs", "target-postgres")
KAON_WEEKLY_LOAD = ("tap-kaon-insights--weekly", "target-postgres")
KAON_CLICKS_LOAD = ("tap-kaon-insights--clicks", "target-postgres")
KAON_PATHS_LOAD = ("tap-kaon-insights--paths", "target-postgres")
REPLAY = ("tap-postgres", "target-kissmetrics--warehouse")


@dataclass(frozen=True)
class ShardedAsset:
    """A partitioned asset whose every partition is one shard."""

    name: str
    group: str
    description: str
    partitions_def: dg.PartitionsDefinition
    shard_for: Callable[[str], Shard]
    kinds: frozenset[str] = frozenset({"meltano", "postgres"})

    @property
    def key(self) -> dg.AssetKey:
        """The asset key (its name)."""
        return dg.AssetKey(self.name)


def kahuna_partitions(settings: PartitionSettings) -> dg.MultiPartitionsDefinition:
    """(category, UTC day) from ``start_date``, today (still filling up) included."""
    return dg.MultiPartitionsDefinition(
        {
            "category": dg.StaticPartitionsDefinition(list(settings.kahuna_categories)),
            "day": dg.DailyPartitionsDefinition(
                start_date=settings.kahuna_start_date.isoformat(), timezone="UTC", end_offset=1
            ),
        }
    )


def kaon_week_partitions(settings: PartitionSettings) -> dg.WeeklyPartitionsDefinition:
    """Kaon weeks (Sunday to Saturday, UTC) from the first configured week, the current week included."""
    return dg.WeeklyPartitionsDefinition(
        start_date=week_start(settings.kaon_start_week).isoformat(), day_offset=0, timezone="UTC", end_offset=1
    )


def replay_partitions(shard_count: int) -> dg.StaticPartitionsDefinition:
    """``shard-0-of-N`` ... ``shard-(N-1)-of-N``."""
    return dg.StaticPartitionsDefinition([f"shard-{index}-of-{shard_count}" for index in range(shard_count)])


def kahuna_shard(category: str, day: date) -> Shard:
    """One category's logs of one UTC day."""
    return Shard(
        *KAHUNA_LOAD,
        state_id_suffix=state_id_suffix(category, day.isoformat()),
        settings={
            "TAP_KAHUNA_LOGS_CATEGORIES": json.dumps([category]),
            "TAP_KAHUNA_LOGS_START_DATE": day.isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": day.isoformat(),
        },
    )


def kaon_week_shard(week: int) -> Shard:
    """The weekly tables of one Kaon week (start_date too: when set it would override start_week)."""
    return Shard(
        *KAON_WEEKLY_LOAD,
        state_id_suffix=state_id_suffix("week", str(week)),
        settings={
            "TAP_KAON_INSIGHTS_START_DATE": week_start(week).isoformat(),
            "TAP_KAON_INSIGHTS_START_WEEK": str(week),
            "TAP_KAON_INSIGHTS_END_WEEK": str(week),
        },
    )


def kaon_clickstream_shard(external_id: str) -> Shard:
    """One external ID's clickstream."""
    return Shard(
        *KAON_CLICKS_LOAD,
        state_id_suffix=state_id_suffix(external_id),
        settings={"TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps([external_id])},
    )


def kaon_path_shard(path: str) -> Shard:
    """One path's weekly hit history."""
    return Shard(
        *KAON_PATHS_LOAD,
        state_id_suffix=state_id_suffix(path),
        settings={"TAP_KAON_INSIGHTS_PATHS": json.dumps([path])},
    )


def replay_shard(index: int, shard_count: int) -> Shard:
    """Shard ``index`` of the replay: the people whose hash falls in it (meltano.yml's tap-postgres stream map)."""
    return Shard(
        *REPLAY,
        state_id_suffix=f"shard-{index}-of-{shard_count}",
        settings={"TAP_POSTGRES_STREAM_MAP_CONFIG": json.dumps({"shard_count": shard_count, "shard_index": index})},
    )


def parse_replay_key(key: str) -> tuple[int, int]:
    """``shard-1-of-4`` -> (1, 4)."""
    _, index, _, count = key.split("-")
    return int(index), int(count)


def sharded_assets(settings: PartitionSettings) -> dict[str, ShardedAsset]:
    """Every sharded asset by name, its partitions built from the project's settings."""
    kahuna = kahuna_partitions(settings)
    weeks = kaon_week_partitions(settings)

    def kahuna_for(key: str) -> Shard:
        dimensions = kahuna.get_partition_key_from_str(key).keys_by_dimension
        return kahuna_shard(dimensions["category"], date.fromisoformat(dimensions["day"]))

    def week_for(key: str) -> Shard:
        return kaon_week_shard(week_of(date.fromisoformat(key)))

    def replay_for(key: str) -> Shard:
        return replay_shard(*parse_replay_key(key))

    assets = [
        ShardedAsset(
            "kahuna_logs",
            "kahuna",
            "Kahuna logs (schema kahuna: inapp_logs, push_logs, email_logs, user_merge_logs), one category and UTC day"
            " per partition.",
            kahuna,
            kahuna_for,
        ),
        ShardedAsset(
            "kaon_weekly_tables",
            "kaon",
            "Kaon weekly tables (schema kaon: weeks, engagement, devices, countries, languages, hits), one week per"
            " partition.",
            weeks,
            week_for,
        ),
        ShardedAsset(
            "kaon_clickstreams",
            "kaon",
            "Kaon external-ID clickstreams (kaon.external_id_hits), one external ID per partition.",
            KAON_EXTERNAL_IDS,
            kaon_clickstream_shard,
        ),
        ShardedAsset(
            "kaon_path_hits",
            "kaon",
            "Kaon path hit histories (kaon.path_hits), one path per partition.",
            KAON_PATHS,
            kaon_path_shard,
        ),
        ShardedAsset(
            "kissmetrics_replay",
            "kissmetrics",
            "The warehouse's beacon-shaped views replayed into Kissmetrics, one shard of the people per partition.",
            replay_partitions(settings.replay_shards),
            replay_for,
            kinds=frozenset({"meltano", "kissmetrics"}),
        ),
    ]
    return {asset.name: asset for asset in assets}
