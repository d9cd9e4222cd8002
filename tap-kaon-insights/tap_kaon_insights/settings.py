"""tap-kaon-insights' settings, declared once (types, defaults, descriptions, rules)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import date, datetime, timezone

from singer_sdk import typing as th

from tap_kaon_insights.connector_common.retry import (
    backoff_base_setting,
    backoff_max_setting,
    max_retries_setting,
    request_timeout_setting,
)
from tap_kaon_insights.connector_common.setting_fields import not_in_future, setting
from tap_kaon_insights.connector_common.settings import PluginSettings
from tap_kaon_insights.connector_common.urls import service_url_rule
from tap_kaon_insights.week_numbers import FIRST_FULL_DATA_WEEK, week_of

DEFAULT_API_URL = "https://insights.v-central.com/api"
#: Endpoint names as the contract fixes them (the vendor document lost them: each is a setting), and what each serves.
DEFAULT_ENDPOINTS = {
    "weeks": "weeks",
    "engagement": "engagement",
    "uid": "uid",
    "countries": "countries",
    "languages": "languages",
    "hits": "hits",
    "extid": "extid",
}
#: Names the extid parameter of the external ID may have (the vendor document lost it): tried in turn on a 404.
EXTERNAL_ID_PARAMETERS = ("id", "extid", "external_id")
#: Forms of P in hits?path=P: the URL-encoded form the hits table lists, or decoded.
PATH_FORMS = ("as_listed", "decoded")
_ENDPOINT_DESCRIPTIONS = {
    "weeks": "listed weeks",
    "engagement": "engagement histogram",
    "uid": "device uids",
    "countries": "countries",
    "languages": "languages",
    "hits": "hits (per week and per path)",
    "extid": "external-ID clickstream",
}
_ENDPOINTS_SCHEMA = th.ObjectType(
    *(
        th.Property(key, th.StringType, default=value, description=f"Endpoint name: {_ENDPOINT_DESCRIPTIONS[key]}.")
        for key, value in DEFAULT_ENDPOINTS.items()
    ),
    additional_properties=False,
)


def _known_endpoints(endpoints: Mapping[str, str]) -> str | None:
    unknown = sorted(set(endpoints) - set(DEFAULT_ENDPOINTS))
    if unknown:
        return f"has unknown names {unknown}; known: {sorted(DEFAULT_ENDPOINTS)}"
    if not all(isinstance(name, str) and name for name in endpoints.values()):
        return "must map each endpoint to a non-empty name"
    return None


class KaonSettings(PluginSettings):
    """The tap's settings with their defaults applied."""

    api_key: str = setting("Kaon Insights API key (kept secret).", required=True, secret=True)
    client: str = setting("Kaon client ID of the app.", required=True)
    api_url: str = setting(
        "Base URL of the API: https, or http for 127.0.0.1/localhost only (the key is in the URL).",
        default=DEFAULT_API_URL,
        rule=service_url_rule("the api_key travels in the query string"),
    )
    start_week: int = setting(
        "First week to sync (week N starts Sunday 2012-01-01 + 7N days); start_date overrides it.",
        default=FIRST_FULL_DATA_WEEK,
        minimum=0,
    )
    start_date: date | None = setting(
        "Alternative to start_week: sync from the week containing this date (YYYY-MM-DD, not after today).",
        rule=not_in_future,
    )
    end_week: int | None = setting("Last week to sync (default: the current week).", minimum=0)
    paths: tuple[str, ...] = setting(
        "Paths (URL-encoded, as the hits table shows them) whose weekly history path_hits syncs.", default=[]
    )
    hits_detail_country: bool = setting(
        "path_hits: one call per week with detail=country, adding a countries object per row.", default=False
    )
    external_ids: tuple[str, ...] = setting("External IDs whose clickstream external_id_hits syncs.", default=[])
    external_id_page_size: int = setting(
        "Records per extid call (limit; the vendor advises the default, 1000).", default=1000, minimum=1
    )
    external_id_max_page_size: int = setting(
        "Largest limit, used only while one second holds more records than a page (doubling up to it).",
        default=8000,
        minimum=1,
    )
    external_id_parameter: str = setting(
        "Query parameter naming the external ID in extid calls, tried first; on a 404 the tap tries "
        + ", ".join(EXTERNAL_ID_PARAMETERS)
        + ".",
        default="id",
        options=EXTERNAL_ID_PARAMETERS,
    )
    path_form: str = setting(
        "Form of the path sent in hits?path=P, tried first: as_listed (URL-encoded, as the hits table shows it) "
        "or decoded; on a 404 the tap tries the other.",
        default="as_listed",
        options=PATH_FORMS,
    )
    max_concurrency: int = setting("Weeks fetched in parallel (1 = one at a time).", default=8, minimum=1)
    devices_buffer_mb: float = setting(
        "Most uids text (MB) devices holds at once: fewer weeks in parallel when weeks are big (2M devices = 36 MB).",
        default=80,
        exclusive_minimum=0,
    )
    request_timeout: float = request_timeout_setting("Seconds to wait for each response.", default=60)
    max_retries: int = max_retries_setting("a call", default=5)
    backoff_base_seconds: float = backoff_base_setting(default=1)
    backoff_max_seconds: float = backoff_max_setting(default=60)
    endpoints: Mapping[str, str] = setting(
        "Endpoint names (unconfirmed by the vendor): override any of " + ", ".join(DEFAULT_ENDPOINTS) + ".",
        default=dict(DEFAULT_ENDPOINTS),
        schema=_ENDPOINTS_SCHEMA,
        rule=_known_endpoints,
    )

    def __post_init__(self) -> None:
        """``start_date`` wins over ``start_week``; endpoint overrides keep the other names."""
        if self.start_date is not None:
            object.__setattr__(self, "start_week", week_of(self.start_date))
        object.__setattr__(self, "endpoints", types.MappingProxyType({**DEFAULT_ENDPOINTS, **self.endpoints}))

    def problems(self) -> list[str]:
        """The week range must not run backwards, nor start after this week."""
        if self.end_week is not None and self.end_week < self.start_week:
            return [f"end_week {self.end_week} is before start_week {self.start_week}"]
        current_week = week_of(datetime.now(timezone.utc).date())
        if self.start_week > current_week:
            return [f"start_week {self.start_week} is in the future (this is week {current_week}): nothing to sync"]
        return []
