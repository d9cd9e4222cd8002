"""The partitioned sources: each partition key maps to exactly one shard (its settings and state ID suffix).

A shard reads only its partition through settings the taps already have, passed as environment
variables for that one run (no tap code knows about Dagster):

- ``kahuna_logs``: (category, UTC day); ``TAP_KAHUNA_LOGS_CATEGORIES`` = ``["inapp"]``,
  ``TAP_KAHUNA_LOGS_START_DATE`` = ``TAP_KAHUNA_LOGS_END_DATE`` = the day; suffix ``inapp-2026-11-16``.
  A backfill span reads consecutive days of one category (``inapp-2026-11-01--2026-11-08``) or, across
  series, of several (``email.inapp.push.user_merge-2026-11-01--2026-11-08``: the categories sorted, joined by ``.``).
- ``kaon_weekly_tables``: a Kaon week (Sunday); ``TAP_KAON_INSIGHTS_START_DATE`` (its Sunday),
  ``_START_WEEK`` = ``_END_WEEK`` = the week; suffix ``week-776``.
- ``kaon_clickstreams``: one external ID of the tap's ``external_ids`` setting; ``TAP_KAON_INSIGHTS_EXTERNAL_IDS``;
  suffix: the ID, made safe.
- ``kaon_path_hits``: one path of its ``paths`` setting; ``TAP_KAON_INSIGHTS_PATHS``; suffix: the path, made safe.

Kaon's partitions are static, read from the settings when the code location loads (as the days and weeks
are): the UI lists them without a daemon or a sensor; a changed list shows after a reload.
- ``kissmetrics_replay``: shard k of N of the people; ``TAP_POSTGRES_STREAM_MAP_CONFIG`` (the rule itself is
  tap-postgres' stream map in meltano.yml); suffix ``shard-1-of-4``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

from kk_orchestration.project import PartitionSettings
from kk_orchestration.shards import Shard, state_id_suffix
from tap_kaon_insights.week_numbers import week_of, week_start

KAHUNA_LOAD = ("tap-kahuna-logs", "target-postgres")
KAON_WEEKLY_LOAD = ("tap-kaon-insights--weekly", "target-postgres")
KAON_CLICKS_LOAD = ("tap-kaon-insights--clicks", "target-postgres")
KAON_PATHS_LOAD = ("tap-kaon-insights--paths", "target-postgres")
REPLAY = ("tap-postgres", "target-kissmetrics--warehouse")


@dataclass(frozen=True)
class ShardedAsset:
    """A partitioned asset whose every partition is one shard.

    Time-partitioned assets also say which series and period a partition is (``period_of``: Kahuna's
    category and day, Kaon's week) and can read consecutive periods in one shard (``span_shard_for``):
    a backfill with fewer start-ups, at the price of coarser retries.
    """

    name: str
    group: str
    description: str
    partitions_def: dg.PartitionsDefinition
    shard_for: Callable[[str], Shard]
    kinds: frozenset[str] = frozenset({"meltano", "postgres"})
    period_of: Callable[[str], tuple[str, int]] | None = None
    span_shard_for: Callable[[Sequence[str]], Shard] | None = None

    @property
    def key(self) -> dg.AssetKey:
        """The asset key (its name)."""
        return dg.AssetKey(self.name)

    def spans(self, keys: Sequence[str], periods_per_shard: int, *, across_series: bool = False) -> list[list[str]]:
        """The keys in shards: alone, or runs of up to ``periods_per_shard`` consecutive periods.

        By default a run holds one series (a category's days). ``across_series``: a run holds every series
        of its periods (all the categories of a range of days), so that shards of a backfill are even
        however uneven the series are; a period whose series differ from the previous one's (a category
        missing that day) starts a new run. Without periods, one key per shard.
        """
        if self.period_of is None or self.span_shard_for is None:
            return [[key] for key in keys]
        if across_series:
            return spans_across_series(keys, periods_per_shard, self.period_of)
        if periods_per_shard <= 1:
            return [[key] for key in keys]
        period_of = self.period_of
        spans: list[list[str]] = []
        for key in sorted(set(keys), key=period_of):
            series, period = period_of(key)
            last = spans[-1][-1] if spans else None
            if last is not None and period_of(last) == (series, period - 1) and len(spans[-1]) < periods_per_shard:
                spans[-1].append(key)
            else:
                spans.append([key])
        return spans

    def shard_of(self, keys: Sequence[str]) -> Shard:
        """The shard that reads these partitions (one, or a span from ``spans``)."""
        if len(keys) == 1:
            return self.shard_for(keys[0])
        if self.span_shard_for is None:
            raise ValueError(f"{self.name}: one partition per shard, not {len(keys)}")
        return self.span_shard_for(keys)


def spans_across_series(
    keys: Sequence[str], periods_per_shard: int, period_of: Callable[[str], tuple[str, int]]
) -> list[list[str]]:
    """Runs of up to ``periods_per_shard`` consecutive periods that have the same series, with all of them."""
    by_period: dict[int, dict[str, str]] = {}
    for key in set(keys):
        series, period = period_of(key)
        by_period.setdefault(period, {})[series] = key
    spans: list[list[str]] = []
    run_periods = 0
    previous: tuple[int, list[str]] | None = None
    for period in sorted(by_period):
        names = sorted(by_period[period])
        period_keys = [by_period[period][name] for name in names]
        if previous == (period - 1, names) and run_periods < periods_per_shard:
            spans[-1].extend(period_keys)
            run_periods += 1
        else:
            spans.append(period_keys)
            run_periods = 1
        previous = (period, names)
    return spans


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


def kahuna_shard(category: str, day: date, last_day: date | None = None) -> Shard:
    """One category's logs of one UTC day (or of the days from ``day`` to ``last_day``)."""
    return kahuna_categories_shard([category], day, last_day)


def kahuna_categories_shard(categories: Sequence[str], day: date, last_day: date | None = None) -> Shard:
    """Some categories' logs of the days from ``day`` to ``last_day`` (default: that one day), in one run.

    The suffix names exactly that set of partitions, however the categories were listed: the categories
    sorted and joined by ``.`` (no category name holds one), then the day or days. One category gives the
    suffix of its per-category shard (``inapp-2026-11-16``): the same partitions, the same state ID.
    """
    if not categories:
        raise ValueError("a Kahuna shard reads at least one category")
    names = sorted(set(categories))
    last_day = last_day or day
    span = day.isoformat() if last_day == day else f"{day.isoformat()}--{last_day.isoformat()}"
    return Shard(
        *KAHUNA_LOAD,
        state_id_suffix=state_id_suffix(".".join(names), span),
        settings={
            "TAP_KAHUNA_LOGS_CATEGORIES": json.dumps(names),
            "TAP_KAHUNA_LOGS_START_DATE": day.isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": last_day.isoformat(),
        },
    )


def kaon_week_shard(week: int, last_week: int | None = None) -> Shard:
    """The weekly tables of one Kaon week (or of the weeks to ``last_week``); start_date too, as it wins."""
    last_week = last_week or week
    return Shard(
        *KAON_WEEKLY_LOAD,
        state_id_suffix=state_id_suffix("week", str(week)) + ("" if last_week == week else f"--{last_week}"),
        settings={
            "TAP_KAON_INSIGHTS_START_DATE": week_start(week).isoformat(),
            "TAP_KAON_INSIGHTS_START_WEEK": str(week),
            "TAP_KAON_INSIGHTS_END_WEEK": str(last_week),
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

    def kahuna_day(key: str) -> tuple[str, int]:
        dimensions = kahuna.get_partition_key_from_str(key).keys_by_dimension
        return dimensions["category"], date.fromisoformat(dimensions["day"]).toordinal()

    def kahuna_for(key: str) -> Shard:
        return kahuna_span_for([key])

    def kahuna_span_for(keys: Sequence[str]) -> Shard:
        periods = {kahuna_day(key) for key in keys}
        categories = sorted({category for category, _ in periods})
        days = sorted({day for _, day in periods})
        if len(periods) != len(keys) or len(periods) != len(categories) * (days[-1] - days[0] + 1):
            raise ValueError(f"kahuna_logs: {list(keys)} are not every day of a range for each of their categories")
        return kahuna_categories_shard(categories, date.fromordinal(days[0]), date.fromordinal(days[-1]))

    def kaon_week(key: str) -> tuple[str, int]:
        return "", week_of(date.fromisoformat(key))

    def week_for(key: str) -> Shard:
        return week_span_for([key])

    def week_span_for(keys: Sequence[str]) -> Shard:
        return kaon_week_shard(kaon_week(keys[0])[1], kaon_week(keys[-1])[1])

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
            period_of=kahuna_day,
            span_shard_for=kahuna_span_for,
        ),
        ShardedAsset(
            "kaon_weekly_tables",
            "kaon",
            "Kaon weekly tables (schema kaon: weeks, engagement, devices, countries, languages, hits), one week per"
            " partition.",
            weeks,
            week_for,
            period_of=kaon_week,
            span_shard_for=week_span_for,
        ),
        ShardedAsset(
            "kaon_clickstreams",
            "kaon",
            "Kaon external-ID clickstreams (kaon.external_id_hits), one external ID per partition.",
            dg.StaticPartitionsDefinition(list(settings.kaon_external_ids)),
            kaon_clickstream_shard,
        ),
        ShardedAsset(
            "kaon_path_hits",
            "kaon",
            "Kaon path hit histories (kaon.path_hits), one path per partition.",
            dg.StaticPartitionsDefinition(list(settings.kaon_paths)),
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
