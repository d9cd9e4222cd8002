"""Beacon delivery: one asyncio event loop in its own thread, ``max_concurrency`` beacons in flight, retries.

The SDK's thread reads records and builds beacons; :meth:`BeaconSender.submit` appends each one to a queue that
``max_concurrency`` worker coroutines on the loop drain over one aiohttp session (keep-alive connections, one per
worker at most). The hand-off costs no lock and no system call while the workers are busy: a worker that finds the
queue empty parks itself, and only then does a submit wake it (one ``call_soon_threadsafe``).

Every beacon gets a sequence number when submitted. The loop keeps the *delivered-through* mark: every beacon
numbered below it got a 200. A STATE is written once the mark passes the number of beacons submitted before it
(:meth:`BeaconSender.when_delivered`), so STATE always follows the delivery of every beacon of the records before
it, yet reading never pauses for a drain: the loop writes the STATE the moment its last beacon is answered.
At most ``max_concurrency`` beacons fly and ``max(32, max_concurrency / 4)`` wait at once, so memory stays flat
however long the input. The retry rule is connector_common's :class:`RetryPolicy`, the one the taps use.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import typing as t
from collections import Counter, deque
from collections.abc import Callable, Mapping

import aiohttp
import yarl

from target_kissmetrics.beacons import MAX_BEACON_URL_BYTES, Beacon
from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.connector_common.redaction import REDACTED
from target_kissmetrics.connector_common.retry import RetryPolicy, describe_failure, is_retried_status
from target_kissmetrics.records import describe_beacon
from target_kissmetrics.settings import DEFAULT_TRACKING_URL, KissmetricsSettings
from target_kissmetrics.stream_mappings import KINDS

#: Open files the process needs besides one socket per beacon in flight (stdin/stdout, logs, the loop's pipes).
SPARE_FILE_DESCRIPTORS = 64
#: Beacons waiting for a worker at least (see ``BeaconSender.window``).
MIN_QUEUED_BEACONS = 32
#: Kissmetrics answers every beacon with a 1x1 GIF; a 200 of another type came from something else (a proxy).
TRACKING_ANSWER_TYPE = "image/"
#: How often a waiting SDK thread checks that the delivery thread is still alive.
LIVENESS_CHECK_SECONDS = 1.0


class DeliveryError(ConnectorError):
    """A beacon that could not be delivered; the run must fail so the next one re-sends it."""


class RateLimiter:
    """A token bucket as a schedule (GCRA): ``rate`` requests per second on average, bursts of ``max(rate, 1)``.

    :meth:`reserve` books the next free slot at once and says how long to wait for it, so concurrent callers
    are spread out without a lock or a polling loop.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.burst_tolerance = (max(rate, 1.0) - 1.0) * self.interval
        self.clock = clock
        self.next_slot = clock()

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before using it (0 when a token is free now)."""
        now = self.clock()
        slot = max(self.next_slot, now)
        self.next_slot = slot + self.interval
        return max(0.0, slot - self.burst_tolerance - now)


def describe_delivery_failure(error: BaseException) -> str:
    """A short, URL-free reason for a failed try of a beacon (aiohttp's messages name the host, not the cause)."""
    name = type(error).__name__
    if isinstance(error, TimeoutError | asyncio.TimeoutError):  # distinct classes before Python 3.11
        return f"{name}: timed out"
    errno = getattr(error, "errno", None)
    if isinstance(error, aiohttp.ClientConnectorError) and errno:
        return f"{name}: [Errno {errno}] {os.strerror(errno)}"
    return describe_failure(error)


class BeaconSender:
    """Sends beacons from an event loop thread, retried by the plugins' one retry policy.

    Retried: 5xx, 429 (its ``Retry-After`` honoured), timeouts, refused and dropped connections. Any other status
    fails the run at once. The first beacon that fails for good stops the sender: the delivered-through mark stops
    below it (no STATE after it is ever written) and the SDK's thread raises its :class:`DeliveryError` at its next
    submit or wait.
    """

    def __init__(
        self,
        settings: KissmetricsSettings,
        redact: Callable[[str], str],
        logger: logging.Logger,
        user_agent: str = "target-kissmetrics",
    ) -> None:
        self.settings = settings
        self.user_agent = user_agent
        self.policy = RetryPolicy.of(settings)
        self.redact = redact
        self.logger = logger
        self.debug = logger.isEnabledFor(logging.DEBUG)
        tracking_url = settings.tracking_url.rstrip("/")
        api_key = Beacon.encode_key(settings.api_key)
        self.url_prefixes = {kind: f"{tracking_url}/{kind}?_k={api_key}&" for kind in KINDS.values()}
        self.shown_prefixes = {kind: f"{tracking_url}/{kind}?_k={REDACTED}&" for kind in KINDS.values()}
        self.concurrency = settings.max_concurrency
        # Beacons queued beyond those in flight: enough to keep every worker busy while the SDK's thread waits for
        # the GIL, few enough that the last beacons before a STATE are answered soon after it.
        queued = max(MIN_QUEUED_BEACONS, self.concurrency // 4)
        self.window = self.concurrency + queued
        self.refill_at = self.concurrency + queued // 2
        self.limiter = RateLimiter(settings.max_requests_per_second) if settings.max_requests_per_second else None
        # Written by the loop's thread only: what the run summary reports.
        self.sent: Counter[str] = Counter()
        self.retried = 0
        self.delivered = 0
        self.delivered_through = 0  # every beacon numbered below it got a 200
        self._delivered_ahead: set[int] = set()  # delivered beacons numbered above the mark
        self.failure: BaseException | None = None
        # Written by the SDK's thread only.
        self.submitted = 0
        self.queue: deque[tuple[int, Beacon]] = deque()
        # (mark, callback) in mark order: each runs once every beacon numbered below its mark was delivered.
        self._on_delivered: deque[tuple[int, Callable[[], None]]] = deque()
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        self._wake_scheduled = False
        self._waiter: tuple[Callable[[], bool], threading.Event] | None = None
        self._callback_lock = threading.Lock()
        self._closing = False
        self._closed = False
        raise_open_file_limit(self.concurrency + SPARE_FILE_DESCRIPTORS, logger)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="beacon-delivery", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result()
        atexit.register(self.close)  # a failed run exits through sys.exit: still close the session cleanly

    # --- the SDK's thread --------------------------------------------------------------------
    def submit(self, beacon: Beacon) -> None:
        """Queue a beacon; blocks while the window is full and raises the first delivery failure."""
        if self.failure is not None:
            raise self.failure
        if self.submitted - self.delivered >= self.window:
            self.wait_until(lambda: self.submitted - self.delivered <= self.refill_at)
        self.queue.append((self.submitted, beacon))
        self.submitted += 1
        if self._idle_workers and not self._wake_scheduled:
            self._wake_scheduled = True
            self.loop.call_soon_threadsafe(self._wake_idle_workers)

    def when_delivered(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (on the loop's thread, or at once on this one) when every beacon submitted so far got
        a 200; never if one of them fails for good.
        """
        mark = self.submitted
        self._on_delivered.append((mark, callback))
        if self.delivered_through >= mark:  # the loop may have passed the mark before it saw the callback
            self._run_delivered_callbacks()

    def wait_until_all_delivered(self) -> None:
        """Block until every beacon submitted so far got a 200; raises the first failure."""
        mark = self.submitted
        self.wait_until(lambda: self.delivered_through >= mark)
        self._run_delivered_callbacks()  # those due are run (or being run by the loop: the lock waits for it)
        if self.failure is not None:
            raise self.failure

    def wait_until(self, condition: Callable[[], bool]) -> None:
        """Block until ``condition()`` holds (checked by the loop after each delivery) or a beacon failed."""
        while self.failure is None and not condition():
            reached = threading.Event()
            self._waiter = (condition, reached)
            if self.failure is None and not condition():  # the loop may have moved on before it saw the waiter
                reached.wait(LIVENESS_CHECK_SECONDS)
            self._waiter = None
            if not self._thread.is_alive():
                raise DeliveryError("the beacon delivery thread stopped unexpectedly; re-run (no state was emitted)")
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        """Let the workers finish, close the connections and stop the loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shut_down(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()

    # --- the loop's thread -------------------------------------------------------------------
    async def _open(self) -> None:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.settings.request_timeout, sock_read=self.settings.request_timeout
        )
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers={"User-Agent": self.user_agent},
            trace_configs=[self._connection_tracing()] if self.debug else None,
        )
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    def _connection_tracing(self) -> aiohttp.TraceConfig:
        """DEBUG lines for each new connection (the keep-alive pool at work)."""
        tracing = aiohttp.TraceConfig()

        async def opening(session: aiohttp.ClientSession, context: t.Any, params: t.Any) -> None:
            self.logger.debug("Opening a new connection to the tracking host")

        tracing.on_connection_create_start.append(opening)
        return tracing

    async def _work(self) -> None:
        queue = self.queue
        while True:
            try:
                number, beacon = queue.popleft()
            except IndexError:
                if self._closing:
                    return
                await self._park()
                continue
            if self.failure is not None:
                continue  # the run fails: what the SDK's thread queued meanwhile is not sent
            try:
                await self._deliver(beacon)
            except Exception as error:  # a DeliveryError, or a bug that must not pass silently
                self._fail(error)
                continue
            self.delivered += 1
            if number == self.delivered_through:
                self._advance_mark(number + 1)
            else:
                self._delivered_ahead.add(number)
            waiter = self._waiter
            if waiter is not None and waiter[0]():
                waiter[1].set()

    def _advance_mark(self, mark: int) -> None:
        ahead = self._delivered_ahead
        while mark in ahead:
            ahead.discard(mark)
            mark += 1
        self.delivered_through = mark
        if self._on_delivered and self._on_delivered[0][0] <= mark:
            self._run_delivered_callbacks()

    def _run_delivered_callbacks(self) -> None:
        """Run the callbacks whose mark was passed, in order (from either thread: a lock keeps each to one run)."""
        with self._callback_lock:
            pending = self._on_delivered
            while pending and pending[0][0] <= self.delivered_through:
                try:
                    pending.popleft()[1]()
                except Exception as error:  # e.g. stdout closed under a STATE write: the run must fail
                    self._fail(error)
                    return

    async def _park(self) -> None:
        """Wait for work; a submit wakes parked workers."""
        parked = self.loop.create_future()
        self._idle_workers.append(parked)
        if self.queue:  # a beacon arrived before this worker was seen parked
            self._wake_idle_workers()
        await parked

    def _wake_idle_workers(self) -> None:
        self._wake_scheduled = False
        wanted = len(self._idle_workers) if self._closing else len(self.queue)
        while wanted > 0 and self._idle_workers:
            parked = self._idle_workers.popleft()
            if not parked.done():
                parked.set_result(None)
                wanted -= 1

    async def _deliver(self, beacon: Beacon) -> None:
        """Send one beacon with the policy's retries, or raise :class:`DeliveryError`."""
        encoded_params = beacon.encoded_params
        url = yarl.URL(self.url_prefixes[beacon.kind] + encoded_params, encoded=True)
        problem: str | None = "not sent"
        for retry in range(self.policy.max_tries):
            if self.limiter is not None:
                wait = self.limiter.reserve()
                if wait > 0:
                    await asyncio.sleep(wait)
            problem, headers = await self._attempt(url, beacon)
            if self.debug:
                shown = self.shown_prefixes[beacon.kind] + encoded_params
                self.logger.debug("GET %s -> %s", shown, problem or "HTTP 200")
            if problem is None:
                self.sent[beacon.kind] += 1
                return
            if retry == self.policy.max_retries:
                break
            self.retried += 1
            await asyncio.sleep(self.policy.wait_seconds(retry, headers))
        raise DeliveryError(
            f"the {describe_beacon(beacon)} was not delivered after {self.policy.max_tries} attempts "
            f"(last: {problem}); check tracking_url and the network, then re-run: no state was emitted for it, "
            "so the next run re-sends it"
        )

    async def _attempt(self, url: yarl.URL, beacon: Beacon) -> tuple[str | None, Mapping[str, str] | None]:
        """One request: ``(None, None)`` on 200, else ``(problem, the answer's headers if any)``."""
        try:
            async with self.session.get(url, allow_redirects=False) as response:
                await response.read()
                status, headers, content_type = response.status, response.headers, response.content_type
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return self.redact(describe_delivery_failure(error)), None
        if status == 200:
            if not content_type.startswith(TRACKING_ANSWER_TYPE):
                raise DeliveryError(self.not_a_tracking_answer(content_type, beacon))
            return None, None
        if not is_retried_status(status):
            raise DeliveryError(self.refusal(status, url, beacon))
        return f"HTTP {status}", headers

    def not_a_tracking_answer(self, content_type: str, beacon: Beacon) -> str:
        """The one line for a 200 that is not Kissmetrics' GIF: the beacon went somewhere else."""
        shown_url = self.redact(f"{self.settings.tracking_url.rstrip('/')}/{beacon.kind}")
        return (
            f"the tracking server answered HTTP 200 with {content_type or 'no Content-Type'} to {shown_url}, not the "
            "GIF image Kissmetrics answers every beacon with: check tracking_url (it reaches something else, e.g. a "
            "proxy or login page); no state was emitted for it"
        )

    def refusal(self, status: int, url: yarl.URL, beacon: Beacon) -> str:
        """The one line for an answer that is not retried: what it means for the settings, which beacon it was."""
        shown_url = self.redact(f"{self.settings.tracking_url.rstrip('/')}/{beacon.kind}")
        if status == 404:
            return (
                f"the tracking server answered HTTP 404 (no such path) to {shown_url}: check tracking_url, which must "
                f"be the tracking host only (default {DEFAULT_TRACKING_URL}), without a path; no state was emitted"
            )
        size = len(str(url).encode())
        too_large = status in (400, 413, 414)
        hint = (
            f" and the record's size (the target sends URLs of up to {MAX_BEACON_URL_BYTES} bytes)" if too_large else ""
        )
        return (
            f"the tracking server answered HTTP {status}, which is not retried, to the {describe_beacon(beacon)} "
            f"(a URL of {size} bytes to {shown_url}); check tracking_url{hint}; no state was emitted for it"
        )

    def _fail(self, error: BaseException) -> None:
        """Stop sending: remember the first failure, drop the queue and wake the SDK's thread."""
        if self.failure is None:
            self.failure = error
        self.queue.clear()
        waiter = self._waiter
        if waiter is not None:
            waiter[1].set()

    async def _shut_down(self) -> None:
        self._closing = True
        if self.failure is not None:
            for worker in self._workers:
                worker.cancel()
        self._wake_idle_workers()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self.session.close()


def raise_open_file_limit(needed: int, logger: logging.Logger) -> None:
    """Raise the soft limit on open files to ``needed`` if the hard limit allows (one socket per beacon in flight)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        logger.warning(
            "max_concurrency %d needs about %d open files but the limit is %d: lower max_concurrency or raise "
            "the limit (ulimit -n)",
            needed - SPARE_FILE_DESCRIPTORS,
            needed,
            target,
        )
