"""Checks of Kahuna Logs API answers: a 200 page must be usable, an error body says what went wrong."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import requests

from tap_kahuna_logs.connector_common.errors import ServiceError


class KahunaAPIError(ServiceError):
    """A fatal answer of the Kahuna Logs API, with a one-line cause that says what to fix."""


def checked_page(response: requests.Response, category: str, day: date) -> dict[str, Any]:
    """The page of a 200 answer, or a fatal one-line error naming the category and the day.

    A page must be a JSON object with an array of record objects for the category. The seed has ``more_records``
    and ``cursor`` come "in addition" when the server could not send everything, so a page without
    ``more_records`` says more remain exactly when it has a cursor; the returned page always has
    ``more_records``. When present, ``more_records`` is a boolean, and a true one comes with a non-empty cursor.
    """
    problem: str | None
    try:
        page = response.json()
    except ValueError as exc:
        page, problem = None, not_json(response, exc)
    else:
        problem = page_problem(page, category)
        if problem is None and "more_records" not in page:
            page["more_records"] = isinstance(page.get("cursor"), str) and bool(page["cursor"].strip())
    if problem:
        raise KahunaAPIError(
            f"Kahuna Logs API sent a bad answer for {category} logs of UTC day {day.isoformat()}: "
            f"{problem}; this run emitted no record or state of that day, re-run to read it again"
        )
    return page


def page_problem(page: Any, category: str) -> str | None:
    """What is wrong with a parsed 200 page of ``category``, in a few words, or None when it is usable."""
    if not isinstance(page, dict):
        return f"the body is {json_type(page)}, not a JSON object"
    if category not in page:
        return f'the page has no "{category}" array (keys: {", ".join(sorted(page)) or "none"})'
    records = page[category]
    if not isinstance(records, list):
        return f'"{category}" is {json_type(records)}, not an array'
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            return f'"{category}" item {index} is {json_type(record)}, not an object'
    if "more_records" not in page:
        cursor = page.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            return f'"more_records" is missing and "cursor" is {json_type(cursor)}, not a string'
        return None
    more_records = page["more_records"]
    if not isinstance(more_records, bool):
        return f'"more_records" is {json_type(more_records)}, not a boolean'
    cursor = page.get("cursor")
    if more_records and not (isinstance(cursor, str) and cursor.strip()):
        return f'"more_records" is true but "cursor" is {json_type(cursor) if "cursor" in page else "missing"}'
    return None


def not_json(response: requests.Response, exc: ValueError) -> str:
    """Why a body is not JSON: an HTML page, a truncated body or malformed JSON."""
    content_type = response.headers.get("Content-Type") or "none"
    size = len(response.content)
    if response.content.lstrip()[:1] == b"<":
        return f"the body is an HTML page, not JSON (Content-Type {content_type}, {size} bytes)"
    reason = getattr(exc, "msg", "") or type(exc).__name__
    position = getattr(exc, "pos", None)
    # The parser stops at the start of an unterminated string, so a body cut inside one is truncated too.
    if reason.startswith("Unterminated string") or (
        isinstance(position, int) and position >= len(response.text.rstrip())
    ):
        return f"the body is truncated JSON: it stops after {size} bytes ({reason}: char {position})"
    where = f" at char {position}" if isinstance(position, int) else ""
    return f"the body is malformed JSON ({reason}{where}, {size} bytes, Content-Type {content_type})"


def json_type(value: Any) -> str:
    """``value``'s JSON type with an article: "a string", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40])}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "an array" if isinstance(value, list) else "an object"


def error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("error") or ""), str(body.get("error_detail") or "")


def sent_cursor(response: requests.Response) -> str | None:
    """The cursor the request of ``response`` carried, or None (a chain's first, ``timestamp`` request)."""
    try:
        sent = json.loads(response.request.body or b"{}")
    except (TypeError, ValueError):
        return None
    cursor = sent.get("cursor") if isinstance(sent, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None
