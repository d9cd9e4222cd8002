"""The one base stream of the Kahuna Logs API: auth, paging by day, cursor restarts, errors, retries.

How a stream reads (one category per request; ``user_merge`` can never share one):

- every UTC day from the bookmark (or ``start_date``) to ``end_date`` is requested from 00:00 with
  ``timestamp``, then ``cursor`` is followed while ``more_records``;
- a worker buffers one day of its category (``DayRecords``: in memory up to ``day_buffer_mb``, then in a
  temporary file, so memory stays flat however big a day is); up to ``max_concurrency`` days are read
  at once and emitted in day order (``connector_common.concurrency.ordered_map``);
- an expired cursor (400 naming the cursor) restarts the day from 00:00 and the records already
  buffered are skipped by their position, so nothing is lost or repeated;
- a record's key is ``log_date`` + ``log_position`` (its 0-based ordinal among that category's records
  of that day). Records only ever get appended to a day, so positions stay stable when today's partial
  day is read again, genuine repeats keep distinct keys, and a re-sent record keeps its key;
- the bookmark is ``day`` + ``day_records_emitted``: the next run re-reads that day and skips what was
  emitted. Days before it are complete.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from http import HTTPStatus
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext

from connector_common.concurrency import ordered_map
from connector_common.rest_retry import retry_transient_errors
from connector_common.retry import retry_after_seconds

DEFAULT_API_URL = "https://tap-nexus.appspot.com/api/kahunalogs"
CATEGORIES = ("inapp", "push", "email", "user_merge")
BOOKMARK_DAY = "day"
BOOKMARK_DAY_RECORDS = "day_records_emitted"
MAX_RESTARTS_WITHOUT_PROGRESS = 10
MAX_BACKOFF_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 0.5
DEFAULT_DAY_BUFFER_MB = 8


class DayRecords:
    """One day's raw records of one category, in server order: in memory up to a limit, then on disk.

    Pages are pickled into a ``SpooledTemporaryFile``; past ``memory_limit_bytes`` it moves to a
    temporary file, which is deleted once the records have been read back (or on error).
    """

    def __init__(self, memory_limit_bytes: int) -> None:
        self._limit = max(memory_limit_bytes, 1)
        self._file = tempfile.SpooledTemporaryFile(max_size=self._limit)  # noqa: SIM115 (closed in __iter__)
        self.count = 0

    def extend(self, records: list[dict]) -> None:
        """Append a page's records."""
        if records:
            pickle.dump(records, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(records)

    @property
    def on_disk(self) -> bool:
        """Whether the day outgrew memory and moved to a temporary file (it rolls over past the limit)."""
        return self._file.tell() > self._limit

    def __iter__(self) -> Iterator[dict]:
        """Every record once, in order; the buffer is released afterwards."""
        try:
            self._file.seek(0)
            while True:
                try:
                    page = pickle.load(self._file)  # noqa: S301 (our own temporary file)
                except EOFError:
                    return
                yield from page
        finally:
            self.close()

    def close(self) -> None:
        """Release the memory or delete the temporary file (safe to call twice)."""
        self._file.close()


class KahunaAPIError(FatalAPIError):
    """A fatal answer of the Kahuna Logs API, with a one-line cause that says what to fix."""


class CursorExpiredError(Exception):
    """The server no longer knows a cursor: the day must be read again from 00:00."""


#: Failures the tap reports itself in one line (anything else is a bug and keeps its traceback).
REPORTED_ERRORS: tuple[type[BaseException], ...] = (FatalAPIError, RetriableAPIError, requests.RequestException)
_SDK_GENERIC_SYNC_ERROR = "An unhandled error occurred while syncing"


class _HideGenericSyncError(logging.Filter):
    """Drops the SDK's generic sync-error line when the tap reports the cause itself."""

    def __init__(self, stream: KahunaLogsStream) -> None:
        super().__init__()
        self.stream = stream

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.stream.cause_reported and str(record.msg).startswith(_SDK_GENERIC_SYNC_ERROR))


class KahunaLogsStream(RESTStream):
    """Base stream: one Kahuna log category, read day by day."""

    category: str = ""
    http_method = "POST"
    path = ""
    replication_key = "timestamp"
    is_sorted = True
    # Resuming relies on the day/position bookmark; a record's timestamp out of order must not abort the run.
    check_sorted = False
    primary_keys = ("log_date", "log_position")
    # to_record() already builds schema-typed JSON values; the SDK's recursive conform costs a third of the CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Fields that hold lists of ``type:value`` credentials; each also gets a ``<name>_by_type`` object.
    credential_fields: tuple[str, ...] = ()
    #: Known scalar fields by JSON type; anything else goes to ``extra``.
    string_fields: tuple[str, ...] = ()
    boolean_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cause_reported = False
        self.logger.addFilter(_HideGenericSyncError(self))

    # --- request building -------------------------------------------------------
    @property
    def url_base(self) -> str:
        """The Logs API endpoint (``api_url``)."""
        return str(self.config.get("api_url") or DEFAULT_API_URL)

    @property
    def timeout(self) -> int:
        """Seconds to wait for one answer (``request_timeout``)."""
        return int(self.config.get("request_timeout", 60))

    @cached_property
    def authenticator(self) -> requests.auth.HTTPBasicAuth:  # type: ignore[override]
        """HTTP Basic: username = Secret Key, password = API Key."""
        return requests.auth.HTTPBasicAuth(self.config["secret_key"], self.config["api_key"])

    @property
    def http_headers(self) -> dict:
        """JSON in, JSON out."""
        return {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": self.user_agent}

    def get_url_params(self, context: dict | None, next_page_token: str | None) -> dict[str, Any]:
        """``env=p`` (production) or ``env=s`` (sandbox)."""
        return {"env": self.config.get("environment", "p")}

    def prepare_request_payload(self, context: dict | None, next_page_token: str | None) -> dict[str, Any]:
        """The day's first page asks from 00:00 with ``timestamp``; later pages send the ``cursor``."""
        assert context is not None
        payload: dict[str, Any] = {
            "number_of_records": int(self.config.get("page_size", 1000)),
            "categories_to_return": [context["category"]],
        }
        if next_page_token:
            payload["cursor"] = next_page_token
        else:
            payload["timestamp"] = context["day"].strftime("%m/%d/%Y 00:00")
        return payload

    def get_new_paginator(self) -> None:
        """Paging is by day and cursor, done in :meth:`read_day` (the SDK paginator does not run in threads)."""
        return None

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """The records of this stream's category in one page (checked by :meth:`checked_page`)."""
        yield from response.json()[self.category]

    # --- errors and retries -------------------------------------------------------
    def validate_response(self, response: requests.Response) -> None:
        """5xx and 429 are retried; 400 (unless an expired cursor), 401 and 409 stop the run with their cause."""
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"Kahuna Logs API answered {status} {response.reason}", response)
        if status < HTTPStatus.BAD_REQUEST:
            return
        error, detail = _error_fields(response)
        if status == HTTPStatus.BAD_REQUEST and _names_sent_cursor(response, detail):
            raise CursorExpiredError(detail)
        if status == HTTPStatus.UNAUTHORIZED:
            raise KahunaAPIError("Kahuna Logs API answered 401 (bad credentials): check secret_key/api_key.")
        if status == HTTPStatus.CONFLICT:
            raise KahunaAPIError(
                "Kahuna Logs API answered 409: these credentials are not enabled for the Logs API "
                "(ask Kahuna to enable it for this namespace or use other secret_key/api_key)."
            )
        raise KahunaAPIError(f"Kahuna Logs API answered {status}: {error or response.reason}: {detail or '-'}")

    def request_decorator(self, func: Callable) -> Callable:
        """Retry transient failures; each retry is one warning line, giving up is reported once by the tap."""
        return retry_transient_errors(self, func)

    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """Wait what ``Retry-After`` asks for, else 0.5 s, 1 s, 2 s, ... capped at 60 s."""
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            attempt += 1
            response = getattr(exception, "response", None)
            hinted = retry_after_seconds(response.headers) if response is not None else None
            wait = hinted if hinted is not None else min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            exception = yield wait

    def backoff_max_tries(self) -> int:
        """Attempts per request before the run stops."""
        return int(self.config.get("max_retries", 6))

    def backoff_jitter(self, value: float) -> float:
        """Up to 10 % more, so parallel day workers do not retry in lockstep."""
        return value * (1 + random.random() / 10)

    def backoff_handler(self, details: dict) -> None:  # type: ignore[override]
        """One warning line per retry: what failed and how long we wait (never the request itself)."""
        exception = details.get("exception")
        self.logger.warning(
            "Retrying %s in %.1f s after attempt %d: %s",
            self.name,
            details.get("wait", 0.0),
            details.get("tries", 0),
            _describe(exception),
        )

    # --- reading a day -------------------------------------------------------------
    def _prepare_session(self, workers: int) -> None:
        """One shared session, its pool large enough for every day worker, built before the workers start."""
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(10, workers * 2))
        self.requests_session.mount("https://", adapter)
        self.requests_session.mount("http://", adapter)
        _ = self._send_with_retries

    def _send(self, day: date, cursor: str | None) -> dict[str, Any]:
        context = {"day": day, "category": self.category}
        http_request = self.get_http_request(page=PageContext(stream_context=context, next_page_token=cursor))
        prepared = self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
            json=http_request.data,
        )
        response = self._send_with_retries(prepared, context)
        return self.checked_page(response, day)

    def checked_page(self, response: requests.Response, day: date) -> dict[str, Any]:
        """The page of a 200 answer, or a fatal one-line error naming the category and the day.

        A page must be a JSON object with ``more_records`` (a boolean), an array of record objects
        for this stream's category, and a non-empty ``cursor`` string when ``more_records`` is true.
        """
        try:
            page = response.json()
        except ValueError as exc:
            page, problem = None, _not_json(response, exc)
        else:
            problem = _page_problem(page, self.category)
        if problem:
            raise KahunaAPIError(
                f"Kahuna Logs API sent a bad answer for {self.category} logs of UTC day {day.isoformat()}: "
                f"{problem}; this run emitted no record or state of that day, re-run to read it again"
            )
        return page

    @cached_property
    def _send_with_retries(self) -> Callable[[requests.PreparedRequest, dict], requests.Response]:
        return self.request_decorator(self._request)

    def read_day(self, day: date) -> DayRecords:
        """All raw records of this category for one UTC day, in server order (runs in a worker thread)."""
        limit_mb = self.config.get("day_buffer_mb", DEFAULT_DAY_BUFFER_MB)
        records = DayRecords(int(limit_mb * 1024 * 1024))
        with self._day_buffers_lock:
            self._day_buffers.append(records)
        restarts_without_progress = 0
        while True:
            read_before = records.count
            try:
                self._read_day_into(day, records)
            except CursorExpiredError:
                restarts_without_progress = 0 if records.count > read_before else restarts_without_progress + 1
                if restarts_without_progress > MAX_RESTARTS_WITHOUT_PROGRESS:
                    raise KahunaAPIError(
                        f"Kahuna cursors for {self.category} on {day} keep expiring before any new record "
                        f"arrives; try a larger page_size or a lower max_concurrency."
                    ) from None
                self.logger.warning(
                    "Cursor expired while reading %s logs of %s after %d records; restarting the day from 00:00 "
                    "and skipping those records",
                    self.category,
                    day,
                    records.count,
                )
                continue
            if records.on_disk:
                self.logger.info(
                    "%s logs of %s: %d records, more than day_buffer_mb (%s MB); buffered in a temporary file",
                    self.category,
                    day,
                    records.count,
                    limit_mb,
                )
            return records

    def _read_day_into(self, day: date, records: DayRecords) -> None:
        """Page through ``day`` from 00:00; append only positions not in ``records`` yet."""
        position = 0
        cursor: str | None = None
        while True:
            page = self._send(day, cursor)
            page_records = page[self.category]
            already = records.count - position
            records.extend(page_records[already:] if already > 0 else page_records)
            position += len(page_records)
            if not page["more_records"]:
                return
            cursor = page["cursor"]

    # --- the sync --------------------------------------------------------------------
    def _days_to_read(self) -> tuple[list[date], date | None, int]:
        """The days to read, the bookmark day and how many of its records were already emitted."""
        state = self.stream_state
        bookmark_day = date.fromisoformat(state[BOOKMARK_DAY]) if state.get(BOOKMARK_DAY) else None
        emitted = int(state.get(BOOKMARK_DAY_RECORDS, 0)) if bookmark_day else 0
        first = bookmark_day or _as_date(self.config["start_date"])
        last = _as_date(self.config["end_date"]) if self.config.get("end_date") else _utc_today()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return days, bookmark_day, emitted

    def get_records(self, context: dict | None) -> Iterator[dict]:
        """Every record from the bookmark on, in day order, updating the bookmark as records leave."""
        try:
            yield from self._records_by_day()
        except REPORTED_ERRORS:
            self.cause_reported = True
            raise

    def _records_by_day(self) -> Iterator[dict]:
        days, bookmark_day, emitted = self._days_to_read()
        workers = max(int(self.config.get("max_concurrency", 4)), 1)
        self._prepare_session(workers)
        self._day_buffers: list[DayRecords] = []
        self._day_buffers_lock = threading.Lock()
        buffered_days = ordered_map(self.read_day, days, workers)
        try:
            yield from self._emit_days(zip(days, buffered_days, strict=True), bookmark_day, emitted)
        finally:
            buffered_days.close()  # waits for the workers still reading
            for buffer in self._day_buffers:
                buffer.close()

    def _emit_days(
        self, buffered_days: Iterator[tuple[date, DayRecords]], bookmark_day: date | None, emitted: int
    ) -> Iterator[dict]:
        """Each day's records in order, the bookmark moving with them, a STATE at each day's end."""
        for day, raw_records in buffered_days:
            skip = emitted if day == bookmark_day else 0
            if skip > raw_records.count:
                self.logger.warning(
                    "%s: the bookmark says %d records of %s were emitted but the API now has %d; emitting none",
                    self.name,
                    skip,
                    day,
                    raw_records.count,
                )
            total = raw_records.count
            for position, raw in enumerate(raw_records):
                if position >= skip:
                    self._set_bookmark(day, position + 1)
                    yield self.to_record(raw, day, position)
            self._set_bookmark(day, max(skip, total))
            self._flush_state()

    def _set_bookmark(self, day: date, records_emitted: int) -> None:
        state = self.stream_state
        state[BOOKMARK_DAY] = day.isoformat()
        state[BOOKMARK_DAY_RECORDS] = records_emitted

    def _flush_state(self) -> None:
        """Emit STATE at each day's end so a killed run resumes from there."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    # --- records ------------------------------------------------------------------------
    def to_record(self, raw: dict, day: date, position: int) -> dict:
        """A Singer record: typed known fields, parsed credentials, the key, and unknown fields in ``extra``."""
        record: dict[str, Any] = {"log_date": day.isoformat(), "log_position": position, "timestamp": None}
        extra: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "timestamp":
                record["timestamp"] = _iso_timestamp(value)
                if record["timestamp"] is None and value is not None:
                    extra["timestamp"] = value
            elif name in self.credential_fields:
                credentials = _credential_list(value)
                record[name] = credentials
                record[f"{name}_by_type"] = _credentials_by_type(credentials)
            elif name in self.string_fields:
                record[name] = _as_string(value)
            elif name in self.boolean_fields:
                record[name] = _as_boolean(value)
            else:
                extra[name] = value
        record["extra"] = extra
        return record


def _as_date(value: str | date) -> date:
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date() if "T" in value else date.fromisoformat(value)


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _iso_timestamp(value: Any) -> str | None:
    """``2026-11-18 15:29:59.123456`` (UTC) -> ``2026-11-18T15:29:59.123456+00:00``."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _credential_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def _credentials_by_type(credentials: list[str] | None) -> dict[str, list[str]] | None:
    """``["email:a:b@x.com", "12345"]`` -> ``{"email": ["a:b@x.com"]}`` (split on the first ``:``)."""
    if credentials is None:
        return None
    by_type: dict[str, list[str]] = {}
    for credential in credentials:
        kind, separator, value = credential.partition(":")
        if separator and kind:
            by_type.setdefault(kind, []).append(value)
    return by_type


def _as_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)


def _as_boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "t")
    return bool(value)


def _page_problem(page: Any, category: str) -> str | None:
    """What is wrong with a parsed 200 page of ``category``, in a few words, or None when it is usable."""
    if not isinstance(page, dict):
        return f"the body is {_json_type(page)}, not a JSON object"
    if category not in page:
        return f'the page has no "{category}" array (keys: {", ".join(sorted(page)) or "none"})'
    records = page[category]
    if not isinstance(records, list):
        return f'"{category}" is {_json_type(records)}, not an array'
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            return f'"{category}" item {index} is {_json_type(record)}, not an object'
    more_records = page.get("more_records")
    if not isinstance(more_records, bool):
        return f'"more_records" is {_json_type(more_records) if "more_records" in page else "missing"}, not a boolean'
    cursor = page.get("cursor")
    if more_records and not (isinstance(cursor, str) and cursor.strip()):
        return f'"more_records" is true but "cursor" is {_json_type(cursor) if "cursor" in page else "missing"}'
    return None


def _not_json(response: requests.Response, exc: ValueError) -> str:
    """Why a body is not JSON: an HTML page, a truncated body or malformed JSON."""
    content_type = response.headers.get("Content-Type") or "none"
    size = len(response.content)
    if response.content.lstrip()[:1] == b"<":
        return f"the body is an HTML page, not JSON (Content-Type {content_type}, {size} bytes)"
    reason = getattr(exc, "msg", "") or type(exc).__name__
    position = getattr(exc, "pos", None)
    # The parser stops at the start of an unterminated string, so a body cut inside one is truncated too.
    if reason.startswith("Unterminated string") or (
        isinstance(position, int) and position >= len(response.text.rstrip())
    ):
        return f"the body is truncated JSON: it stops after {size} bytes ({reason}: char {position})"
    where = f" at char {position}" if isinstance(position, int) else ""
    return f"the body is malformed JSON ({reason}{where}, {size} bytes, Content-Type {content_type})"


def _json_type(value: Any) -> str:
    """``value``'s JSON type with an article: "a string", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40])}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "an array" if isinstance(value, list) else "an object"


def _error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("error") or ""), str(body.get("error_detail") or "")


def _names_sent_cursor(response: requests.Response, detail: str) -> bool:
    """True when the request carried a cursor and the 400 is about it."""
    try:
        sent = json.loads(response.request.body or b"{}")
    except (TypeError, ValueError):
        return False
    cursor = sent.get("cursor") if isinstance(sent, dict) else None
    return bool(cursor) and (cursor in detail or "cursor" in detail.lower())


def _describe(exception: BaseException | None) -> str:
    """A short, secret-free description of a failed attempt."""
    if exception is None:
        return "unknown error"
    if isinstance(exception, RetriableAPIError):
        return str(exception)
    text = str(exception).splitlines()[0][:300] if str(exception) else ""
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__
