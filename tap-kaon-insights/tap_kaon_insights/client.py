"""The one Kaon Insights base stream: one call, its retries and its errors.

Every call is ``GET {api_url}/{endpoint}?apikey=...&client=...&...``. The key travels in the query string, so no
URL is ever put into an error message (the skeleton's redaction covers the logs).
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import parse_qsl, urlparse

import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams.rest import HTTPRequest
from typing_extensions import override

from tap_kaon_insights.connector_common.errors import ServiceError
from tap_kaon_insights.connector_common.rest import ServiceStream
from tap_kaon_insights.settings import KaonSettings

if t.TYPE_CHECKING:
    from tap_kaon_insights.tap import TapKaonInsights


class KaonError(ServiceError):
    """A fatal, user-facing error: one line that says what to fix, never a URL or a secret."""


class KaonNotFoundError(KaonError):
    """HTTP 404: fatal unless the caller expects it (a week before the app's launch, another parameter form)."""


def describe_call(endpoint: str, params: Mapping[str, t.Any]) -> str:
    """Name a call for messages: endpoint and parameters, never the api key."""
    shown = ", ".join(
        f"{name} {value}" if str(value).isdigit() else f"{name} {value!r}"
        for name, value in params.items()
        if name not in ("apikey", "client")
    )
    return f"endpoint '{endpoint}'" + (f" ({shown})" if shown else "")


class KaonStream(ServiceStream[KaonSettings]):
    """Base stream: one checked JSON object per call, retried by the skeleton's policy."""

    #: Logical endpoint (a key of ``settings.DEFAULT_ENDPOINTS``); the real name comes from the settings.
    endpoint: str = "weeks"
    path = ""

    @property
    def kaon_tap(self) -> TapKaonInsights:
        """The tap, for what its streams share (the week list)."""
        return t.cast("TapKaonInsights", self.service_tap)

    @property
    @override
    def url_base(self) -> str:
        """The API base URL, without a trailing slash."""
        return self.settings.api_url.rstrip("/")

    def endpoint_name(self, endpoint: str | None = None) -> str:
        """The configured name of a logical endpoint (this stream's by default)."""
        return self.settings.endpoints[endpoint or self.endpoint]

    def partition_value(self, context: t.Mapping[str, t.Any] | None, key: str, setting: str, noun: str) -> str | None:
        """This partition's ``key`` (a path, an external ID); None, logged, when ``setting`` lists no ``noun``.

        singer-sdk syncs a stream whose partition list is empty once, without a context.
        """
        if context and key in context:
            return t.cast("str", context[key])
        self.logger.info("%s: no %s configured (setting `%s`), nothing to sync", self.name, noun, setting)
        return None

    # --- one call -------------------------------------------------------------------
    def fetch(self, endpoint: str, **params: t.Any) -> dict[str, t.Any]:
        """Call ``endpoint`` (logical name) with ``params`` and return its JSON object."""
        name = self.endpoint_name(endpoint)
        query = {"apikey": self.settings.api_key, "client": self.settings.client, **params}
        http_request = HTTPRequest(url=f"{self.url_base}/{name}", params=query)
        prepared = self.build_prepared_request(
            method="GET", url=http_request.url, params=http_request.encode_params(), headers=self.http_headers
        )
        what = describe_call(name, params)
        retries = self.settings.max_retries
        try:
            response = self.send(prepared)
        except RetriableAPIError as exc:
            status = exc.response.status_code if exc.response is not None else "no answer"
            raise KaonError(f"Kaon Insights kept failing for {what}: HTTP {status} after {retries} retries") from None
        except requests.exceptions.RequestException as exc:
            host = urlparse(self.url_base).netloc
            raise KaonError(
                f"No complete answer from Kaon Insights at {host} for {what} after {retries} retries "
                f"({type(exc).__name__}): check api_url and the network"
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

    @override
    def rejected_answer(self, response: requests.Response) -> Exception:
        """403 and 404 name what to fix; another 4xx gives its status and the server's error."""
        status, what, detail = response.status_code, self._describe_response(response), _error_detail(response)
        if status == HTTPStatus.FORBIDDEN:
            return KaonError(f"Kaon Insights refused the api_key (HTTP 403) for {what}: check api_key")
        if status == HTTPStatus.NOT_FOUND:
            return KaonNotFoundError(
                f"Kaon Insights found nothing (HTTP 404) for client '{self.settings.client}', {what}{detail}: "
                "check client, the endpoint names, start_week/end_week, paths and external_ids"
            )
        return KaonError(f"Kaon Insights rejected {what} with HTTP {status}{detail}")

    def _describe_response(self, response: requests.Response) -> str:
        request_url = response.request.url if response.request is not None else response.url
        parsed = urlparse(request_url or "")
        endpoint = parsed.path.rsplit("/", 1)[-1]
        params = dict(parse_qsl(parsed.query))
        return describe_call(endpoint, params)

    # --- RESTStream abstract members (records come from get_records) ----------------
    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """Not used: every stream reads JSON through :meth:`fetch`."""
        return iter(())

    @override
    def get_new_paginator(self) -> None:
        """Not used: paging is per stream."""
        return


def _error_detail(response: requests.Response) -> str:
    try:
        message = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({message})" if isinstance(message, str) and message else ""
