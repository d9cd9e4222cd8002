"""tap-kahuna-logs' settings, declared once (types, defaults, descriptions, rules)."""

from __future__ import annotations

from datetime import date

from tap_kahuna_logs.connector_common.redaction import basic_auth_token
from tap_kahuna_logs.connector_common.retry import (
    backoff_base_setting,
    backoff_max_setting,
    max_retries_setting,
    request_timeout_setting,
)
from tap_kahuna_logs.connector_common.setting_fields import not_in_future, setting
from tap_kahuna_logs.connector_common.settings import PluginSettings
from tap_kahuna_logs.connector_common.urls import service_url_rule

DEFAULT_API_URL = "https://tap-nexus.appspot.com/api/kahunalogs"
CATEGORIES = ("inapp", "push", "email", "user_merge")
#: How a time inside a day is written in a ``timestamp`` request (a day's start is always ``00:00``).
TIMESTAMP_FORMATS = ("24h", "am_pm")


def _at_least_one(categories: tuple[str, ...]) -> str | None:
    return None if categories else "is empty: name at least one of " + ", ".join(CATEGORIES)


class KahunaSettings(PluginSettings):
    """The tap's settings with their defaults applied."""

    secret_key: str = setting("Kahuna Secret Key (Settings); the HTTP Basic username.", required=True, secret=True)
    api_key: str = setting("Kahuna API Key (Settings); the HTTP Basic password.", required=True, secret=True)
    environment: str = setting("Kahuna environment: p (production) or s (sandbox).", default="p", options=("p", "s"))
    api_url: str = setting(
        "Logs API endpoint; https is required except for 127.0.0.1/localhost.",
        default=DEFAULT_API_URL,
        rule=service_url_rule("the credentials travel in every request"),
    )
    start_date: date = setting(
        "First UTC day to read (YYYY-MM-DD, not after today) when there is no bookmark.",
        required=True,
        rule=not_in_future,
    )
    end_date: date | None = setting("Last UTC day to read (YYYY-MM-DD); default and latest: today (UTC).")
    categories: tuple[str, ...] = setting(
        "Log categories to read: inapp, push, email, user_merge (one stream each).",
        default=list(CATEGORIES),
        options=CATEGORIES,
        rule=_at_least_one,
    )
    page_size: int = setting(
        "number_of_records of each request, 1 to 1000: the page size, or the cap of one cursor chain (both readings "
        "of the API's documentation are handled).",
        default=1000,
        minimum=1,
        maximum=1000,
    )
    timestamp_format: str = setting(
        "How a time inside a day is written in timestamp requests: 24h (11/18/2026 13:05) or am_pm "
        "(11/18/2026 1:05 PM). A day's start is always sent as 00:00. Neither form is confirmed against the real API.",
        default="24h",
        options=TIMESTAMP_FORMATS,
    )
    max_concurrency: int = setting(
        "Days read at once, across the categories (1 to 32); each category's records still leave in day order.",
        default=4,
        minimum=1,
        maximum=32,
    )
    day_buffer_mb: float = setting(
        "Memory (MB) one day of one category may take while it waits for its turn; larger days go to a temporary file.",
        default=8,
        exclusive_minimum=0,
    )
    request_timeout: float = request_timeout_setting("Seconds to wait for one API answer before retrying.", default=60)
    max_retries: int = max_retries_setting("a request", default=5, maximum=20)
    backoff_base_seconds: float = backoff_base_setting(default=0.5)
    backoff_max_seconds: float = backoff_max_setting(default=60)

    def problems(self) -> list[str]:
        """The day range must not run backwards."""
        if self.end_date is not None and self.end_date < self.start_date:
            return [f"end_date {self.end_date} is before start_date {self.start_date}"]
        return []

    def secret_values(self) -> list[str]:
        """The keys and the Basic ``Authorization`` token made of them."""
        return [*super().secret_values(), basic_auth_token(self.secret_key, self.api_key)]
