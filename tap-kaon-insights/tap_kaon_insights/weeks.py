"""Kaon week arithmetic and the vendor's fixed tables (one place for each rule).

Week N starts on Sunday 2012-01-01 + 7*N days (UTC); full insights data exists from week 417.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

WEEK_ZERO = date(2012, 1, 1)
FIRST_FULL_DATA_WEEK = 417

#: Engagement buckets in histogram order (the API's labels are kept as given; unknown ones sort last).
ENGAGEMENT_BUCKETS = ("0-10s", "10-30s", "30-60s", "1-3m", "3-10m", "10-30m", "30m+")

#: Kaon language codes (not ISO) and their names, from the vendor's Insights API document.
LANGUAGE_NAMES = {
    "en": "English",
    "gb": "English (UK)",
    "ar": "عربى (Arabic)",
    "cs": "Česky (Czech)",
    "da": "Dansk (Danish)",
    "de": "Deutsch (German)",
    "el": "Ελληνικά (Greek)",
    "es": "Español (Spanish)",
    "fi": "Suomi (Finnish)",
    "fr": "Français (French)",
    "ca": "Français (Canadian French)",
    "it": "Italiano (Italian)",
    "ja": "日本語 (Japanese)",
    "ko": "한국어 (Korean)",
    "nl": "Nederlands (Dutch)",
    "no": "Norsk (Norweigan)",
    "pl": "Polski (Polish)",
    "pt": "Português (Portuguese)",
    "bz": "Português (Brasilian Portuguese)",
    "ru": "Русский (Russian)",
    "sv": "Svenska (Swedish)",
    "th": "ไทย (Thai)",
    "tr": "Türkçe (Turkish)",
    "vi": "Tiếng Việt (Vietnamese)",
    "zh": "中文 (Chinese)",
    "zt": "繁體中文 (Traditional Chinese)",
}


def this_week() -> int:
    """The Kaon week of today (UTC)."""
    return week_of(datetime.now(timezone.utc).date())


def week_start(week: int) -> date:
    """Return the Sunday on which Kaon week ``week`` starts."""
    return WEEK_ZERO + timedelta(days=7 * week)


def week_of(day: date) -> int:
    """Return the Kaon week that contains ``day``."""
    return (day - WEEK_ZERO).days // 7


def bucket_order(label: str, position: int) -> int:
    """Return the histogram position of an engagement bucket: known labels first, others after, as listed."""
    if label in ENGAGEMENT_BUCKETS:
        return ENGAGEMENT_BUCKETS.index(label)
    return len(ENGAGEMENT_BUCKETS) + position


def unix_to_iso(timestamp: int) -> str:
    """Return a unix timestamp (seconds) as an ISO 8601 UTC instant."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()
