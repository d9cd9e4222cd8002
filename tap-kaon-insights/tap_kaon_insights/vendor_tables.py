"""The vendor's fixed tables: engagement buckets in histogram order and Kaon's language codes."""

from __future__ import annotations

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


def bucket_order(label: str, position: int) -> int:
    """Return the histogram position of an engagement bucket: known labels first, others after, as listed."""
    if label in ENGAGEMENT_BUCKETS:
        return ENGAGEMENT_BUCKETS.index(label)
    return len(ENGAGEMENT_BUCKETS) + position
