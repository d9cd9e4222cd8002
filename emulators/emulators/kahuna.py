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
import json
from dataclasses import replace
from datetime import date
from functools import lru_cache
from heapq import merge
from typing import Any

from aiohttp import web

from emulators.answer_corruption import AnswerTarget
from emulators.clock import Clock
from emulators.core import Emulator
from emulators.faults import Faults
from emulators.kahuna_cursors import Chain, CursorStore, ExpiryPolicy
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
from emulators.kahuna_readings import DEFAULT_CHAIN_PAGE_SIZE, RECORDS_CAPS, KahunaReadings, PagingPolicy, arrival_text
from emulators.kahuna_requests import Credentials, LogsAPIError, LogsQuery, bad_request, parse_body
from emulators.responses import json_response

API_PATH = "/api/kahunalogs"


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


# --- credentials --------------------------------------------------------------------------


# --- cursors ------------------------------------------------------------------------------


# --- the request ----------------------------------------------------------------------------


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
