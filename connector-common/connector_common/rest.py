"""The REST base stream both taps build on: typed settings, one connection pool, one rule for fatal answers.

A tap's base stream names its settings class (``ServiceStream[KaonSettings]``), reads answers through
:meth:`RetryingStream.send`, and words its own fatal errors in :meth:`ServiceStream.rejected_answer`: which
answers are retried and which are fatal is decided here, by ``retry.py``'s rule, for both taps.
"""

from __future__ import annotations

import typing as t
from functools import cached_property

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override

from .retry import RetryingStream, RetrySettings, is_fatal_status

if t.TYPE_CHECKING:
    from singer_sdk import Tap


class ServiceSettings(RetrySettings, t.Protocol):
    """What the base stream reads of a tap's settings besides the retry settings."""

    @property
    def max_concurrency(self) -> int: ...


ServiceSettingsT = t.TypeVar("ServiceSettingsT", bound=ServiceSettings)

#: Connections kept open per host at least, whatever ``max_concurrency`` says (urllib3's own default).
MIN_POOL_SIZE = 10


def pool_size(max_concurrency: int) -> int:
    """Connections kept per host: two per worker (one may still be returning while the next request starts)."""
    return max(MIN_POOL_SIZE, 2 * max_concurrency)


class ServiceStream(RetryingStream, t.Generic[ServiceSettingsT]):
    """A tap's REST stream: the tap's typed settings, a pool for ``max_concurrency`` workers, fatal 4xx answers.

    The tap passed in has a ``settings`` attribute (its frozen settings, ``ConnectorPlugin.load_settings``).
    """

    @override
    def __init__(self, tap: Tap, **kwargs: t.Any) -> None:
        super().__init__(tap, **kwargs)
        self.service_tap = tap

    @property
    @override
    def settings(self) -> ServiceSettingsT:
        """The tap's settings."""
        return t.cast("ServiceSettingsT", getattr(self.service_tap, "settings"))  # noqa: B009  # Tap declares none

    @cached_property
    @override
    def requests_session(self) -> requests.Session:
        """The SDK's session with one connection pool sized from ``max_concurrency`` (:func:`pool_size`)."""
        session = super().requests_session
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size(self.settings.max_concurrency))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def rejected_answer(self, response: requests.Response) -> Exception:
        """The exception for an answer the service will not change its mind about (a 4xx other than 429).

        Each tap words its own: what the status means for this API and which setting to check.
        """
        raise NotImplementedError

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Fatal statuses raise the tap's :meth:`rejected_answer`; 429 and 5xx are retried (``retry.py``)."""
        if is_fatal_status(response.status_code):
            raise self.rejected_answer(response)
        super().validate_response(response)
