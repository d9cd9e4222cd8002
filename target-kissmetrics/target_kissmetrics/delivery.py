"""Beacon delivery: bounded concurrency over pooled keep-alive connections, with retries.

One :class:`BeaconSender` per target run owns the connection pool and the worker threads;
each sink tracks its own in-flight beacons in a :class:`DeliveryBatch`, so a batch is complete
only when every beacon in it got a 200. The retry policy lives in :meth:`BeaconSender.send`.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import urllib3

from target_kissmetrics.beacons import Beacon
from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.connector_common.retry import describe_failure, is_retried_status
from target_kissmetrics.settings import KissmetricsSettings


class DeliveryError(ConnectorError):
    """A beacon that could not be delivered; the run must fail so the next one re-sends it."""


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
    """Sends beacons, retried by the plugins' one retry policy (5xx, 429 with ``Retry-After``, timeouts, drops)."""

    def __init__(
        self, settings: KissmetricsSettings, redact: Callable[[str], str], sleep: Callable[[float], None]
    ) -> None:
        self.settings = settings
        self.policy = settings.retry_policy
        self.tracking_url = settings.tracking_url.rstrip("/")
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
        url = beacon.url(self.tracking_url, self.settings.api_key)
        for retry in range(self.policy.max_tries):
            problem, headers = self._attempt(url)
            if problem is None:
                with self._counter_lock:
                    self.sent[beacon.kind] += 1
                return
            if retry == self.policy.max_retries:
                break
            with self._counter_lock:
                self.retried += 1
            self.sleep(self.policy.wait_seconds(retry, headers))
        raise DeliveryError(
            f"a /{beacon.kind} beacon for person {beacon.params[0][1]!r} was not delivered after "
            f"{self.policy.max_tries} attempts (last: {problem}); check tracking_url and the network, then re-run: "
            "no state was emitted for it, so the next run re-sends it"
        )

    def _attempt(self, url: str) -> tuple[str | None, t.Mapping[str, str] | None]:
        """One request: ``(None, None)`` on 200, else ``(problem, the answer's headers if any)``."""
        if self.bucket is not None:
            self.bucket.acquire()
        try:
            response = self.pool.request("GET", url, retries=False)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            return self.redact(describe_failure(error)), None
        if response.status == 200:
            return None, None
        problem = f"HTTP {response.status}"
        if not is_retried_status(response.status):
            raise DeliveryError(f"the tracking server answered {problem}, which is not retried; check tracking_url")
        return problem, response.headers

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
