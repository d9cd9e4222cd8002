"""The Kaon Insights tables: each stream declares its endpoint, schema, keys and how one answer becomes rows."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

from singer_sdk import typing as th
from typing_extensions import override

from tap_kaon_insights import payloads, records
from tap_kaon_insights.clickstream import ClickstreamStream
from tap_kaon_insights.client import KaonNotFoundError
from tap_kaon_insights.connector_common.concurrency import ordered_map
from tap_kaon_insights.payloads import PayloadChecker
from tap_kaon_insights.records import Row
from tap_kaon_insights.settings import PATH_FORMS
from tap_kaon_insights.weekly import WeeklyStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

_WEEKLY = (
    th.Property("client", th.StringType, required=True, description="Kaon client ID."),
    th.Property("week", th.IntegerType, required=True, description="Kaon week number."),
    th.Property("week_start", th.DateType, description="The Sunday the week starts on (UTC)."),
)


class WeeksStream(WeeklyStream):
    """The listed weeks and the week still filling up (``is_current``), listed or not (see ``weekly.py``)."""

    name = "weeks"
    endpoint = "weeks"
    primary_keys = ("client", "week")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("weekname", th.StringType, description="The API's name of the week."),
        th.Property("is_current", th.BooleanType, description="True for the in-progress week."),
    ).to_dict()

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """One row per listed week (and the current week) from the bookmark on; no per-week calls."""
        week_list = self.kaon_tap.week_list
        current = week_list.current(self)
        entries = {entry["week"]: entry for entry in week_list.entries(self)}
        entries.setdefault(current["week"], current)
        for week in self.weeks_to_sync(context):
            is_current = week == current["week"]
            yield {**self.base_row(week), "weekname": entries[week]["weekname"], "is_current": is_current}


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
        """The week's (bucket, count) pairs."""
        return payloads.checked_engagement(self.checker(week), self.fetch(self.endpoint, week=week))

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[Row]:
        """One row per bucket."""
        return records.engagement_rows(self.base_row(week), payload)


class DevicesStream(WeeklyStream):
    """One row per device per week, streamed from the ``uids`` string by offset (no copies of it)."""

    name = "devices"
    endpoint = "uid"
    primary_keys = ("client", "week", "device_uid")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("device_uid", th.StringType, required=True, description="Device uid: 0x and 16 hex digits."),
    ).to_dict()

    @property
    def memory_budget_bytes(self) -> float:  # type: ignore[override]
        """``devices_buffer_mb``: big weeks get fewer workers."""
        return self.settings.devices_buffer_mb * 1024 * 1024

    def fetch_week(self, week: int) -> str:
        """The week's ``uids`` string, checked whole."""
        return payloads.checked_uids(self.checker(week), self.fetch(self.endpoint, week=week))

    def week_records(self, week: int, payload: str) -> Iterator[Row]:
        """One row per 18-character slice."""
        return records.device_rows(self.base_row(week), payload)


class CodeCountStream(WeeklyStream):
    """A weekly table of (code, count) pairs, in the API's list or object form: countries, languages."""

    primary_keys = ("client", "week", "code")
    #: The answer's list and the code's field in each of its items (``{"countries": [{"country": ...}]}``).
    list_key: t.ClassVar[str] = ""
    item_key: t.ClassVar[str] = ""

    def fetch_week(self, week: int) -> list[tuple[str, int]]:
        """The week's (code, count) pairs, checked."""
        return self.checker(week).code_counts(self.fetch(self.endpoint, week=week), self.list_key, self.item_key)


class CountriesStream(CodeCountStream):
    """Unique engagements per country and week (list or object form)."""

    name = "countries"
    endpoint = "countries"
    list_key, item_key = "countries", "country"
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("code", th.StringType, required=True, description="Two-letter country code."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[Row]:
        """One row per country."""
        return records.code_rows(self.base_row(week), payload)


class LanguagesStream(CodeCountStream):
    """Unique engagements per Kaon language and week, with the language's name."""

    name = "languages"
    endpoint = "languages"
    list_key, item_key = "languages", "language"
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("code", th.StringType, required=True, description="Kaon language code (not ISO)."),
        th.Property("language_name", th.StringType, description="Name from Kaon's table; null if unknown."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()

    def week_records(self, week: int, payload: list[tuple[str, int]]) -> Iterator[Row]:
        """One row per language code."""
        return records.language_rows(self.base_row(week), payload)


class HitsStream(WeeklyStream):
    """Hits of every path in a week, back to the app's launch when ``start_week`` is before the listed weeks.

    Hit counts go back "to whenever the application first went live", before the weeks ``weeks`` lists: on a run
    without a bookmark, weeks from the first listed one down to ``start_week`` are read newest first until the
    server answers 404 (no data: before the launch), then emitted oldest first. A week without hits does not stop
    the walk; ``start_week`` bounds it.
    """

    name = "hits"
    endpoint = "hits"
    primary_keys = ("client", "week", "path")
    schema = th.PropertiesList(
        *_WEEKLY,
        th.Property("path", th.StringType, required=True, description="Path as the API sends it (URL-encoded)."),
        th.Property("path_decoded", th.StringType, description="The path URL-decoded."),
        th.Property("count", th.IntegerType, description="Hits."),
    ).to_dict()

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """The weeks before the listed ones (back to the launch), then the listed weeks."""
        listed = self.kaon_tap.week_list.numbers(self)
        if listed and self.bookmarked_week(context) is None:
            for week, payload in self.history_before(listed[0]):
                yield from self.week_records(week, payload)
        yield from super().get_records(context)

    def history_before(self, first_listed: int) -> list[tuple[int, list[dict[str, t.Any]]]]:
        """``(week, hits)`` of the weeks from ``start_week`` to before ``first_listed`` that have data, ascending."""
        last = first_listed - 1 if self.settings.end_week is None else min(first_listed - 1, self.settings.end_week)
        history = []
        for week in range(last, self.settings.start_week - 1, -1):
            try:
                history.append((week, self.fetch_week(week)))
            except KaonNotFoundError:
                self.logger.info("hits: no data before week %d (HTTP 404 for week %d)", week + 1, week)
                break
        if history:
            self.logger.info("hits: %d weeks before the first listed week %d", len(history), first_listed)
        return history[::-1]

    def fetch_week(self, week: int) -> list[dict[str, t.Any]]:
        """The week's hits, checked."""
        return payloads.checked_hits(self.checker(week), self.fetch(self.endpoint, week=week), "path", str)

    def week_records(self, week: int, payload: list[dict[str, t.Any]]) -> Iterator[Row]:
        """One row per path."""
        return records.hit_rows(self.base_row(week), payload)


class PathHitsStream(WeeklyStream):
    """Weekly hits of each configured path: its whole history on the first run, then from the bookmark.

    Partitioned by path (one bookmark per path). ``start_week`` does not limit it: the API returns a path's
    history back to the app's launch. With ``hits_detail_country`` each week is one call with ``detail=country``
    and rows carry a ``countries`` object.
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

    #: The form of P the server knows (``settings.PATH_FORMS``), once a path that the forms tell apart proved it.
    path_form: str | None = None

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One partition per configured path."""
        return [{"path": path} for path in self.settings.paths]

    def start_week(self, context: Context | None) -> int:
        """The bookmark, or week 0 (the whole history)."""
        bookmark = self.bookmarked_week(context)
        return 0 if bookmark is None else bookmark

    @override
    def get_records(self, context: Context | None) -> Iterator[Row]:
        """The path's weeks from the bookmark on, in week order."""
        path = self.partition_value(context, "path", "paths", "paths")
        if path is None:
            return
        check = PayloadChecker(self.endpoint_name(), path=path)
        history = payloads.checked_hits(check, self.fetch_path(path), "week", int)
        first, last = self.start_week(context), self.settings.end_week
        counts = {
            hit["week"]: hit["count"]
            for hit in history
            if hit["week"] >= first and (last is None or hit["week"] <= last)
        }
        if not self.settings.hits_detail_country:
            for week in sorted(counts):
                yield records.path_row(self.base_row(week), path, counts[week])
            return
        details = ordered_map(
            lambda week: self._country_detail(path, week), sorted(counts), self.settings.max_concurrency
        )
        for week, (count, countries) in details:
            yield records.path_row(self.base_row(week), path, count, countries)

    def _country_detail(self, path: str, week: int) -> tuple[int, tuple[int, dict[str, int]]]:
        check = PayloadChecker(self.endpoint_name(), week, path=path, detail="country")
        payload = self.fetch_path(path, week=week, detail="country")
        return week, payloads.checked_country_detail(check, payload, week)

    def fetch_path(self, path: str, **params: t.Any) -> dict[str, t.Any]:
        """``hits?path=P``: P in ``path_form`` (as listed, or decoded), or on its 404 in the other form, learned."""
        if self.path_form is not None:
            return self.fetch(self.endpoint, path=records.path_in_form(path, self.path_form), **params)
        first = self.settings.path_form
        other = next(form for form in PATH_FORMS if form != first)
        told_apart = records.path_in_form(path, first) != records.path_in_form(path, other)
        try:
            payload = self.fetch(self.endpoint, path=records.path_in_form(path, first), **params)
        except KaonNotFoundError as not_found:
            if not told_apart:
                raise
            try:
                payload = self.fetch(self.endpoint, path=records.path_in_form(path, other), **params)
            except KaonNotFoundError:
                raise not_found from None
            self.logger.warning("hits?path=P knows paths %s, not %s: set path_form", other, first)
            self.path_form = other
            return payload
        if told_apart:  # only a path the two forms write differently proves the form
            self.path_form = first
        return payload


class ExternalIdHitsStream(ClickstreamStream):
    """The clickstream of each configured external ID, paged by timestamp (see ``clickstream.py``)."""

    name = "external_id_hits"
    primary_keys = ("client", "external_id", "timestamp_unix", "sequence_in_second")
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


STREAM_TYPES: tuple[type[WeeklyStream | ClickstreamStream], ...] = (
    WeeksStream,
    EngagementStream,
    DevicesStream,
    CountriesStream,
    LanguagesStream,
    HitsStream,
    PathHitsStream,
    ExternalIdHitsStream,
)
