"""Kahuna Logs API: ``POST /api/kahunalogs?env=p|s`` with day-bounded cursor paging and expiring cursors.

The service route (fault knobs apply):

- ``POST /api/kahunalogs?env=p`` (production) or ``env=s`` (sandbox, a smaller data set of another seed).
  HTTP Basic auth: username = ``--secret-key``, password = ``--api-key``; anything else -> 401, the
  right secret with ``--not-enabled-api-key`` -> 409. Auth is checked before the query and the body.
- JSON body: ``timestamp`` (UTC; ``m/dd/yyyy h:mm`` with 1-2 digit month, day and hour: an hour 0-23
  read on the 24-hour clock, so ``1:05`` is 01:05 and ``13:05`` is 13:05; or ``m/dd/yyyy h:mm AM|PM``,
  any case, hour 1-12) or ``cursor`` (both -> 400); ``number_of_records`` (integer 1..1000, required
  with a cursor too); ``categories_to_return`` (non-empty list of ``inapp``, ``push``, ``email``,
  ``user_merge``; ``user_merge`` alone; duplicates count once; with a cursor it must name the
  cursor's categories). Every broken rule -> 400 with its own ``error_detail``.
- A timestamp selects the records of its UTC day from that minute to ``23:59:59.999999``, only those
  at or before the emulator's clock (today grows as the clock advances). The requested categories
  are merged by timestamp (ties: ``inapp``, ``push``, ``email`` order, then day order) and cut into
  pages, split into one array per requested category.
- The two readings of ``number_of_records`` (``--records-cap``, or ``/_emulator/kahuna/paging``):
  ``page`` (default): it is the page size, and the cursor chain runs until the day is done.
  ``chain``: it caps the whole cursor chain that a timestamp request starts; the server pages by
  ``--chain-page-size`` (default 250; smaller pages when less of the cap is left), and the chain ends
  (``more_records: false``, no cursor) once it sent ``number_of_records`` records, even when the day
  holds more: the rest is read by a new timestamp request. Cursor requests keep the chain's cap (their
  own ``number_of_records`` is checked, not used).
- 200 body: ``{"more_records": bool, "cursor": str (only when more_records), "<category>": [...]}``.
  A cursor is an opaque token of a server-side position; following it returns the next page.
- Errors: ``{"success": false, "error": str, "error_code": int, "error_detail": str}`` (400, 401,
  405, 409). Injected faults come from the shared fault layer (its own small JSON body).

Cursor expiry (all off by default; CLI flags or the control route):

- ``--cursor-expire-after-uses N``: each issued cursor answers N times (e.g. N-1 retries), then expires;
- ``--cursor-ttl-seconds T``: a cursor expires T seconds after it was issued, by real monotonic time
  (not the emulator's clock);
- ``expire_at_uses: [k, ...]`` (control route only): the k-th cursor request since the knob was set
  or the last reset (counted over every cursor) finds its cursor expired: deterministic expiry "at page k";
- ``--cursor-expire-rate R``: each cursor use expires the cursor with probability R (seeded by
  ``--cursor-seed``; reseeded on every control update and reset).

An expired cursor -> 400 whose ``error_detail`` is ``cursor <token> has expired; restart from the
timestamp``. A token the server never issued -> 400 ``cursor <token> is unknown; ...``.

Control routes (no faults):

- ``GET /_emulator/kahuna/cursors`` -> the expiry knobs and counters (``outstanding``, ``issued``,
  ``expired_answers``).
- ``POST /_emulator/kahuna/cursors`` with any of ``{"expire_after_uses": int|null, "ttl_seconds":
  number|null, "expire_rate": number|null, "expire_at_uses": [int]|null, "seed": int, "expire_all": true}`` (null = off;
  ``expire_all`` expires every outstanding cursor now). Returns the same as GET.
- ``GET /_emulator/kahuna/paging`` -> ``{"records_cap": "page"|"chain", "chain_page_size": int}``;
  ``POST`` with either field changes it for chains started afterwards (a cursor keeps its chain's cap).
- ``POST /_emulator/reset`` also forgets every cursor (the paging knobs stay).

Readings the vendor document leaves open besides ``number_of_records`` (all off by default, switchable at run
time; ``/_emulator/reset`` keeps them): ``GET /_emulator/kahuna/readings`` -> the knobs; ``POST`` with any of them:

- ``last_page_more_records`` (``false`` | ``absent``): a page that ends its chain says ``"more_records": false``,
  or leaves the field out (the seed: ``more_records`` and ``cursor`` come "in addition" when more remain);
- ``cursor_error`` (``names_cursor`` | ``generic`` | ``not_found``): an expired or unknown cursor is a 400 naming
  the cursor, a 400 ``Invalid request parameters`` that says nothing of it, or a 404 ("cursor identifiers ... can
  expire at any time", and the seed names no answer for it);
- ``restart_from`` (``minute`` | ``day_start``): a timestamp request selects from its minute, or the server reads
  only its date and answers from 00:00 ("the server returns records for the date specified");
- ``day_end`` (``ends`` | ``empty_pages`` | ``repeat_page`` | ``repeat_last``): a chain that reached the last
  record ends, or never ends: empty pages, the same last page again, or a page of only the last record, each
  with a new cursor;
- ``page_overlap`` (bool): each cursor page starts with the previous page's last record (pages of 2 or more);
- ``order`` (``timestamp`` | ``stored`` | ``one_late``): records come in timestamp order, or in the order they
  were stored, which is not: under ``stored`` every seventh record of a day (the 4th, 11th, ...) arrives
  ``LATE_MINUTES`` (45) minutes after its timestamp; under ``one_late`` only the 4th does, ``ONE_LATE_HOURS`` (6)
  hours late (so the records read before it look sorted). A day's records are stored by arrival (so a day only
  ever grows at its end, and a late record is visible once it arrived); a timestamp request selects the stored
  records at or after it, in that order.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import random
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from heapq import merge
from typing import Any

from aiohttp import web

from emulators.core import AnswerTarget, Clock, Emulator, Faults, RuntimeKnobs, json_response
from emulators.kahuna_data import (
    CATEGORIES,
    LONG_RUN,
    PRODUCTION,
    SANDBOX,
    KahunaDataset,
    dataset_from_options,
    first_index_from,
    parse_minute,
    visible_count,
)

API_PATH = "/api/kahunalogs"
MAX_RECORDS_PER_PAGE = 1000
MAX_OUTSTANDING_CURSORS = 100_000
_REQUEST_TIMESTAMP = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?:\s*([AaPp][Mm]))?\s*")
RECORDS_CAPS = ("page", "chain")
LAST_PAGE_MORE_RECORDS = ("false", "absent")
CURSOR_ERRORS = ("names_cursor", "generic", "not_found")
RESTARTS_FROM = ("minute", "day_start")
DAY_ENDS = ("ends", "empty_pages", "repeat_page", "repeat_last")
ORDERS = ("timestamp", "stored", "one_late")
LATE_MINUTES = 45  # ``order: stored``: how late every seventh record of a day arrives
ONE_LATE_HOURS = 6  # ``order: one_late``: how late the one late record of a day (its 4th) arrives
GENERIC_BAD_REQUEST = "Invalid request parameters"
DEFAULT_CHAIN_PAGE_SIZE = 250
_CURSOR_TOKEN = re.compile(r"kc\.([0-9]+)\.([0-9a-f]+)")
ERROR_NAMES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Kahuna knobs: data size, credentials and cursor expiry."""
    data = parser.add_argument_group("kahuna data")
    data.add_argument("--days", type=int, default=30, help="UTC days served, ending today (default 30)")
    data.add_argument(
        "--logs-per-day", type=int, default=300, help="records per day and category, roughly (default 300)"
    )
    data.add_argument(
        "--day-size-jitter",
        type=float,
        default=0.4,
        help="a day holds logs-per-day times 1-J..1+J records (default 0.4; 0: exactly logs-per-day, plus one repeat)",
    )
    data.add_argument(
        "--same-timestamp-run",
        type=int,
        default=LONG_RUN,
        help="length of the longest run of records sharing one exact timestamp (default %(default)s)",
    )
    data.add_argument("--burst-minute", type=_minute, default=None, help="HH:MM (UTC) of a burst of extra records")
    data.add_argument(
        "--burst-records", type=int, default=0, help="extra records per category and day in the burst minute"
    )
    data.add_argument(
        "--burst-day", type=date.fromisoformat, default=None, help="YYYY-MM-DD: the burst on that day only"
    )
    paging = parser.add_argument_group("kahuna paging")
    paging.add_argument(
        "--records-cap",
        choices=RECORDS_CAPS,
        default="page",
        help="number_of_records is the page size (page, default) or caps the whole cursor chain (chain)",
    )
    paging.add_argument(
        "--chain-page-size",
        type=int,
        default=DEFAULT_CHAIN_PAGE_SIZE,
        help="the server's own page size with --records-cap chain (default %(default)s)",
    )
    auth = parser.add_argument_group("kahuna credentials")
    auth.add_argument("--secret-key", default="kahuna-demo-secret", help="Basic auth username (default %(default)s)")
    auth.add_argument("--api-key", default="kahuna-demo-key", help="Basic auth password (default %(default)s)")
    auth.add_argument(
        "--not-enabled-api-key",
        default="kahuna-not-enabled",
        help="an API key that authenticates but is not enabled for the Logs API: 409 (default %(default)s)",
    )
    cursors = parser.add_argument_group("kahuna cursor expiry")
    cursors.add_argument(
        "--cursor-expire-after-uses", type=int, default=None, help="uses per cursor (default: no limit)"
    )
    cursors.add_argument("--cursor-ttl-seconds", type=float, default=None, help="cursor lifetime (default: no limit)")
    cursors.add_argument("--cursor-expire-rate", type=float, default=0.0, help="chance each cursor use expires it")
    cursors.add_argument("--cursor-seed", type=int, default=0, help="seed of the cursor expiry dice")
    parser.add_argument(
        "--no-request-log", action="store_true", help="keep no request log (long benchmarks; /_emulator/requests empty)"
    )


def create_emulator(options: argparse.Namespace, clock: Clock, faults: Faults) -> Emulator:
    """Build the Kahuna Logs emulator."""
    emulator = Emulator("kahuna", clock=clock, faults=faults, log_requests=not options.no_request_log)
    policy = ExpiryPolicy(
        expire_after_uses=options.cursor_expire_after_uses,
        ttl_seconds=options.cursor_ttl_seconds,
        expire_rate=options.cursor_expire_rate,
        seed=options.cursor_seed,
    )
    policy.validate()
    readings = KahunaReadings()
    cursors = CursorStore(policy, readings)
    paging = PagingPolicy(options.records_cap, options.chain_page_size)
    paging.validate()
    now = clock.now()
    datasets = {env: dataset_from_options(options, now, env) for env in (PRODUCTION, SANDBOX)}
    credentials = Credentials(options.secret_key, options.api_key, options.not_enabled_api_key)
    api = LogsAPI(datasets, cursors, clock, credentials, paging, emulator, readings)
    emulator.add_route("POST", API_PATH, api.handle)
    emulator.add_route("GET", API_PATH, api.method_not_allowed)
    emulator.add_control_route("GET", "kahuna/cursors", cursors.describe_handler)
    emulator.add_control_route("POST", "kahuna/cursors", cursors.update_handler)
    emulator.add_control_route("GET", "kahuna/paging", paging.describe_handler)
    emulator.add_control_route("POST", "kahuna/paging", paging.update_handler)
    emulator.add_control_route("GET", "kahuna/readings", readings.describe_handler)
    emulator.add_control_route("POST", "kahuna/readings", readings.update_handler)
    emulator.on_reset(cursors.reset)
    emulator.corruptions.declare_targets(
        {"env": str, "category": str, "day": str, "page": int, "start": str}, check_answer_target
    )
    return emulator


def _minute(text: str) -> str:
    try:
        parse_minute(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def check_answer_target(target: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a corruption target no Kahuna answer can have."""
    if "env" in target and target["env"] not in (PRODUCTION, SANDBOX):
        raise ValueError(f"env must be {PRODUCTION!r} or {SANDBOX!r}, got {target['env']!r}")
    if "category" in target and target["category"] not in CATEGORIES:
        raise ValueError(f"category must be one of {list(CATEGORIES)}, got {target['category']!r}")
    if "day" in target:
        try:
            date.fromisoformat(target["day"])
        except ValueError:
            raise ValueError(f"day must be a UTC day YYYY-MM-DD, got {target['day']!r}") from None
    if "page" in target and target["page"] < 0:
        raise ValueError(f"page must be 0 or more, got {target['page']}")
    if "start" in target:
        parse_minute(target["start"])


@dataclass
class PagingPolicy(RuntimeKnobs):
    """Which reading of ``number_of_records`` the server applies, and its own page size in chain mode."""

    KNOBS = "paging"

    records_cap: str = "page"
    chain_page_size: int = DEFAULT_CHAIN_PAGE_SIZE

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or range."""
        if self.records_cap not in RECORDS_CAPS:
            raise ValueError(f"records_cap must be one of {list(RECORDS_CAPS)}, got {self.records_cap!r}")
        size = self.chain_page_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RECORDS_PER_PAGE:
            raise ValueError(f"chain_page_size must be an integer from 1 to {MAX_RECORDS_PER_PAGE}, got {size!r}")

    def chain_cap(self, number_of_records: int) -> int | None:
        """The cap of a chain a timestamp request starts: None when ``number_of_records`` is the page size."""
        return number_of_records if self.records_cap == "chain" else None


@dataclass
class KahunaReadings(RuntimeKnobs):
    """The readings of the seed this emulator serves besides ``number_of_records`` (see the module docstring)."""

    KNOBS = "reading"

    last_page_more_records: str = "false"
    cursor_error: str = "names_cursor"
    restart_from: str = "minute"
    day_end: str = "ends"
    page_overlap: bool = False
    order: str = "timestamp"

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or value."""
        for name, allowed in (
            ("last_page_more_records", LAST_PAGE_MORE_RECORDS),
            ("cursor_error", CURSOR_ERRORS),
            ("restart_from", RESTARTS_FROM),
            ("day_end", DAY_ENDS),
            ("order", ORDERS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if not isinstance(self.page_overlap, bool):
            raise ValueError(f"page_overlap must be true or false, got {self.page_overlap!r}")


#: The readings the connectors' contract assumes (``KahunaReadings``' defaults), as ``/_emulator/kahuna/readings``
#: shows them.
CONTRACT_READINGS: dict[str, Any] = asdict(KahunaReadings())


class LogsAPIError(Exception):
    """An error answer of the Logs API."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> web.Response:
        """The API's error body."""
        body = {
            "success": False,
            "error": ERROR_NAMES.get(self.status, "Error"),
            "error_code": self.status,
            "error_detail": self.detail,
        }
        headers = {"WWW-Authenticate": 'Basic realm="kahunalogs"'} if self.status == 401 else None
        return json_response(body, self.status, headers=headers)


def bad_request(detail: str) -> LogsAPIError:
    """A 400 with ``detail``."""
    return LogsAPIError(400, detail)


# --- credentials --------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    """The accepted secret key (username), API key (password) and a not-enabled API key."""

    secret_key: str
    api_key: str
    not_enabled_api_key: str

    def check(self, authorization: str | None) -> None:
        """Raise 401 for missing or wrong credentials, 409 for the not-enabled API key. Never echoes them."""
        username, password = _basic_credentials(authorization)
        if not _same(username, self.secret_key):
            raise LogsAPIError(401, "invalid credentials: username must be the Secret Key, password the API Key")
        if _same(password, self.api_key):
            return
        if self.not_enabled_api_key and _same(password, self.not_enabled_api_key):
            raise LogsAPIError(409, "these credentials are not enabled for the Logs API")
        raise LogsAPIError(401, "invalid credentials: username must be the Secret Key, password the API Key")


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise LogsAPIError(401, "HTTP Basic authentication is required (username = Secret Key, password = API Key)")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise LogsAPIError(401, "the Basic authorization header is not valid base64 of username:password") from None
    username, separator, password = decoded.partition(":")
    if not separator:
        raise LogsAPIError(401, "the Basic authorization header holds no username:password pair")
    return username, password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# --- cursors ------------------------------------------------------------------------------
@dataclass
class ExpiryPolicy:
    """When cursors expire: after N uses, after T seconds, at random; ``None`` / 0 = never."""

    expire_after_uses: int | None = None
    ttl_seconds: float | None = None
    expire_rate: float | None = 0.0
    expire_at_uses: list[int] | None = None
    seed: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the known knobs of ``changes`` (``expire_all`` is handled by the store)."""
        known = {"expire_after_uses", "ttl_seconds", "expire_rate", "expire_at_uses", "seed", "expire_all"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown cursor knob(s) {sorted(unknown)}; known: {sorted(known)}")
        for name in ("expire_after_uses", "ttl_seconds", "expire_rate", "expire_at_uses", "seed"):
            if name in changes:
                setattr(self, name, changes[name])
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or range."""
        uses = self.expire_after_uses
        if uses is not None and (isinstance(uses, bool) or not isinstance(uses, int) or uses < 1):
            raise ValueError(f"expire_after_uses must be an integer >= 1 or null, got {uses!r}")
        ttl = self.ttl_seconds
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0):
            raise ValueError(f"ttl_seconds must be a number >= 0 or null, got {ttl!r}")
        rate = self.expire_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1):
            raise ValueError(f"expire_rate must be a number from 0 to 1 or null, got {rate!r}")
        at_uses = self.expire_at_uses
        if at_uses is not None and (
            not isinstance(at_uses, list) or not all(isinstance(n, int) and n >= 1 for n in at_uses)
        ):
            raise ValueError(f"expire_at_uses must be a list of integers >= 1 or null, got {at_uses!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


@dataclass(frozen=True, slots=True)
class Chain:
    """Where a cursor chain is: its day and start minute, the next record's index in the day's merged list
    (a chain a timestamp starts finds its first by the timestamp), the page's number and what it sent of its cap."""

    day: date
    start: str
    next_index: int
    page: int = 0
    sent: int = 0
    cap: int | None = None
    first_index: int = 0  # where the chain's first page started (no page overlaps before it)
    select_from: str = ""  # the first timestamp the chain selects (``order: stored``)


@dataclass(slots=True)
class Cursor:
    """A server-side position in a cursor chain of one env and categories."""

    env: str
    categories: tuple[str, ...]
    chain: Chain
    issued_at: float
    uses: int = 0
    expired: bool = False


class CursorStore:
    """Issues opaque cursor tokens, keeps their positions and decides when they expire."""

    def __init__(self, policy: ExpiryPolicy, readings: KahunaReadings | None = None) -> None:
        self.policy = policy
        self.readings = readings or KahunaReadings()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._next_id = 0
        self._rng = random.Random(policy.seed)
        self.expired_answers = 0
        self.cursor_uses = 0  # every cursor request since the last reset: what expire_at_uses counts

    def issue(self, env: str, categories: tuple[str, ...], chain: Chain) -> str:
        """A new token for the position ``chain`` of that day's merged list."""
        body = f"kc.{self._next_id}.{secrets.token_hex(6)}"
        self._next_id += 1
        token = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        self._cursors[token] = Cursor(env, categories, chain, time.monotonic())
        if len(self._cursors) > MAX_OUTSTANDING_CURSORS:
            self._cursors.popitem(last=False)
        return token

    def use(self, token: str, env: str, categories: tuple[str, ...]) -> Cursor:
        """The cursor's position, counting one use; 400 naming the token if unknown, expired or mismatched."""
        self.cursor_uses += 1
        cursor = self._cursors.get(token)
        if cursor is None:
            if self._was_issued(token):
                raise self._expired(token)
            raise self._refused(f"cursor {token} is unknown to this server; restart from the timestamp")
        if cursor.expired or self._expires_now(cursor):
            cursor.expired = True
            raise self._expired(token)
        _check_cursor_matches(token, cursor, env, categories)
        cursor.uses += 1
        return cursor

    def _expires_now(self, cursor: Cursor) -> bool:
        policy = self.policy
        if policy.expire_at_uses and self.cursor_uses in policy.expire_at_uses:
            return True
        if policy.expire_after_uses is not None and cursor.uses >= policy.expire_after_uses:
            return True
        if policy.ttl_seconds is not None and time.monotonic() - cursor.issued_at > policy.ttl_seconds:
            return True
        rate = policy.expire_rate
        return rate is not None and rate > 0 and self._rng.random() < rate

    def _expired(self, token: str) -> LogsAPIError:
        self.expired_answers += 1
        return self._refused(f"cursor {token} has expired; restart from the timestamp")

    def _refused(self, naming_the_cursor: str) -> LogsAPIError:
        """The answer to a cursor the server no longer knows, under the ``cursor_error`` reading."""
        if self.readings.cursor_error == "names_cursor":
            return bad_request(naming_the_cursor)
        if self.readings.cursor_error == "not_found":
            return LogsAPIError(404, "Not Found")
        return bad_request(GENERIC_BAD_REQUEST)

    def _was_issued(self, token: str) -> bool:
        """An evicted token of ours (it decodes to an id we handed out) counts as expired."""
        try:
            body = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        match = _CURSOR_TOKEN.fullmatch(body)
        return match is not None and int(match.group(1)) < self._next_id

    def expire_all(self) -> None:
        """Expire every outstanding cursor now."""
        for cursor in self._cursors.values():
            cursor.expired = True

    def reset(self) -> None:
        """Forget every cursor and reseed the expiry dice."""
        self._cursors.clear()
        self._rng.seed(self.policy.seed)
        self.expired_answers = 0
        self.cursor_uses = 0

    def describe(self) -> dict[str, Any]:
        """The knobs and counters."""
        outstanding = sum(1 for cursor in self._cursors.values() if not cursor.expired)
        return {
            **asdict(self.policy),
            "outstanding": outstanding,
            "issued": self._next_id,
            "expired_answers": self.expired_answers,
            "cursor_uses": self.cursor_uses,
        }

    async def describe_handler(self, _: web.Request) -> web.Response:
        """``GET /_emulator/kahuna/cursors``."""
        return json_response(self.describe())

    async def update_handler(self, request: web.Request) -> web.Response:
        """``POST /_emulator/kahuna/cursors``: change knobs and/or expire every cursor."""
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of cursor knobs")
            candidate = ExpiryPolicy(**asdict(self.policy))
            candidate.update(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        self.policy.update(changes)
        self._rng.seed(self.policy.seed)
        if "expire_at_uses" in changes:
            self.cursor_uses = 0
        if changes.get("expire_all"):
            self.expire_all()
        return json_response(self.describe())


# --- the request ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LogsQuery:
    """A validated request body: a day and start minute, or a cursor token."""

    categories: tuple[str, ...]
    page_size: int
    day: date | None = None
    start_text: str = ""
    cursor: str | None = None

    @property
    def start_minute(self) -> str:
        """The timestamp's minute, ``HH:MM``."""
        return self.start_text[11:16]


def parse_body(raw: bytes) -> LogsQuery:
    """Validate the JSON body; raise a 400 naming the first broken rule."""
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    has_timestamp, has_cursor = body.get("timestamp") is not None, body.get("cursor") is not None
    if not has_timestamp and not has_cursor:
        raise bad_request("either timestamp or cursor is required")
    if has_timestamp and has_cursor:
        raise bad_request("send either timestamp or cursor, not both")
    page_size = _page_size(body)
    categories = _categories(body)
    if has_cursor:
        cursor = body["cursor"]
        if not isinstance(cursor, str) or not cursor.strip():
            raise bad_request("cursor must be a non-empty string (the cursor of the previous answer)")
        return LogsQuery(categories, page_size, cursor=cursor)
    day, start_text = parse_request_timestamp(body["timestamp"])
    return LogsQuery(categories, page_size, day=day, start_text=start_text)


def _page_size(body: dict[str, Any]) -> int:
    if "number_of_records" not in body:
        raise bad_request(f"number_of_records is required: an integer from 1 to {MAX_RECORDS_PER_PAGE}")
    value = body["number_of_records"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RECORDS_PER_PAGE:
        raise bad_request(
            f"number_of_records must be an integer from 1 to {MAX_RECORDS_PER_PAGE}, got {json.dumps(value)}"
        )
    return value


def _categories(body: dict[str, Any]) -> tuple[str, ...]:
    known = ", ".join(CATEGORIES)
    if "categories_to_return" not in body:
        raise bad_request(f"categories_to_return is required: a list of {known}")
    value = body["categories_to_return"]
    if not isinstance(value, list):
        raise bad_request(f"categories_to_return must be a list of {known}, got {json.dumps(value)}")
    if not value:
        raise bad_request(f"categories_to_return is empty; list at least one of {known}")
    for category in value:
        if category not in CATEGORIES:
            raise bad_request(f"unknown category {json.dumps(category)} in categories_to_return; known: {known}")
    requested = set(value)
    if "user_merge" in requested and len(requested) > 1:
        raise bad_request("user_merge cannot be combined with other categories in categories_to_return")
    return tuple(category for category in CATEGORIES if category in requested)


def parse_request_timestamp(value: Any) -> tuple[date, str]:
    """``m/dd/yyyy h:mm`` (UTC, hour 0-23) or ``m/dd/yyyy h:mm AM|PM`` -> (its day, the first record timestamp)."""
    match = _REQUEST_TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise bad_request(
            "timestamp must look like m/dd/yyyy h:mm (UTC, hour 0-23) or m/dd/yyyy h:mm AM|PM, "
            f"e.g. 7/30/2016 0:00 or 7/30/2016 1:05 PM; got {json.dumps(value)}"
        )
    month, day, year, hour, minute = (int(part) for part in match.groups()[:5])
    meridiem = match.group(6)
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise bad_request(f"timestamp {json.dumps(value)}: with AM/PM the hour must be 1 to 12")
        hour = hour % 12 + (12 if meridiem.lower() == "pm" else 0)
    try:
        start = datetime(year, month, day, hour, minute, tzinfo=timezone.utc)
    except ValueError as exc:
        raise bad_request(f"timestamp {json.dumps(value)} is not a real UTC date and time: {exc}") from None
    return start.date(), start.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- the service ------------------------------------------------------------------------------
class LogsAPI:
    """Answers ``POST /api/kahunalogs``."""

    def __init__(
        self,
        datasets: dict[str, KahunaDataset],
        cursors: CursorStore,
        clock: Clock,
        credentials: Credentials,
        paging: PagingPolicy,
        emulator: Emulator,
        readings: KahunaReadings | None = None,
    ) -> None:
        self.datasets = datasets
        self.cursors = cursors
        self.clock = clock
        self.credentials = credentials
        self.paging = paging
        self.emulator = emulator
        self.readings = readings or KahunaReadings()
        self._merged_day = lru_cache(maxsize=512)(self._build_merged_day)
        self._stored_selection = lru_cache(maxsize=512)(self._build_stored_selection)

    async def handle(self, request: web.Request) -> web.Response:
        """Auth, then env, then the body; a page of records or an error body."""
        try:
            self.credentials.check(request.headers.get("Authorization"))
            env = _env(request)
            query = parse_body(await request.read())
            page, target = self._page(env, query)
            return self.emulator.answer(json_response(page), target)
        except LogsAPIError as error:
            return error.response()

    async def method_not_allowed(self, _: web.Request) -> web.Response:
        """The Logs API only answers POST."""
        return LogsAPIError(405, "use POST with a JSON body").response()

    def _page(self, env: str, query: LogsQuery) -> tuple[dict[str, Any], AnswerTarget]:
        """The page a request gets, and how corruption rules target it."""
        data = self.datasets[env].at(self.clock.now())
        chain = self._chain(env, query)
        entries, end = self._selection(env, query.categories, chain, data)
        if query.cursor is not None:
            start = chain.next_index
        elif self.readings.order != "timestamp" or not data.has_day(chain.day):
            start = 0
        else:
            start = first_index_from(self._merged_day(env, query.categories, chain.day)[1], chain.select_from)
            chain = replace(chain, first_index=start)
        overlap = self.readings.page_overlap and query.cursor is not None and start > chain.first_index
        stop, more = self._page_end(chain, start, end, query.page_size, overlap)
        following = replace(chain, next_index=stop, page=chain.page + 1, sent=chain.sent + stop - start)
        if not more and stop >= end and self.readings.day_end != "ends":
            more = True  # a chain that never ends: the next page is empty, this page again, or its last record
            if self.readings.day_end == "repeat_page":
                following = replace(following, next_index=start, sent=chain.sent)
            elif self.readings.day_end == "repeat_last" and stop > start:
                following = replace(following, next_index=stop - 1, sent=chain.sent + stop - start - 1)
        page: dict[str, Any] = {"more_records": more} if more or self.readings.last_page_more_records == "false" else {}
        if more:
            page["cursor"] = self.cursors.issue(env, query.categories, following)
        for category in query.categories:
            page[category] = []
        for category, record in entries[start - 1 if overlap else start : stop]:
            page[category].append(record)
        return page, _answer_target(env, query.categories, chain)

    def _selection(
        self, env: str, categories: tuple[str, ...], chain: Chain, data: KahunaDataset
    ) -> tuple[tuple[tuple[str, dict[str, Any]], ...], int]:
        """The entries a chain pages through and how many of them are visible now."""
        if not data.has_day(chain.day):
            return (), 0
        if self.readings.order != "timestamp":
            order = self.readings.order
            return self._stored_selection(env, categories, chain.day, chain.select_from, data.now_text, order)
        entries, timestamps = self._merged_day(env, categories, chain.day)
        return entries, visible_count(timestamps, data.now_text)

    def _page_end(self, chain: Chain, start: int, end: int, number_of_records: int, overlap: bool) -> tuple[int, bool]:
        """Where a page from ``start`` stops, and whether its chain goes on (``end``: the visible records).

        A page that repeats the previous page's last record (``overlap``) holds one new record fewer."""
        fewer = 1 if overlap else 0
        if chain.cap is None:  # number_of_records is the page size
            stop = min(start + max(1, number_of_records - fewer), end)
            return stop, stop < end
        stop = min(start + max(1, min(self.paging.chain_page_size, chain.cap - chain.sent) - fewer), end)
        return stop, stop < end and chain.sent + stop - start < chain.cap

    def _chain(self, env: str, query: LogsQuery) -> Chain:
        """The chain a request continues (its cursor's) or starts (a timestamp)."""
        if query.cursor is not None:
            return self.cursors.use(query.cursor, env, query.categories).chain
        assert query.day is not None
        select_from = query.start_text
        if self.readings.restart_from == "day_start":
            select_from = f"{query.day.isoformat()} 00:00:00.000000"
        return Chain(
            query.day,
            query.start_minute,
            next_index=0,
            cap=self.paging.chain_cap(query.page_size),
            select_from=select_from,
        )

    def _build_stored_selection(
        self, env: str, categories: tuple[str, ...], day: date, select_from: str, now_text: str, order: str
    ) -> tuple[tuple[tuple[str, dict[str, Any]], ...], int]:
        """``order: stored`` (or ``one_late``): the day's records at or after ``select_from`` that arrived by now,
        in arrival order."""
        entries, _ = self._merged_day(env, categories, day)
        arrived = sorted(
            (arrival_text(entry[1]["timestamp"], index, order), index, entry) for index, entry in enumerate(entries)
        )
        stored = tuple(
            entry for arrival, _, entry in arrived if arrival <= now_text and entry[1]["timestamp"] >= select_from
        )
        return stored, len(stored)

    def _build_merged_day(
        self, env: str, categories: tuple[str, ...], day: date
    ) -> tuple[tuple[tuple[str, dict[str, Any]], ...], list[str]]:
        """A whole day of the categories merged by timestamp (stable), and their timestamps."""
        dataset = self.datasets[env]
        streams = [[(category, record) for record in dataset.full_day(category, day)] for category in categories]
        entries = tuple(merge(*streams, key=lambda entry: entry[1]["timestamp"]))
        return entries, [record["timestamp"] for _, record in entries]


def arrival_text(timestamp: str, index: int, order: str = "stored") -> str:
    """When a record arrived under ``order`` (its timestamp; under ``stored``, ``LATE_MINUTES`` later for every
    seventh record of its day by ``index``; under ``one_late``, ``ONE_LATE_HOURS`` later for the 4th), in the
    timestamp form."""
    if order == "one_late":
        if index != 3:
            return timestamp
        lateness = timedelta(hours=ONE_LATE_HOURS)
    elif index % 7 != 3:
        return timestamp
    else:
        lateness = timedelta(minutes=LATE_MINUTES)
    late = datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S.%f") + lateness
    return late.strftime("%Y-%m-%d %H:%M:%S.%f")


def stored_order(records: list[dict[str, Any]], now_text: str, order: str = "stored") -> list[dict[str, Any]]:
    """A day's records (all of it, or a prefix) as ``order`` (``stored`` or ``one_late``) serves them at
    ``now_text``: by arrival."""
    arrived = sorted((arrival_text(record["timestamp"], index, order), index) for index, record in enumerate(records))
    return [records[index] for arrival, index in arrived if arrival <= now_text]


def _answer_target(env: str, categories: tuple[str, ...], chain: Chain) -> AnswerTarget:
    """How corruption rules pick a Kahuna answer; its main key is the targeted (else the first) category."""
    fields = {
        "env": env,
        "category": categories,
        "day": chain.day.isoformat(),
        "page": chain.page,
        "start": chain.start,
    }
    return AnswerTarget(fields, main_key=categories[0], key_field="category")


def _env(request: web.Request) -> str:
    env = request.query.get("env")
    if env is None:
        raise bad_request("the query parameter env is required: env=p (production) or env=s (sandbox)")
    if env not in (PRODUCTION, SANDBOX):
        raise bad_request(f"env must be p (production) or s (sandbox), got {json.dumps(env)}")
    return env


def _check_cursor_matches(token: str, cursor: Cursor, env: str, categories: tuple[str, ...]) -> None:
    if cursor.env != env:
        raise bad_request(f"cursor {token} belongs to env={cursor.env}; send it with the same env")
    if cursor.categories != categories:
        raise bad_request(
            f"cursor {token} was issued for categories_to_return {list(cursor.categories)}; send the same categories"
        )
