"""The one retry policy: what is retried, how long each wait is, and ``Retry-After``.

Retried: HTTP 429 and 5xx, timeouts, refused/dropped/reset connections and bodies cut off mid-transfer.
Waits: ``backoff_base_seconds * 2**n`` (n = 0 for the first retry) capped at ``backoff_max_seconds``, plus up to
10 % jitter so parallel workers spread out; a ``Retry-After`` header replaces the computed wait (still capped at
``backoff_max_seconds``). ``max_retries`` counts the retries after the first try: ``max_retries: 2`` is at most
3 requests.

:class:`RetryPolicy` holds the rule; :class:`RetryingStream` gives a singer-sdk REST stream the rule through
the SDK's own hooks (its ``request_decorator`` and exception list stay the SDK's), and the target's delivery
asks the same policy for its waits.
"""

from __future__ import annotations

import random
import re
import typing as t
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from http import HTTPStatus

import requests
import urllib3
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams import RESTStream
from typing_extensions import override

from . import sdk_compat
from .setting_fields import setting

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

JITTER = 0.1
MAX_RETRY_AFTER_SECONDS = 300.0
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


def retry_after_seconds(headers: Mapping[str, str] | None, *, cap: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (delta-seconds or an HTTP-date), capped; else None."""
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


def is_retried_status(status: int) -> bool:
    """HTTP statuses worth another try: 429 and every 5xx."""
    return status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR


def is_fatal_status(status: int) -> bool:
    """HTTP statuses that end a request for good: every 4xx but 429 (the service will answer the same again)."""
    return HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR and not is_retried_status(status)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first try, exponential waits with jitter, ``Retry-After`` honoured."""

    max_retries: int
    backoff_base_seconds: float
    backoff_max_seconds: float

    @classmethod
    def of(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy a plugin's settings name."""
        return cls(settings.max_retries, settings.backoff_base_seconds, settings.backoff_max_seconds)

    @property
    def max_tries(self) -> int:
        """Requests at most: the first plus the retries."""
        return self.max_retries + 1

    def wait_seconds(self, retry: int, headers: Mapping[str, str] | None = None) -> float:
        """How long to wait before retry number ``retry`` (0 = the first retry), given the failed answer's headers."""
        asked = retry_after_seconds(headers, cap=self.backoff_max_seconds)
        if asked is not None:
            return asked
        computed = min(self.backoff_base_seconds * 2**retry, self.backoff_max_seconds)
        return computed * (1 + random.random() * JITTER)


class RetrySettings(t.Protocol):
    """The four retry settings every plugin declares (with the ``*_setting`` fields below)."""

    @property
    def max_retries(self) -> int: ...
    @property
    def backoff_base_seconds(self) -> float: ...
    @property
    def backoff_max_seconds(self) -> float: ...
    @property
    def request_timeout(self) -> float: ...


# The retry settings' declarations, one rule for the three plugins; each plugin picks its defaults.
def max_retries_setting(what: str, *, default: int, maximum: int | None = None) -> t.Any:
    """``max_retries``: how often ``what`` (e.g. "a request") is retried after its first try."""
    return setting(
        f"Retries of {what} after its first try (on 429, 5xx, a timeout or a dropped connection).",
        default=default,
        minimum=0,
        maximum=maximum,
    )


def backoff_base_setting(*, default: float, deprecated_names: tuple[str, ...] = ()) -> t.Any:
    """``backoff_base_seconds``: the first retry's wait."""
    return setting(
        "First retry wait in seconds; doubles per retry, with jitter. A Retry-After header replaces it.",
        default=default,
        minimum=0,
        deprecated_names=deprecated_names,
    )


def backoff_max_setting(*, default: float, deprecated_names: tuple[str, ...] = ()) -> t.Any:
    """``backoff_max_seconds``: the longest wait, also the cap of ``Retry-After``."""
    return setting(
        "Longest wait between tries in seconds (also caps Retry-After).",
        default=default,
        exclusive_minimum=0,
        deprecated_names=deprecated_names,
    )


def request_timeout_setting(description: str, *, default: float) -> t.Any:
    """``request_timeout``: seconds to wait for one answer (``description`` says which part of it)."""
    return setting(description, default=default, exclusive_minimum=0)


def seconds_text(seconds: float) -> str:
    """``0.3``, ``1.25``, ``12``: a wait as a person reads it (at most two decimals)."""
    return f"{seconds:.2f}".rstrip("0").rstrip(".")


def describe_failure(exception: BaseException | None) -> str:
    """A short, URL-free reason for a failed try: ``HTTP 503``, ``ReadTimeout: timed out``,
    ``ConnectionError: [Errno 111] Connection refused``, or another exception's type and first line.
    """
    response = getattr(exception, "response", None)
    if isinstance(exception, RetriableAPIError) and response is not None:
        return f"HTTP {response.status_code}"
    if exception is None:
        return "unknown error"
    name, text = type(exception).__name__, str(exception)
    if isinstance(exception, requests.RequestException | urllib3.exceptions.HTTPError | OSError):
        # Their messages repeat the URL (with its query string); the cause is the errno or the timeout.
        errno = _ERRNO.search(text)
        if errno:
            return f"{name}: {errno.group(0).strip()}"
        return f"{name}: timed out" if "timed out" in text else name
    first_line = text.splitlines()[0][:200] if text else ""
    return f"{name}: {first_line}" if first_line else name


class RetryingStream(RESTStream[t.Any]):
    """A REST stream retried by :class:`RetryPolicy` through singer-sdk's backoff hooks.

    Subclasses give ``settings`` (their plugin's, with the retry settings) and call :meth:`send` for each
    prepared request. The tap's ``reported_errors`` reach the SDK's noise filter: the fatal-error path prints
    their one line, so the SDK's own "unhandled error" line about them is dropped.
    """

    @override
    def __init__(self, tap: Tap, **kwargs: t.Any) -> None:
        super().__init__(tap, **kwargs)
        sdk_compat.hide_sdk_sync_error_line(self.logger, getattr(tap, "reported_errors", ()))

    @property
    def settings(self) -> RetrySettings:
        """The plugin's settings."""
        raise NotImplementedError

    @property
    def retry_policy(self) -> RetryPolicy:
        """``max_retries``, ``backoff_base_seconds``, ``backoff_max_seconds`` of the settings."""
        return RetryPolicy.of(self.settings)

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # the SDK declares an int; seconds may be fractional
        """Seconds to wait for one answer (``request_timeout``)."""
        return self.settings.request_timeout

    @override
    def backoff_max_tries(self) -> int:
        """The first try plus ``max_retries``."""
        return self.retry_policy.max_tries

    @override
    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Waits from the policy; backoff sends each failure in, so ``Retry-After`` can replace the wait."""
        exception = yield 0.0  # backoff primes the generator before the first failure
        retry = 0
        while True:
            response = getattr(exception, "response", None)
            headers = response.headers if response is not None else None
            exception = yield self.retry_policy.wait_seconds(retry, headers)
            retry += 1

    @override
    def backoff_jitter(self, value: float) -> float:
        """No extra jitter: the policy's waits carry theirs and never undercut ``Retry-After``."""
        return value

    @override
    def backoff_handler(self, details: Details) -> None:
        """One warning per retry: stream, wait, tries so far and the reason, never the URL."""
        exception = details.get("exception")  # backoff's on_exception puts it in; its Details type does not say so
        self.logger.warning(
            "Retrying a %s request in %s s after %d of %d tries: %s",
            self.name,
            seconds_text(details.get("wait") or 0.0),
            details["tries"],
            self.retry_policy.max_tries,
            describe_failure(exception if isinstance(exception, BaseException) else None),
        )

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The status and reason only: bodies and URLs may carry what must not be logged."""
        return f"HTTP {response.status_code} {response.reason or ''}".rstrip()

    @override
    def validate_response(self, response: requests.Response) -> None:
        """429 and 5xx are retried; other 4xx are fatal (plugins name their causes before calling this)."""
        if is_retried_status(response.status_code):
            raise RetriableAPIError(self.response_error_message(response), response)
        super().validate_response(response)

    def send(self, prepared: requests.PreparedRequest, context: Context | None = None) -> requests.Response:
        """Send one prepared request with the policy's retries; the last failure propagates once they are spent."""
        return self.retrying_sender(prepared, context)

    @cached_property
    def retrying_sender(self) -> Callable[[requests.PreparedRequest, Context | None], requests.Response]:
        """The SDK's request function wrapped by the SDK's ``request_decorator`` (build it before threads share it)."""
        sdk_compat.quiet_backoff_logging(self.logger)
        return self.request_decorator(sdk_compat.request_sender(self))
