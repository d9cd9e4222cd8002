"""Row building: from checked Kaon answers to the streams' records (pure functions)."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from urllib.parse import unquote

from tap_kaon_insights.payloads import UID_LENGTH
from tap_kaon_insights.vendor_tables import LANGUAGE_NAMES, bucket_order
from tap_kaon_insights.week_numbers import unix_to_iso, week_start

Row = dict[str, t.Any]


def weekly_row(client: str, week: int) -> Row:
    """The columns every weekly row starts with."""
    return {"client": client, "week": week, "week_start": week_start(week).isoformat()}


def engagement_rows(base: Row, pairs: list[tuple[str, int]]) -> Iterator[Row]:
    """One row per duration bucket, with its histogram position."""
    for position, (bucket, count) in enumerate(pairs):
        yield {**base, "bucket": bucket, "bucket_order": bucket_order(bucket, position), "count": count}


def device_rows(base: Row, uids: str) -> Iterator[Row]:
    """One row per 18-character slice of the ``uids`` string (no copy of the string)."""
    for offset in range(0, len(uids), UID_LENGTH):
        yield {**base, "device_uid": uids[offset : offset + UID_LENGTH]}


def code_rows(base: Row, pairs: list[tuple[str, int]]) -> Iterator[Row]:
    """One row per country or language code."""
    for code, count in pairs:
        yield {**base, "code": code, "count": count}


def language_rows(base: Row, pairs: list[tuple[str, int]]) -> Iterator[Row]:
    """One row per Kaon language code, with the language's name (null when Kaon's table lacks it)."""
    for row in code_rows(base, pairs):
        yield {**row, "language_name": LANGUAGE_NAMES.get(row["code"])}


def hit_rows(base: Row, hits: list[dict[str, t.Any]]) -> Iterator[Row]:
    """One row per path of a week."""
    for hit in hits:
        path = hit["path"]
        yield {**base, "path": path, "path_decoded": unquote(path), "count": hit["count"]}


def path_row(base: Row, path: str, count: int, countries: dict[str, int] | None = None) -> Row:
    """One week of a path's history."""
    return {**base, "path": path, "path_decoded": unquote(path), "count": count, "countries": countries}


def click_row(client: str, external_id: str, record: dict[str, t.Any], sequence: int) -> Row:
    """One clickstream row; fields beyond timestamp and path go to ``extra``."""
    return {
        "client": client,
        "external_id": external_id,
        "timestamp": unix_to_iso(record["timestamp"]),
        "timestamp_unix": record["timestamp"],
        "sequence_in_second": sequence,
        "path": record.get("path"),
        "extra": {k: v for k, v in record.items() if k not in ("timestamp", "path")},
    }


def path_in_form(path: str, form: str) -> str:
    """A configured path (URL-encoded, as the hits table lists it) as ``hits?path=P`` sends it: as listed or decoded."""
    return path if form == "as_listed" else unquote(path)
