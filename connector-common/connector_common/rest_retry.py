"""Which failures of a REST call are transient, and the one retry decorator the taps build from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

#: Retried with backoff: 429/5xx (the streams raise RetriableAPIError), timeouts, dropped or reset
#: connections and bodies cut off mid-transfer.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def retry_transient_errors(stream: Any, func: Callable) -> Callable:
    """Wrap ``func`` to retry TRANSIENT_ERRORS with the stream's own backoff hooks.

    ``stream`` is a singer-sdk RESTStream: its ``backoff_wait_generator``, ``backoff_max_tries``,
    ``backoff_handler`` and ``backoff_jitter`` decide the waits and log each retry in one line
    (backoff's own logger is off: its lines would repeat the error, URL included).
    """
    return backoff.on_exception(
        stream.backoff_wait_generator,
        TRANSIENT_ERRORS,
        max_tries=stream.backoff_max_tries,
        on_backoff=stream.backoff_handler,
        jitter=stream.backoff_jitter,
        logger=None,
    )(func)
