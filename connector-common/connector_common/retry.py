"""One reading of ``Retry-After`` for every connector."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 300.0


def retry_after_seconds(headers: Mapping[str, str] | None, *, cap: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds, or ``None``.

    Accepts delta-seconds and HTTP-dates; negative waits become 0 and long ones are capped.
    """
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), cap)
