"""The Kaon Insights tables, declared: endpoint, keys, schema and, for a weekly table, its check and its rows.

How weeks are read is ``weekly_stream.py``; per-path history ``path_history.py``; clickstreams ``clickstream.py``.
Adding a weekly table is one class here (and its name in ``STREAM_TYPES``).
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_kaon_insights import payloads, records
from tap_kaon_insights.clickstream import ClickstreamStream
from tap_kaon_insights.path_history import PathHistoryStream
from tap_kaon_insights.weekly_stream import ListedWeeksStream, WeeklyStream

#: The columns every weekly table starts with (``records.weekly_row``).
WEEKLY_COLUMNS = (
    th.Property("client", th.StringType, required=True, description="Kaon client ID."),
    th.Property("week", th.IntegerType, required=True, description="Kaon week number."),
    th.Property("week_start", th.DateType, description="The Sunday the week starts on (UTC)."),
)


class WeeksStream(ListedWeeksStream):
    """The listed weeks and the week still filling up (``is_current``), listed or not."""

    name = "weeks"
    endpoint = "weeks"
    primary_keys = ("client", "week")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("weekname", th.StringType, description="The API's name of the week."),
        th.Property("is_current", th.BooleanType, description="True for the in-progress week."),
    ).to_dict()


class EngagementStream(WeeklyStream):
    """Engagement-duration histogram per week: one row per bucket."""

    name = "engagement"
    endpoint = "engagement"
    primary_keys = ("client", "week", "bucket")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("bucket", th.StringType, required=True, description="Duration bucket label, as the API gives it."),
        th.Property("bucket_order", th.IntegerType, description="Histogram position (0 = shortest)."),
        th.Property("count", th.IntegerType, description="Engagements in the bucket."),
    ).to_dict()
    check_payload = payloads.checked_engagement
    build_rows = records.engagement_rows


class DevicesStream(WeeklyStream):
    """One row per device per week, streamed from the ``uids`` string by offset; big weeks get fewer workers."""

    name = "devices"
    endpoint = "uid"
    primary_keys = ("client", "week", "device_uid")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("device_uid", th.StringType, required=True, description="Device uid: 0x and 16 hex digits."),
    ).to_dict()
    check_payload = payloads.checked_uids
    build_rows = records.device_rows
    memory_budget_setting = "devices_buffer_mb"


class CountriesStream(WeeklyStream):
    """Unique engagements per country and week (list or object form)."""

    name = "countries"
    endpoint = "countries"
    primary_keys = ("client", "week", "code")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("code", th.StringType, required=True, description="Two-letter country code."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()
    check_payload = payloads.code_counts("countries", "country")
    build_rows = records.code_rows


class LanguagesStream(WeeklyStream):
    """Unique engagements per Kaon language and week (list or object form), with the language's name."""

    name = "languages"
    endpoint = "languages"
    primary_keys = ("client", "week", "code")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("code", th.StringType, required=True, description="Kaon language code (not ISO)."),
        th.Property("language_name", th.StringType, description="Name from Kaon's table; null if unknown."),
        th.Property("count", th.IntegerType, description="Unique engagements."),
    ).to_dict()
    check_payload = payloads.code_counts("languages", "language")
    build_rows = records.language_rows


class HitsStream(WeeklyStream):
    """Hits of every path in a week, back to the app's launch when ``start_week`` is before the listed weeks."""

    name = "hits"
    endpoint = "hits"
    primary_keys = ("client", "week", "path")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("path", th.StringType, required=True, description="Path as the API sends it (URL-encoded)."),
        th.Property("path_decoded", th.StringType, description="The path URL-decoded."),
        th.Property("count", th.IntegerType, description="Hits."),
    ).to_dict()
    check_payload = payloads.checked_week_hits
    build_rows = records.hit_rows
    reads_weeks_before_listed = True


class PathHitsStream(PathHistoryStream):
    """Weekly hits of each configured path: its whole history on the first run, then from the bookmark."""

    name = "path_hits"
    primary_keys = ("client", "path", "week")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("path", th.StringType, required=True, description="The configured path (URL-encoded)."),
        th.Property("path_decoded", th.StringType, description="The path URL-decoded."),
        th.Property("count", th.IntegerType, description="Hits in the week."),
        th.Property(
            "countries",
            th.ObjectType(additional_properties=th.IntegerType),
            description="Approximate hits per country code (null unless hits_detail_country).",
        ),
    ).to_dict()


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
