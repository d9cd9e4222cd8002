"""The Kahuna Logs API base stream: auth, one request and its retries, the answers' errors.

One category per request (``user_merge`` can never share one). A cursor chain starts with a ``timestamp`` request
from a minute of the day (00:00 at first); later pages send the ``cursor``. Reading whole days is ``cursor_chains.py``'s
job.
"""

from __future__ import annotations

import typing as t
from datetime import date
from functools import cached_property
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_kahuna_logs.connector_common.rest import ServiceStream
from tap_kahuna_logs.connector_common.retry import describe_failure
from tap_kahuna_logs.payloads import KahunaAPIError, checked_page, error_fields, sent_cursor
from tap_kahuna_logs.progress import DAY_START
from tap_kahuna_logs.settings import KahunaSettings

#: Answers about the credentials: never taken for an expired cursor.
CREDENTIAL_STATUSES = (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.CONFLICT)


class CursorExpiredError(Exception):
    """The server no longer knows a cursor: the day goes on with a new chain from the last minute held."""


def request_timestamp(day: date, minute: str, timestamp_format: str) -> str:
    """The ``timestamp`` of a request from ``minute`` (``HH:MM``, UTC) of ``day``, in ``timestamp_format``.

    The seed's ``m/dd/yyyy h:mm`` calls ``h`` a 12-hour hour with no AM/PM, which cannot name 13:05; so a day's
    start is ``00:00`` (the seed's own example) and a time inside the day is ``13:05`` (``24h``) or ``1:05 PM``
    (``am_pm``).
    """
    date_text = day.strftime("%m/%d/%Y")
    if minute == DAY_START or timestamp_format == "24h":
        return f"{date_text} {minute}"
    hour, minutes = int(minute[:2]), minute[3:]
    return f"{date_text} {(hour - 1) % 12 + 1}:{minutes} {'AM' if hour < 12 else 'PM'}"


class KahunaClient(ServiceStream[KahunaSettings]):
    """Base stream: one category of the Logs API, one page per call."""

    category: str = ""
    http_method = "POST"
    path = ""

    # --- request building -------------------------------------------------------
    @property
    @override
    def url_base(self) -> str:
        """The Logs API endpoint (``api_url``)."""
        return self.settings.api_url

    @cached_property
    @override
    def authenticator(self) -> requests.auth.HTTPBasicAuth:
        """HTTP Basic: username = Secret Key, password = API Key."""
        return requests.auth.HTTPBasicAuth(self.settings.secret_key, self.settings.api_key)

    @property
    @override
    def http_headers(self) -> dict:
        """JSON in, JSON out."""
        return {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": self.user_agent}

    @override
    def get_url_params(self, context: t.Mapping[str, t.Any] | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """``env=p`` (production) or ``env=s`` (sandbox)."""
        return {"env": self.settings.environment}

    @override
    def prepare_request_payload(
        self, context: t.Mapping[str, t.Any] | None, next_page_token: t.Any
    ) -> dict[str, t.Any]:
        """A chain's first page asks from its minute with ``timestamp``; later pages send the ``cursor``."""
        assert context is not None
        payload: dict[str, t.Any] = {
            "number_of_records": context["number_of_records"],
            "categories_to_return": [context["category"]],
        }
        if next_page_token:
            payload["cursor"] = next_page_token
        else:
            payload["timestamp"] = request_timestamp(context["day"], context["minute"], self.settings.timestamp_format)
        return payload

    @override
    def get_new_paginator(self) -> None:
        """Paging is by day and cursor, done in ``daily_stream.py`` (the SDK paginator does not run in threads)."""
        return

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """The records of this stream's category in one page (checked by ``payloads.checked_page``)."""
        yield from response.json()[self.category]

    # --- one page ------------------------------------------------------------------
    def fetch_page(self, day: date, minute: str, number_of_records: int, cursor: str | None) -> dict[str, t.Any]:
        """One checked page of ``day``: from ``minute`` (a chain's first) or where ``cursor`` points, retried."""
        context = {"day": day, "minute": minute, "number_of_records": number_of_records, "category": self.category}
        http_request = self.get_http_request(page=PageContext(stream_context=context, next_page_token=cursor))
        prepared = self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
            json=http_request.data,
        )
        try:
            response = self.send(prepared, context)
        except (RetriableAPIError, requests.RequestException) as exc:
            raise KahunaAPIError(self.retries_spent(exc)) from None
        return checked_page(response, self.category, day)

    def retries_spent(self, exc: BaseException) -> str:
        """One line for a request that kept failing: what failed and what to check."""
        api_url, retries = self.settings.api_url, self.settings.max_retries
        if isinstance(exc, requests.Timeout) or "timed out" in str(exc):  # a read timeout mid-body is a ConnectionError
            return (
                f"the Kahuna Logs API at {api_url} did not answer within request_timeout "
                f"({self.settings.request_timeout:g} s), after {retries} retries"
            )
        if isinstance(exc, requests.RequestException):
            return (
                f"cannot connect to the Kahuna Logs API at {api_url} after {retries} retries "
                f"({describe_failure(exc)}); check api_url and the network"
            )
        return f"Kahuna Logs API answered {describe_failure(exc)}, still failing after {retries} retries"

    @override
    def rejected_answer(self, response: requests.Response) -> Exception:
        """A 4xx to a cursor request is an expired cursor; 401, 403, 409 and other 4xx stop the run with their cause.

        The seed says cursors "can expire at any time" and names no error for it: whatever 4xx (but 401, 403, 409
        and 429) answers a request that carried a cursor, the day goes on from its last position (``cursor_chains``
        bounds how often without progress)."""
        status = response.status_code
        error, detail = error_fields(response)
        if status not in CREDENTIAL_STATUSES and sent_cursor(response) is not None:
            return CursorExpiredError(f"{status} {error or response.reason}: {detail or '-'}")
        if status == HTTPStatus.UNAUTHORIZED:
            return KahunaAPIError("Kahuna Logs API answered 401 (bad credentials): check secret_key/api_key.")
        if status == HTTPStatus.FORBIDDEN:
            return KahunaAPIError(
                "Kahuna Logs API answered 403 (forbidden): check secret_key/api_key and the namespace's access."
            )
        if status == HTTPStatus.CONFLICT:
            return KahunaAPIError(
                "Kahuna Logs API answered 409: these credentials are not enabled for the Logs API "
                "(ask Kahuna to enable it for this namespace or use other secret_key/api_key)."
            )
        return KahunaAPIError(f"Kahuna Logs API answered {status}: {error or response.reason}: {detail or '-'}")
