"""Beacon delivery: bounded concurrency over pooled keep-alive connections, with retries.

One :class:`BeaconSender` per target run owns the connection pool and the worker threads;
each sink tracks its own in-flight beacons in a :class:`DeliveryBatch`, so a batch is complete
only when every beacon in it got a 200. The retry policy lives in :meth:`BeaconSender.send`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import urllib3

from connector_common.retry import retry_after_seconds
from target_kissmetrics.beacons import Beacon

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class DeliveryError(RuntimeError):
    """A beacon that could not be delivered; the run must fail so the next one re-sends it."""


@dataclass(frozen=True)
class DeliverySettings:
    """How beacons are sent."""

    tracking_url: str
    max_concurrency: int = 32
    max_requests_per_second: float | None = None
    request_timeout: float = 30.0
    max_retries: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 30.0


class TokenBucket:
    """Allows ``rate`` requests per second on average, in bursts of at most ``rate`` (or 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a token is available and take it."""
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait_seconds = (1 - self.tokens) / self.rate
            time.sleep(wait_seconds)


class BeaconSender:
    """Sends beacons with retries on 5xx, 429 (honouring ``Retry-After``), timeouts and dropped connections."""

    def __init__(
        self, settings: DeliverySettings, api_key: str, redact: Callable[[str], str], sleep: Callable[[float], None]
    ) -> None:
        self.settings = settings
        self.api_key = api_key
        self.redact = redact
        self.sleep = sleep
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=settings.max_concurrency,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=settings.request_timeout, read=settings.request_timeout),
        )
        self.executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="beacon")
        self.bucket = TokenBucket(settings.max_requests_per_second) if settings.max_requests_per_second else None
        self.sent: Counter[str] = Counter()
        self.retried = 0
        self._counter_lock = threading.Lock()

    def send(self, beacon: Beacon) -> None:
        """Deliver one beacon or raise :class:`DeliveryError` once the retries are spent."""
        url = beacon.url(self.settings.tracking_url, self.api_key)
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            problem, wait_seconds = self._attempt(url, attempt)
            if problem is None:
                with self._counter_lock:
                    self.sent[beacon.kind] += 1
                return
            if attempt + 1 == attempts:
                break
            with self._counter_lock:
                self.retried += 1
            self.sleep(wait_seconds)
        raise DeliveryError(
            f"a /{beacon.kind} beacon for person {beacon.params[0][1]!r} was not delivered after "
            f"{attempts} attempts (last: {problem}); check tracking_url and the network, then re-run: "
            "no state was emitted for it, so the next run re-sends it"
        )

    def _attempt(self, url: str, attempt: int) -> tuple[str | None, float]:
        """One request: ``(None, 0)`` on 200, else ``(problem, seconds to wait before the next try)``."""
        if self.bucket is not None:
            self.bucket.acquire()
        try:
            response = self.pool.request("GET", url, retries=False)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return self.redact(f"{type(error).__name__}: {error}"), self._backoff(attempt)
        if response.status == 200:
            return None, 0.0
        problem = f"HTTP {response.status}"
        if response.status not in RETRYABLE_STATUSES:
            raise DeliveryError(f"the tracking server answered {problem}, which is not retried; check tracking_url")
        asked = retry_after_seconds(response.headers, cap=self.settings.backoff_max)
        return problem, asked if asked is not None else self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)

    def close(self) -> None:
        """Stop the workers and close the connections."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.pool.clear()


class DeliveryBatch:
    """The in-flight beacons of one sink: at most ``2 * max_concurrency`` are held at once."""

    def __init__(self, sender: BeaconSender) -> None:
        self.sender = sender
        self.window = sender.settings.max_concurrency * 2
        self.in_flight: set[Future[None]] = set()

    def submit(self, beacon: Beacon) -> None:
        """Queue a beacon; blocks while the window is full and raises the first delivery failure."""
        while len(self.in_flight) >= self.window:
            done, self.in_flight = wait(self.in_flight, return_when=FIRST_COMPLETED)
            self._raise_failures(done)
        self.in_flight.add(self.sender.executor.submit(self.sender.send, beacon))

    def complete(self) -> None:
        """Wait until every queued beacon is delivered; raises the first failure."""
        done, _ = wait(self.in_flight)
        self.in_flight = set()
        self._raise_failures(done)

    def _raise_failures(self, done: set[Future[None]]) -> None:
        for future in done:
            error = future.exception()
            if error is not None:
                for pending in self.in_flight:
                    pending.cancel()
                raise error
