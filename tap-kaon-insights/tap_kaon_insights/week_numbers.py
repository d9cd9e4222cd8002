"""Kaon week numbers: the one home of the week arithmetic (the tap, orchestration and reports import it).

Week N starts on Sunday 2012-01-01 + 7*N days (UTC); full insights data exists from week 417.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

WEEK_ZERO = date(2012, 1, 1)
FIRST_FULL_DATA_WEEK = 417


def this_week() -> int:
    """The Kaon week of today (UTC)."""
    return week_of(datetime.now(timezone.utc).date())


def week_start(week: int) -> date:
    """Return the Sunday on which Kaon week ``week`` starts."""
    return WEEK_ZERO + timedelta(days=7 * week)


def week_of(day: date) -> int:
    """Return the Kaon week that contains ``day``."""
    return (day - WEEK_ZERO).days // 7


def unix_to_iso(timestamp: int) -> str:
    """Return a unix timestamp (seconds) as an ISO 8601 UTC instant."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()
