"""Checks of Kaon Insights answers: every problem is a fatal one-line error naming the endpoint and the call."""

from __future__ import annotations

import itertools
import re
import typing as t
from collections.abc import Callable, Mapping

from tap_kaon_insights.client import KaonError, describe_call

UID_LENGTH = 18  # "0x" and 16 hex digits
_UIDS_PATTERN = re.compile(r"(?:0x[0-9a-fA-F]{16})*+")  # possessive: no backtracking stack on 2M uids
_UID_PATTERN = re.compile(r"0x[0-9a-fA-F]{16}")


class PayloadChecker:
    """Checks one response's shape, naming the endpoint and week in every error."""

    def __init__(self, endpoint: str, week: int | None = None, **where: t.Any) -> None:
        self.where = describe_call(endpoint, {**({"week": week} if week is not None else {}), **where})

    def fail(self, problem: str) -> t.NoReturn:
        """Raise a fatal error about this response."""
        raise KaonError(f"Kaon Insights answered {self.where} with {problem}")

    def field(self, payload: Mapping[str, t.Any], key: str, kind: type | tuple[type, ...]) -> t.Any:
        """Return ``payload[key]`` after checking it exists and has the expected type."""
        if key not in payload:
            self.fail(f"no '{key}' key")
        value = payload[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(f"'{key}' of type {type(value).__name__}, expected {names}")
        return value

    def count(self, value: t.Any, label: str) -> int:
        """Return a count after checking it is a non-negative integer."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(f"count {value!r} for {label!r}, expected a non-negative integer")
        return value

    def items(self, payload: Mapping[str, t.Any], key: str) -> list[dict[str, t.Any]]:
        """Return ``payload[key]`` as a list of objects."""
        items = self.field(payload, key, list)
        for item in items:
            if not isinstance(item, dict):
                self.fail(f"an item of '{key}' that is not an object: {item!r:.60}")
        return t.cast("list[dict[str, t.Any]]", items)

    def code_counts(self, payload: Mapping[str, t.Any], key: str, code_key: str) -> list[tuple[str, int]]:
        """Return (code, count) pairs from the list form ``[{code_key, count}]`` or the object form ``{code: n}``."""
        value = self.field(payload, key, (list, dict))
        if isinstance(value, dict):
            return [(str(code), self.count(count, code)) for code, count in value.items()]
        pairs = []
        for item in self.items(payload, key):
            code = item.get(code_key)
            if not isinstance(code, str):
                self.fail(f"an item of '{key}' without a string '{code_key}': {item!r:.60}")
            pairs.append((code, self.count(item.get("count"), code)))
        return pairs


def checked_weeks(endpoint: str, payload: Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``weeks``: ``[{week, weekname}]`` ascending."""
    check = PayloadChecker(endpoint)
    entries = []
    for item in check.items(payload, "weeks"):
        week = check.field(item, "week", int)
        weekname = check.field(item, "weekname", str)
        entries.append({"week": week, "weekname": weekname})
    return sorted(entries, key=lambda entry: entry["week"])


def checked_engagement(check: PayloadChecker, payload: Mapping[str, t.Any]) -> list[tuple[str, int]]:
    """``engagement``: (bucket, count) pairs in the API's order."""
    pairs = []
    for item in check.items(payload, "engagements"):
        bucket = check.field(item, "bucket", str)
        pairs.append((bucket, check.count(item.get("count"), bucket)))
    return pairs


def checked_uids(check: PayloadChecker, payload: Mapping[str, t.Any]) -> str:
    """``uid``: the ``uids`` string, after checking its whole format."""
    uids = check.field(payload, "uids", str)
    check_uids(uids, check)
    return t.cast("str", uids)


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


def checked_hits(check: PayloadChecker, payload: Mapping[str, t.Any], key_field: str, kind: type) -> list[dict]:
    """``hits``: the items after checking ``key_field`` and ``count`` in each."""
    hits = check.items(payload, "hits")
    for hit in hits:
        check.field(hit, key_field, kind)
        check.count(hit.get("count"), str(hit[key_field]))
    return hits


def checked_week_hits(check: PayloadChecker, payload: Mapping[str, t.Any]) -> list[dict]:
    """``hits?week=N``: one item per path, each with a string ``path`` and its count."""
    return checked_hits(check, payload, "path", str)


def code_counts(list_key: str, item_key: str) -> Callable[[PayloadChecker, Mapping[str, t.Any]], list[tuple[str, int]]]:
    """The check of a (code, count) table whose answer is ``{list_key: [{item_key, count}]}`` or ``{code: n}``."""

    def checked(check: PayloadChecker, payload: Mapping[str, t.Any]) -> list[tuple[str, int]]:
        return check.code_counts(payload, list_key, item_key)

    return checked


def checked_country_detail(check: PayloadChecker, payload: Mapping[str, t.Any], week: int) -> tuple[int, dict]:
    """``hits?path&week&detail=country``: that week's count and its countries object."""
    hits = [hit for hit in checked_hits(check, payload, "week", int) if hit["week"] == week]
    if not hits:
        check.fail(f"no hit for week {week}")
    countries = check.field(hits[0], "countries", dict)
    return hits[0]["count"], {code: check.count(count, code) for code, count in countries.items()}


def checked_clicks(check: PayloadChecker, payload: Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``extid``: the records, each with an integer timestamp, ascending."""
    records = check.items(payload, "records")
    for record in records:
        check.field(record, "timestamp", int)
    if any(b["timestamp"] < a["timestamp"] for a, b in itertools.pairwise(records)):
        check.fail("records out of timestamp order")
    return records
