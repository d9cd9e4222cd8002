"""The one Kaon Insights base stream: settings, requests, retries, error classification.

Every call is ``GET {api_url}/{endpoint}?apikey=...&client=...&...``. The key travels in the
query string, so no URL is ever put into an error message, and the tap installs log redaction.
"""

from __future__ import annotations

import logging
import random
import threading
import typing as t
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qsl, urlparse

import requests
from requests.adapters import HTTPAdapter
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import HTTPRequest

from connector_common.concurrency import ordered_map
from connector_common.rest_retry import retry_transient_errors
from connector_common.retry import retry_after_seconds
from tap_kaon_insights.weeks import FIRST_FULL_DATA_WEEK, week_of, week_start

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

DEFAULT_API_URL = "https://insights.v-central.com/api"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Endpoint names as the contract fixes them (the vendor document lost them: each is a setting).
DEFAULT_ENDPOINTS = {
    "weeks": "weeks",
    "engagement": "engagement",
    "uid": "uid",
    "countries": "countries",
    "languages": "languages",
    "hits": "hits",
    "extid": "extid",
}


class KaonError(FatalAPIError):
    """A fatal, user-facing error: one line that says what to fix, never a URL or a secret."""


@dataclass(frozen=True)
class KaonSettings:
    """The tap's settings with their defaults applied (the SDK passes config through unchanged)."""

    api_key: str
    client: str
    api_url: str = DEFAULT_API_URL
    start_week: int = FIRST_FULL_DATA_WEEK
    end_week: int | None = None
    paths: tuple[str, ...] = ()
    hits_detail_country: bool = False
    external_ids: tuple[str, ...] = ()
    external_id_page_size: int = 1000
    external_id_max_page_size: int = 64000
    max_concurrency: int = 8
    devices_buffer_mb: float = 80.0
    request_timeout: float = 60.0
    max_retries: int = 5
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    endpoints: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> KaonSettings:
        """Build settings from a config mapping; raise ``ValueError`` listing every bad value."""
        errors = config_errors(config)
        if errors:
            raise ValueError("; ".join(errors))
        start_week = config.get("start_week")
        if config.get("start_date"):  # the SDK fills start_week's default in, so start_date wins when set
            start_week = week_of(date.fromisoformat(str(config["start_date"])[:10]))
        optional = {
            name: config[name]
            for name in (
                "api_url",
                "end_week",
                "hits_detail_country",
                "external_id_page_size",
                "external_id_max_page_size",
                "max_concurrency",
                "devices_buffer_mb",
                "request_timeout",
                "max_retries",
                "backoff_base_seconds",
                "backoff_max_seconds",
            )
            if config.get(name) is not None
        }
        for name in ("request_timeout", "backoff_base_seconds", "backoff_max_seconds", "devices_buffer_mb"):
            if name in optional:
                optional[name] = float(optional[name])
        return cls(
            api_key=config["api_key"],
            client=config["client"],
            start_week=FIRST_FULL_DATA_WEEK if start_week is None else int(start_week),
            paths=tuple(config.get("paths") or ()),
            external_ids=tuple(str(x) for x in config.get("external_ids") or ()),
            endpoints={**DEFAULT_ENDPOINTS, **(config.get("endpoints") or {})},
            **optional,
        )


def config_errors(config: Mapping[str, t.Any]) -> list[str]:
    """Return the problems a config has beyond its JSON schema (URL safety, ranges, dates)."""
    errors: list[str] = []
    api_url = config.get("api_url") or DEFAULT_API_URL
    parsed = urlparse(str(api_url))
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        errors.append(f"api_url {api_url!r} is not an http(s) URL")
    elif parsed.scheme == "http" and parsed.hostname not in LOOPBACK_HOSTS:
        errors.append(
            f"api_url must use https for {parsed.hostname}: the api_key travels in the query string, "
            "so plain http is allowed only for 127.0.0.1/localhost"
        )
    if config.get("start_date"):
        try:
            date.fromisoformat(str(config["start_date"])[:10])
        except ValueError:
            errors.append(f"start_date {config['start_date']!r} is not a date (YYYY-MM-DD)")
    start_week, end_week = config.get("start_week"), config.get("end_week")
    if isinstance(start_week, int) and start_week < 0:
        errors.append("start_week must be 0 or more")
    if isinstance(start_week, int) and isinstance(end_week, int) and end_week < start_week:
        errors.append(f"end_week {end_week} is before start_week {start_week}")
    for name, low in (
        ("max_concurrency", 1),
        ("external_id_page_size", 1),
        ("external_id_max_page_size", 1),
        ("max_retries", 0),
    ):
        value = config.get(name)
        if isinstance(value, int) and value < low:
            errors.append(f"{name} must be {low} or more")
    for name in ("request_timeout", "backoff_base_seconds", "backoff_max_seconds", "devices_buffer_mb"):
        value = config.get(name)
        if (
            isinstance(value, (int, float, Decimal))
            and value <= 0
            and not (name == "backoff_base_seconds" and value == 0)
        ):
            errors.append(f"{name} must be more than 0")
    unknown = sorted(set(config.get("endpoints") or {}) - set(DEFAULT_ENDPOINTS))
    if unknown:
        errors.append(f"endpoints has unknown names {unknown}; known: {sorted(DEFAULT_ENDPOINTS)}")
    return errors


def describe_call(endpoint: str, params: Mapping[str, t.Any]) -> str:
    """Name a call for messages: endpoint and parameters, never the api key."""
    shown = ", ".join(
        f"{name} {value}" if str(value).isdigit() else f"{name} {value!r}"
        for name, value in params.items()
        if name not in ("apikey", "client")
    )
    return f"endpoint '{endpoint}'" + (f" ({shown})" if shown else "")


class KaonStream(RESTStream):
    """Base stream: one validated JSON object per call, retried with backoff honouring Retry-After."""

    #: Logical endpoint (a key of ``DEFAULT_ENDPOINTS``); the real name comes from the settings.
    endpoint: str = "weeks"
    path = ""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._retrying_request = self.request_decorator(self._request)
        workers = self.config.get("max_concurrency")
        adapter = HTTPAdapter(pool_maxsize=max(workers if isinstance(workers, int) else 8, 10))
        self.requests_session.mount("http://", adapter)
        self.requests_session.mount("https://", adapter)

    @property
    def settings(self) -> KaonSettings:
        """The tap's parsed settings."""
        return self._tap.settings  # type: ignore[attr-defined]

    @property
    def url_base(self) -> str:
        """The API base URL, without a trailing slash."""
        return self.settings.api_url.rstrip("/")

    @property
    def timeout(self) -> float:  # type: ignore[override]
        """Seconds to wait for a response before retrying."""
        return self.settings.request_timeout

    def partition_value(self, context: t.Mapping[str, t.Any] | None, key: str, setting: str, noun: str) -> str | None:
        """This partition's ``key`` (a path, an external ID); None, logged, when ``setting`` lists no ``noun``.

        singer-sdk syncs a stream whose partition list is empty once, without a context.
        """
        if context and key in context:
            return context[key]
        self.logger.info("%s: no %s configured (setting `%s`), nothing to sync", self.name, noun, setting)
        return None

    # --- one call -------------------------------------------------------------------
    def fetch(self, endpoint: str, **params: t.Any) -> dict[str, t.Any]:
        """Call ``endpoint`` (logical name) with ``params`` and return its JSON object."""
        name = self.settings.endpoints[endpoint]
        query = {"apikey": self.settings.api_key, "client": self.settings.client, **params}
        http_request = HTTPRequest(url=f"{self.url_base}/{name}", params=query)
        prepared = self.build_prepared_request(
            method="GET", url=http_request.url, params=http_request.encode_params(), headers=self.http_headers
        )
        what = describe_call(name, params)
        try:
            response = self._retrying_request(prepared, None)
        except RetriableAPIError as exc:
            status = exc.response.status_code if exc.response is not None else "no answer"
            raise KaonError(
                f"Kaon Insights kept failing for {what}: HTTP {status} after {self.settings.max_retries} retries"
            ) from None
        except requests.exceptions.RequestException as exc:
            host = urlparse(self.url_base).netloc
            raise KaonError(
                f"No complete answer from Kaon Insights at {host} for {what} after {self.settings.max_retries} "
                f"retries ({type(exc).__name__}): check api_url and the network"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content type")
            raise KaonError(
                f"Kaon Insights answered {what} with a body that is not valid JSON ({kind}, "
                f"{len(response.content)} bytes)"
            ) from None
        if not isinstance(payload, dict):
            raise KaonError(f"Kaon Insights answered {what} with JSON that is not an object")
        return payload

    def validate_response(self, response: requests.Response) -> None:
        """403 and 404 are fatal with a message naming what to fix; 429 and 5xx are retried."""
        status = response.status_code
        if status in self.extra_retry_statuses or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"HTTP {status} from Kaon Insights", response)
        if status < HTTPStatus.BAD_REQUEST:
            return
        what = self._describe_response(response)
        detail = _error_detail(response)
        if status == HTTPStatus.FORBIDDEN:
            raise KaonError(f"Kaon Insights refused the api_key (HTTP 403) for {what}: check api_key")
        if status == HTTPStatus.NOT_FOUND:
            raise KaonError(
                f"Kaon Insights found nothing (HTTP 404) for client '{self.settings.client}', {what}{detail}: "
                "check client, the endpoint names, start_week/end_week, paths and external_ids"
            )
        raise KaonError(f"Kaon Insights rejected {what} with HTTP {status}{detail}")

    def _describe_response(self, response: requests.Response) -> str:
        request_url = response.request.url if response.request is not None else response.url
        parsed = urlparse(request_url or "")
        endpoint = parsed.path.rsplit("/", 1)[-1]
        params = dict(parse_qsl(parsed.query))
        return describe_call(endpoint, params)

    # --- retries ------------------------------------------------------------------
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retry transient failures; log each retry in one line (backoff's own lines would repeat the error)."""
        return retry_transient_errors(self, func)

    def backoff_max_tries(self) -> int:
        """Tries per call: the first one plus ``max_retries``."""
        return self.settings.max_retries + 1

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Exponential waits, or exactly what a 429/503 ``Retry-After`` asks for."""
        base, cap = self.settings.backoff_base_seconds, self.settings.backoff_max_seconds
        exception = yield 0.0
        attempt = 0
        while True:
            wait = min(base * 2**attempt, cap)
            response = getattr(exception, "response", None)
            if response is not None:
                asked = retry_after_seconds(response.headers)
                if asked is not None:
                    wait = asked
            attempt += 1
            exception = yield wait

    def backoff_jitter(self, value: float) -> float:
        """Add up to 10% so parallel retries spread out, never waiting less than asked."""
        return value * (1 + random.random() / 10)

    def backoff_handler(self, details: Details) -> None:
        """One line per retry, without the URL."""
        exception = details.get("exception")
        response = getattr(exception, "response", None)
        reason = f"HTTP {response.status_code}" if response is not None else type(exception).__name__
        self.logger.warning(
            "Retrying a %s call in %.2f s after %d tries: %s", self.name, details.get("wait"), details["tries"], reason
        )

    # --- RESTStream abstract members (records come from get_records) ----------------
    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """Not used: every stream reads JSON through :meth:`fetch`."""
        return iter(())

    def get_new_paginator(self) -> None:
        """Not used: paging is per stream."""
        return None


def _error_detail(response: requests.Response) -> str:
    try:
        message = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({message})" if isinstance(message, str) and message else ""


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
        return items

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


class WeeklyStream(KaonStream):
    """A table with one request per week, fetched in parallel and emitted in week order.

    Bookmark: the last week synced. Every run re-reads from the bookmarked week on, since the
    current week is still filling up; rows are keyed so warehouses upsert them.
    """

    replication_key = "week"
    is_sorted = True
    check_sorted = True

    def bookmarked_week(self, context: Context | None) -> int | None:
        """The last week synced by an earlier run, if any."""
        state = self.get_context_state(context)
        if state.get("replication_key") != self.replication_key or state.get("replication_key_value") is None:
            return None
        return int(state["replication_key_value"])

    def start_week(self, context: Context | None) -> int:
        """The first week to read: the bookmark (re-read) or ``start_week``."""
        bookmark = self.bookmarked_week(context)
        return self.settings.start_week if bookmark is None else bookmark

    def weeks_to_sync(self, context: Context | None) -> list[int]:
        """Listed weeks from the start week to ``end_week`` (or the current week), ascending."""
        first, last = self.start_week(context), self.settings.end_week
        return [w for w in self._tap.week_list.numbers(self) if w >= first and (last is None or w <= last)]  # type: ignore[attr-defined]

    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Fetch weeks with bounded concurrency, yield their rows in week order."""
        weeks, workers = self.weeks_to_sync(context), self.fetch_concurrency
        for week, payload in ordered_map(self._fetch_week, weeks, workers, prefetch=self.prefetch_weeks):
            yield from self.week_records(week, payload)

    @property
    def fetch_concurrency(self) -> int:
        """Weeks fetched at once."""
        return self.settings.max_concurrency

    @property
    def prefetch_weeks(self) -> int | None:
        """Fetched weeks held ahead of the one being emitted (None: twice the concurrency)."""
        return None

    def _fetch_week(self, week: int) -> tuple[int, t.Any]:
        return week, self.fetch_week(week)

    def fetch_week(self, week: int) -> t.Any:
        """Fetch and check one week (runs in a worker thread); return what ``week_records`` needs."""
        return self.fetch(self.endpoint, week=week)

    def week_records(self, week: int, payload: t.Any) -> Iterator[dict[str, t.Any]]:
        """Turn one week's payload into rows."""
        raise NotImplementedError

    def base_row(self, week: int) -> dict[str, t.Any]:
        """The columns every weekly row starts with."""
        return {"client": self.settings.client, "week": week, "week_start": week_start(week).isoformat()}


class WeekList:
    """The weeks the API lists for the client, fetched once per run and shared by all streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weeks: list[dict[str, t.Any]] | None = None

    def entries(self, stream: KaonStream) -> list[dict[str, t.Any]]:
        """``[{week, weekname}]`` ascending, checked."""
        with self._lock:
            if self._weeks is None:
                self._weeks = _checked_weeks(stream, stream.fetch("weeks"))
                logging.getLogger(__name__).info("Kaon Insights lists %d weeks", len(self._weeks))
            return self._weeks

    def numbers(self, stream: KaonStream) -> list[int]:
        """The listed week numbers, ascending."""
        return [entry["week"] for entry in self.entries(stream)]


def _checked_weeks(stream: KaonStream, payload: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    check = PayloadChecker(stream.settings.endpoints["weeks"])
    entries = []
    for item in check.items(payload, "weeks"):
        week = check.field(item, "week", int)
        weekname = check.field(item, "weekname", str)
        entries.append({"week": week, "weekname": weekname})
    return sorted(entries, key=lambda entry: entry["week"])
