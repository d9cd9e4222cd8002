"""The Kaon Insights tables: each stream declares its endpoint, schema, keys and bookmark."""

from __future__ import annotations

import itertools
import re
import typing as t
from collections.abc import Iterator
from urllib.parse import unquote

from singer_sdk import typing as th

from connector_common.concurrency import ordered_map
from tap_kaon_insights.client import KaonError, KaonStream, PayloadChecker, WeeklyStream
from tap_kaon_insights.weeks import LANGUAGE_NAMES, bucket_order, unix_to_iso

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

UID_LENGTH = 18  # "0x" and 16 hex digits
_UIDS_PATTERN = re.compile(r"(?:0x[0-9a-fA-F]{16})*+")  # possessive: no backtracking stack on 2M uids
_UID_PATTERN = re.compile(r"0x[0-9a-fA-F]{16}")

_WEEKLY = (
    th.Property("client", th.StringType, required=True, description="Kaon client ID."),
    th.Property("week", th.IntegerType, required=True, description="Kaon week number."),
    th.Property("week_start", th.DateType, description="The Sunday the week starts on (UTC)."),
)


class WeeksStream(WeeklyStream):
    """The weeks with full data; ``is_current`` marks the week still filling up (the last listed)."""

    name = "weeks"
    endpoint = "weeks"
    primary_keys = ("client", "week")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("weekname", th.StringType, description="The API's name of the week."),
        th.Property("is_current", th.BooleanType, description="True for the in-progress week."),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """One row per listed week from the bookmark on; no per-week calls."""
        entries = self._tap.week_list.entries(self)  # type: ignore[attr-defined]
        current = entries[-1]["week"] if entries else None
        for week in self.weeks_to_sync(context):
            entry = next(e for e in entries if e["week"] == week)
            yield {**self.base_row(week), "weekname": entry["weekname"], "is_current": week == current}


class EngagementStream(WeeklyStream):
    """Engagement-duration histogram per week."""

    name = "engagement"
    endpoint = "engagement"
    primary_keys = ("client", "week", "bucket")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("bucket", th.StringType, required=True, description="Duration bucket label, as the API gives it."),
        th.Property("bucket_order", th.IntegerType, description="Histogram position (0 = shortest)."),
        th.Property("count", th.IntegerType, description="Engagements in the bucket."),
    ).to_dict()

    def fetch_week(self, week: int) -> list[tuple[str, int]]:
        """Return the week's (bucket, count) pairs."""
        payload = self.fetch(self.endpoint, week=week)
        check = PayloadChecker(self.settings.endpoints[self.endpoint], week)
        pairs = []
        for item in check.items(payload, "engagements"):
            bucket = check.field(item, "bucket", str)
            pairs.append((bucket, check.count(item.get("count"), bucket)))
        return pairs

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[dict[str, t.Any]]:
        """One row per bucket."""
        for position, (bucket, count) in enumerate(payload):
            yield {
                **self.base_row(week),
                "bucket": bucket,
                "bucket_order": bucket_order(bucket, position),
                "count": count,
            }


class DevicesStream(WeeklyStream):
    """One row per device per week, streamed from the ``uids`` string by offset (no copies of it)."""

    name = "devices"
    endpoint = "uid"
    primary_keys = ("client", "week", "device_uid")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("device_uid", th.StringType, required=True, description="Device uid: 0x and 16 hex digits."),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Weeks in batches whose parallelism fits ``devices_buffer_mb`` for the largest week seen so far.

        Each fetched week holds its whole ``uids`` string until emitted, so big weeks get fewer workers;
        the first week is fetched alone to learn the size.
        """
        weeks = self.weeks_to_sync(context)
        largest, index = 0, 0
        while index < len(weeks):
            workers = self._workers_for(largest) if index else 1
            batch = weeks[index : index + workers * 4]
            for week, uids in ordered_map(self._fetch_week, batch, workers, prefetch=workers):
                largest = max(largest, len(uids))
                yield from self.week_records(week, uids)
            index += len(batch)

    def _workers_for(self, uids_length: int) -> int:
        # up to 2 x workers strings are held: the one being emitted, plus fetched and in-flight ones
        budget = self.settings.devices_buffer_mb * 1024 * 1024
        fitting = int(budget // max(uids_length, 1) // 2)
        return max(1, min(self.settings.max_concurrency, fitting))

    def fetch_week(self, week: int) -> str:
        """Return the week's ``uids`` string after checking its whole format."""
        payload = self.fetch(self.endpoint, week=week)
        check = PayloadChecker(self.settings.endpoints[self.endpoint], week)
        uids = check.field(payload, "uids", str)
        check_uids(uids, check)
        return uids

    def week_records(self, week: int, payload: str) -> Iterator[dict[str, t.Any]]:
        """One row per 18-character slice."""
        base = self.base_row(week)
        for offset in range(0, len(payload), UID_LENGTH):
            yield {**base, "device_uid": payload[offset : offset + UID_LENGTH]}


def check_uids(uids: str, check: PayloadChecker) -> None:
    """Fail naming the week and offset unless ``uids`` is a run of ``0x`` + 16 hex digits."""
    if len(uids) % UID_LENGTH:
        check.fail(f"a 'uids' string of length {len(uids)}, which is not a multiple of {UID_LENGTH}")
    if _UIDS_PATTERN.fullmatch(uids):
        return
    for offset in range(0, len(uids), UID_LENGTH):
        if not _UID_PATTERN.fullmatch(uids, offset, offset + UID_LENGTH):
            check.fail(
                f"a malformed device uid {uids[offset : offset + UID_LENGTH]!r} at offset {offset} of 'uids' "
                "(expected 0x and 16 hex digits)"
            )


class CodeCountStream(WeeklyStream):
    """Counts per code for a week, from the list form ``[{<code_key>, count}]`` or the object form ``{code: count}``."""

    primary_keys = ("client", "week", "code")
    code_key = "country"

    def fetch_week(self, week: int) -> list[tuple[str, int]]:
        """Return the week's (code, count) pairs."""
        payload = self.fetch(self.endpoint, week=week)
        check = PayloadChecker(self.settings.endpoints[self.endpoint], week)
        return check.code_counts(payload, self.endpoint, self.code_key)

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[dict[str, t.Any]]:
        """One row per code."""
        for code, count in payload:
            yield {**self.base_row(week), "code": code, "count": count}


class CountriesStream(CodeCountStream):
    """Unique engagements per country and week."""

    name = "countries"
    endpoint = "countries"
    code_key = "country"
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("code", th.StringType, required=True, description="Two-letter country code."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()


class LanguagesStream(CodeCountStream):
    """Unique engagements per Kaon language and week, with the language's name."""

    name = "languages"
    endpoint = "languages"
    code_key = "language"
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("code", th.StringType, required=True, description="Kaon language code (not ISO)."),
        th.Property("language_name", th.StringType, description="Name from Kaon's table; null if unknown."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[dict[str, t.Any]]:
        """One row per language code."""
        for row in super().week_records(week, payload):
            yield {**row, "language_name": LANGUAGE_NAMES.get(row["code"])}


def checked_hits(check: PayloadChecker, payload: dict[str, t.Any], key_field: str, kind: type) -> list[dict]:
    """Return the ``hits`` items after checking ``key_field`` and ``count`` in each."""
    hits = check.items(payload, "hits")
    for hit in hits:
        check.field(hit, key_field, kind)
        check.count(hit.get("count"), str(hit[key_field]))
    return hits


class HitsStream(WeeklyStream):
    """Hits of every path in a week."""

    name = "hits"
    endpoint = "hits"
    primary_keys = ("client", "week", "path")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("path", th.StringType, required=True, description="Path as the API sends it (URL-encoded)."),
        th.Property("path_decoded", th.StringType, description="The path URL-decoded."),
        th.Property("count", th.IntegerType, description="Hits."),
    ).to_dict()

    def fetch_week(self, week: int) -> list[dict[str, t.Any]]:
        """Return the week's hits, checked."""
        payload = self.fetch(self.endpoint, week=week)
        return checked_hits(PayloadChecker(self.settings.endpoints[self.endpoint], week), payload, "path", str)

    def week_records(self, week: int, payload: list[dict[str, t.Any]]) -> Iterator[dict[str, t.Any]]:
        """One row per path."""
        for hit in payload:
            path = hit["path"]
            yield {**self.base_row(week), "path": path, "path_decoded": unquote(path), "count": hit["count"]}


class PathHitsStream(WeeklyStream):
    """Weekly hits of each configured path: its whole history on the first run, then from the bookmark.

    Partitioned by path (one bookmark per path). ``start_week`` does not limit it: the API returns a
    path's history back to the app's launch. With ``hits_detail_country`` each week is one call with
    ``detail=country`` and rows carry a ``countries`` object.
    """

    name = "path_hits"
    endpoint = "hits"
    primary_keys = ("client", "path", "week")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("path", th.StringType, required=True, description="The configured path (URL-encoded)."),
        th.Property("path_decoded", th.StringType, description="The path URL-decoded."),
        th.Property("count", th.IntegerType, description="Hits in the week."),
        th.Property(
            "countries",
            th.ObjectType(additional_properties=th.IntegerType),
            description="Approximate hits per country code (null unless hits_detail_country).",
        ),
    ).to_dict()

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per configured path."""
        return [{"path": path} for path in self.settings.paths]

    def start_week(self, context: Context | None) -> int:
        """The bookmark, or week 0 (the whole history)."""
        bookmark = self.bookmarked_week(context)
        return 0 if bookmark is None else bookmark

    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """The path's weeks from the bookmark on, in week order."""
        path = self.partition_value(context, "path", "paths", "paths")
        if path is None:
            return
        endpoint = self.settings.endpoints[self.endpoint]
        history = checked_hits(PayloadChecker(endpoint, path=path), self.fetch(self.endpoint, path=path), "week", int)
        first, last = self.start_week(context), self.settings.end_week
        counts = {
            hit["week"]: hit["count"]
            for hit in history
            if hit["week"] >= first and (last is None or hit["week"] <= last)
        }
        if not self.settings.hits_detail_country:
            for week in sorted(counts):
                yield self.path_row(path, week, counts[week])
            return
        details = ordered_map(
            lambda week: self._fetch_detail(path, week), sorted(counts), self.settings.max_concurrency
        )
        for week, hit in details:
            yield self.path_row(path, week, hit["count"], hit["countries"])

    def _fetch_detail(self, path: str, week: int) -> tuple[int, dict[str, t.Any]]:
        payload = self.fetch(self.endpoint, path=path, week=week, detail="country")
        check = PayloadChecker(self.settings.endpoints[self.endpoint], week, path=path, detail="country")
        hits = [hit for hit in checked_hits(check, payload, "week", int) if hit["week"] == week]
        if not hits:
            check.fail(f"no hit for week {week}")
        countries = check.field(hits[0], "countries", dict)
        return week, {"count": hits[0]["count"], "countries": {c: check.count(n, c) for c, n in countries.items()}}

    def path_row(self, path: str, week: int, count: int, countries: dict[str, int] | None = None) -> dict[str, t.Any]:
        """One row of a path's history."""
        return {
            **self.base_row(week),
            "path": path,
            "path_decoded": unquote(path),
            "count": count,
            "countries": countries,
        }


class ExternalIdHitsStream(KaonStream):
    """The clickstream of each configured external ID, paged by timestamp.

    Bookmark per external ID: ``replication_key_value`` (the last timestamp emitted) and
    ``records_at_bookmark`` (how many records of that second were emitted), so a resumed run
    skips exactly those. ``start`` is inclusive, so every page begins with the previous page's
    last second; a page that holds nothing but that second is asked again with a larger limit.
    """

    name = "external_id_hits"
    endpoint = "extid"
    primary_keys = ("client", "external_id", "timestamp_unix", "sequence_in_second")
    replication_key = "timestamp_unix"
    is_sorted = True
    schema = th.PropertiesList(
        th.Property("client", th.StringType, required=True, description="Kaon client ID."),
        th.Property("external_id", th.StringType, required=True, description="The configured external ID."),
        th.Property("timestamp", th.DateTimeType, description="When the hit happened (ISO 8601 UTC)."),
        th.Property("timestamp_unix", th.IntegerType, required=True, description="The same as unix seconds."),
        th.Property(
            "sequence_in_second",
            th.IntegerType,
            required=True,
            description="Position among this ID's records of the same second, in API order (0 first).",
        ),
        th.Property("path", th.StringType, description="Path of the hit, as the API sends it."),
        th.Property(
            "extra", th.ObjectType(additional_properties=True), description="Fields the contract does not name."
        ),
    ).to_dict()

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per configured external ID."""
        return [{"external_id": external_id} for external_id in self.settings.external_ids]

    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Page through the clickstream from the bookmark, emitting each record once."""
        external_id = self.partition_value(context, "external_id", "external_ids", "external IDs")
        if external_id is None:
            return
        state = self.get_context_state(context)
        has_bookmark = (
            state.get("replication_key") == self.replication_key and state.get("replication_key_value") is not None
        )
        last_second = int(state["replication_key_value"]) if has_bookmark else None
        emitted_in_second = int(state.get("records_at_bookmark", 0)) if has_bookmark else 0
        page_size = limit = self.settings.external_id_page_size
        while True:
            records = self._fetch_page(external_id, last_second, limit)
            if last_second is not None and len(records) >= limit and records[-1]["timestamp"] == last_second:
                limit = self._larger_limit(external_id, last_second, limit)
                continue
            already = min(emitted_in_second, _leading_run(records, last_second))
            for record in records[already:]:
                if record["timestamp"] == last_second:
                    emitted_in_second += 1
                else:
                    last_second, emitted_in_second = record["timestamp"], 1
                state["records_at_bookmark"] = emitted_in_second
                yield self.click_row(external_id, record, emitted_in_second - 1)
            if len(records) < limit:
                return
            limit = page_size

    def _larger_limit(self, external_id: str, second: int, limit: int) -> int:
        ceiling = max(self.settings.external_id_max_page_size, self.settings.external_id_page_size)
        if limit >= ceiling:
            raise KaonError(
                f"Kaon Insights holds more than {limit} records of external id {external_id!r} in the one second "
                f"{unix_to_iso(second)}, so paging cannot advance: raise external_id_max_page_size"
            )
        self.logger.info("External id %r: one second fills a page of %d; asking for %d", external_id, limit, limit * 2)
        return min(limit * 2, ceiling)

    def _fetch_page(self, external_id: str, start: int | None, limit: int) -> list[dict[str, t.Any]]:
        params: dict[str, t.Any] = {"id": external_id, "limit": limit}
        if start is not None:
            params["start"] = start
        payload = self.fetch(self.endpoint, **params)
        check = PayloadChecker(self.settings.endpoints[self.endpoint], **params)
        records = check.items(payload, "records")
        for record in records:
            check.field(record, "timestamp", int)
        if any(b["timestamp"] < a["timestamp"] for a, b in itertools.pairwise(records)):
            check.fail("records out of timestamp order")
        return records

    def click_row(self, external_id: str, record: dict[str, t.Any], sequence: int) -> dict[str, t.Any]:
        """One clickstream row; fields beyond timestamp and path go to ``extra``."""
        return {
            "client": self.settings.client,
            "external_id": external_id,
            "timestamp": unix_to_iso(record["timestamp"]),
            "timestamp_unix": record["timestamp"],
            "sequence_in_second": sequence,
            "path": record.get("path"),
            "extra": {k: v for k, v in record.items() if k not in ("timestamp", "path")},
        }


def _leading_run(records: list[dict[str, t.Any]], second: int | None) -> int:
    """How many records at the start of a page belong to ``second``."""
    count = 0
    for record in records:
        if record["timestamp"] != second:
            break
        count += 1
    return count


__all__ = [
    "DevicesStream",
    "EngagementStream",
    "ExternalIdHitsStream",
    "HitsStream",
    "LanguagesStream",
    "PathHitsStream",
    "WeeksStream",
]
