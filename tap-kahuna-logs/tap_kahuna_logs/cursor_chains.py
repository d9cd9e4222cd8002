"""Reading one category's UTC day exactly once, under every reading of the seed a server may apply.

The seed lists, among the conditions that end a cursor chain, "the number of records sent is equal to the value
of number_of_records": so ``number_of_records`` may be the page size (the chain runs to the day's end) or the cap
of the whole chain (the server pages by its own size and stops at the cap). One algorithm is right under both,
with no setting to pick one:

- a chain starts with a ``timestamp`` request from the minute of the last record held (00:00 at first); the
  records of that minute already held come back first and are skipped (each checked to be of that minute);
- after a chain that ended by itself (``more_records`` false) and brought new records, another chain follows;
  a chain that brought nothing new ends the day. Under the page-size reading that costs one request per day;
- an expired cursor (any 4xx to a cursor request, ``KahunaClient.rejected_answer``) ends its chain early. While the
  day was read from 00:00 in one go, the next chain starts at 00:00 and skips the records held by position: a
  record stored after the cut with an earlier timestamp (the seed never says records are sorted) is then still
  read. Where that cannot get past the records held (a capped chain, or cursors that expire sooner, in
  :data:`MAX_SHORT_RESTARTS_FROM_DAY_START` such chains in a row), chains start from the minute, as after a capped
  chain (no client can see such a record there: README, known limits);
- a chain that brought nothing new but sent exactly ``number_of_records`` records is ambiguous: the day may be
  done (page size) or the chain capped. One probe with a smaller ``number_of_records`` tells: more records than
  asked means pages, so the day is done; exactly as many means a cap, and that minute cannot be read completely
  (:class:`OverfullMinuteError`).

The other readings the seed leaves open, each read exactly or stopped with one line:

- a restart answered from earlier than asked ("the server returns records for the date specified" may mean it
  reads only the date): the records before the asked minute, all held already, are skipped. If a capped chain is
  spent on them, the rest of the day cannot be reached (:class:`RestartFromDayStartError`);
- records out of timestamp order (the seed never says the records are sorted): resuming from a minute would miss
  records, so once a day's records come out of order every later chain starts at 00:00 and skips the records held
  by position; a capped chain that cannot get past them stops the day (:class:`UnsortedDayError`, nothing of it
  emitted), and the day's bookmark carries no minute, so the next run re-reads it from 00:00 by position. A day
  resumed from a bookmark's minute that turns out of order is read again from 00:00 (:class:`ReadDayFromStart`):
  the records the bookmark counts are then skipped by position, once the last of them is found where it says;
- pages that overlap (each starts with the previous page's last record): learned from two overlapping page edges
  in a row (or, at a chain's only edge, from the edges of a chain from 00:00, at most three pages, else by counting
  that record in a fresh answer) and read once; until then the page after an overlapping edge waits;
- a chain that makes no progress (empty pages with cursors, the same page again, a page of only the previous
  page's last record) stops after :data:`MAX_PAGES_WITHOUT_PROGRESS` such pages in a row
  (:class:`ChainWithoutProgressError`): the records before them leave with their bookmark, the run fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tap_kahuna_logs.client import CursorExpiredError
from tap_kahuna_logs.payloads import KahunaAPIError
from tap_kahuna_logs.progress import DAY_START, DayProgress, record_minute

#: One checked page: ``fetch(minute, number_of_records, cursor)`` (``cursor`` None starts a chain at ``minute``).
FetchPage = Callable[[str, int, "str | None"], dict[str, Any]]
MAX_EXPIRIES_WITHOUT_PROGRESS = 10
#: Pages in a row that bring nothing new to a chain (empty, repeated, only the last record again) before it stops.
MAX_PAGES_WITHOUT_PROGRESS = 3
API_MAX_RECORDS = 1000
#: Pages of a chain from 00:00 read, at most, to tell whether cursor pages overlap (three pages: two edges).
EDGE_PROBE_PAGES = 3
#: Chains from 00:00 tried for that, when their cursors expire first.
EDGE_PROBE_CHAINS = 5
#: Chains from 00:00 by position in a row whose cursor expires before they get past the records held, before the day
#: goes on from the minute instead (with a WARNING: a record stored late with an earlier timestamp would be missed).
MAX_SHORT_RESTARTS_FROM_DAY_START = 3


class DayStopError(KahunaAPIError):
    """The day cannot be read further; ``keeps_records``: the records read before may leave (with their bookmark)."""

    keeps_records = True


class OverfullMinuteError(DayStopError):
    """A minute holds at least as many records as one cursor chain delivers: the rest of it cannot be read."""


class ChainWithoutProgressError(DayStopError):
    """A cursor chain kept sending pages with nothing new: the rest of the day is not vouched for."""


class RestartFromDayStartError(DayStopError):
    """The server answers restarts from the day's start and caps each chain: the rest of the day is out of reach."""


class UnsortedDayError(DayStopError):
    """Records out of timestamp order and a chain that stops early: the day cannot be read exactly."""

    keeps_records = False


class ReadDayFromStart(Exception):  # noqa: N818 (a signal to the day's caller, not an error)
    """A day resumed from a bookmark's minute came out of timestamp order: read it again from 00:00, by position.

    Records after the bookmark's minute cannot be matched to positions from 00:00 (a record stored late with an
    earlier timestamp sits before them there), but every record the bookmark counts arrived before them: read
    from 00:00, they come first, so skipping the bookmark's count by position lands on the next record."""


class PageEdges:
    """Whether this server's cursor pages overlap (start with the previous page's last record), once learned.

    Shared by the day readers of a stream: ``overlaps`` is None until an edge tells, then True or False."""

    def __init__(self) -> None:
        self.overlaps: bool | None = None
        self.lock = threading.Lock()

    def learn(self, overlaps: bool) -> None:
        """Record what an edge showed (the first answer wins; a server is consistent)."""
        with self.lock:
            if self.overlaps is None:
                self.overlaps = overlaps


@dataclass
class Waiting:
    """A cursor page whose first record repeats the previous page's last one, until an edge tells why."""

    records: list[dict]
    previous: list[dict]


@dataclass
class Chain:
    """One cursor chain: where it started, what it asked for, what it sent and how it ended."""

    minute: str
    number_of_records: int
    held: int  # records already held that the chain sends first: of ``minute``, or (by position) from 00:00
    by_position: bool = False  # the chain starts at 00:00 and skips ``held`` records by position (unsorted day)
    received: int = 0  # records the chain sent (a page's overlapping first record not counted)
    skipped: int = 0  # of those, held records skipped
    earlier: int = 0  # of those, records before ``minute`` (the server answered from earlier than asked)
    first_earlier: str = ""  # the first of them, ``YYYY-MM-DD HH:MM``
    new: int = 0
    ended: bool = False  # more_records false; False when a cursor expired first


class DayReader:
    """Reads one category's UTC day from a position, handing every new record to ``keep`` in server order."""

    def __init__(
        self,
        *,
        category: str,
        progress: DayProgress,
        page_size: int,
        fetch: FetchPage,
        keep: Callable[[list[dict]], None],
        describe_minute: Callable[[str], str],
        logger: logging.Logger,
        edges: PageEdges | None = None,
    ) -> None:
        self.category = category
        self.progress = progress
        self.page_size = page_size
        self.fetch = fetch
        self.keep = keep
        self.describe_minute = describe_minute  # the request's timestamp text, for messages
        self.logger = logger
        self.edges = edges or PageEdges()
        self.requests = 0
        self.chains = 0
        self.last_cursor_error = "-"  # the server's answer to the last refused cursor, for the final message
        # Positions count from 00:00 in the server's order while the day was read from its start in one go.
        self.positions_from_day_start = progress.records == 0
        self.resumed = progress.records > 0  # from a bookmark's minute: out of order, the day is read again
        self.restart_by_position = False  # the next chain, after an expired cursor, starts at 00:00 by position
        self.position_restarts_fall_short = False  # such chains could not get past the records held
        self.short_restarts = 0  # chains from 00:00 by position in a row that expired before passing the records held

    @property
    def where(self) -> str:
        """``inapp logs of UTC day 2026-11-18`` (for messages)."""
        return f"{self.category} logs of UTC day {self.progress.day.isoformat()}"

    def read(self) -> None:
        """Read to the day's end (today: to now); raise a :class:`DayStopError` where the day cannot be read further
        (``progress`` then says how far the read got)."""
        expiries_without_progress = 0
        number_of_records, probing = self.page_size, False
        while True:
            chain = self.read_chain(number_of_records)
            if chain.new:
                expiries_without_progress = 0
                number_of_records, probing = self.page_size, False
                from_day_start = chain.by_position or (chain.minute == DAY_START and not chain.held)
                whole_day = self.progress.unsorted or chain.by_position
                if whole_day and from_day_start and chain.ended and chain.received > number_of_records:
                    return  # more than asked in one chain from 00:00: pages, and the chain ran to the day's end
                if chain.ended:
                    self.restart_by_position = False
                continue
            if not chain.ended:
                expiries_without_progress += 1
                if expiries_without_progress > MAX_EXPIRIES_WITHOUT_PROGRESS:
                    raise KahunaAPIError(
                        f"Kahuna cursors for {self.where} keep expiring (or their requests keep being refused: "
                        f"{self.last_cursor_error}) before any new record arrives; try a larger page_size or a "
                        f"lower max_concurrency."
                    )
                number_of_records, probing = self.page_size, False
                continue
            if chain.received != chain.number_of_records:
                if chain.received - chain.earlier < chain.held:
                    raise self.day_shrank(chain)
                return
            if chain.by_position and not self.progress.unsorted:
                self.fall_short(chain, "this server stops each cursor chain after number_of_records records")
                continue
            if probing:
                if chain.by_position:
                    raise self.unsorted_and_capped(chain)
                if chain.earlier:
                    raise self.restart_from_day_start(chain)
                raise self.overfull(chain)
            # Nothing new and exactly number_of_records sent: a page that ended the day, or a capped chain?
            probing = True
            number_of_records = self.page_size - 1 if self.page_size > 1 else 2

    def start_chain(self, number_of_records: int) -> Chain:
        """The next chain: from the current minute, or (a day out of order) from 00:00 by position."""
        progress = self.progress
        if not progress.unsorted and not self.restart_by_position:
            return Chain(progress.minute, number_of_records, progress.minute_records)
        if not self.positions_from_day_start:
            if self.resumed:
                raise ReadDayFromStart(self.where)
            raise UnsortedDayError(
                f"Kahuna Logs API sent {self.where} out of timestamp order after a restart inside the day, so the "
                f"records read cannot be matched to positions from 00:00; nothing of this day was emitted. Re-read "
                f"the day from its start by setting this stream's bookmark back to the day before."
            )
        return Chain(DAY_START, number_of_records, progress.records, by_position=True)

    def read_chain(self, number_of_records: int) -> Chain:
        """One cursor chain: skip the records already held, keep the rest."""
        self.chains += 1
        chain = self.start_chain(number_of_records)
        cursor: str | None = None
        previous: list[dict] = []  # the last non-empty page's records, as sent
        waiting: Waiting | None = None  # a page after an edge that may overlap, until the next edge tells
        held_back: list[list[dict]] = []  # pages of only the previous page's last record, until progress tells
        no_progress = 0
        while True:
            try:
                self.requests += 1
                page = self.fetch(chain.minute, number_of_records, cursor)
            except CursorExpiredError as expired:
                self.last_cursor_error = str(expired)
                self.finish_chain(chain, waiting, held_back)
                self.restart_after_expiry(chain)
                by_position = self.progress.unsorted or self.restart_by_position
                self.logger.warning(
                    "Cursor expired while reading %s after %d records; continuing from %s (skipping the %d records "
                    "already read)",
                    self.where,
                    self.progress.records,
                    DAY_START if by_position else self.progress.minute,
                    self.progress.records if by_position else self.progress.minute_records,
                )
                return chain
            raw = page[self.category]
            if self.makes_no_progress(previous, raw, cursor):
                no_progress += 1
                if len(raw) == 1:
                    held_back.append(raw)  # a genuine repeat of that record if the chain goes on
                if no_progress >= MAX_PAGES_WITHOUT_PROGRESS:
                    raise self.no_progress(chain, no_progress)
            else:
                no_progress = 0
                records: list[dict] | None = raw
                if cursor is not None and previous:
                    resolved, records, waiting = self.page_edge(previous, raw, waiting)
                    if resolved is not None:
                        self.take(resolved, chain)
                for page_records in held_back:
                    self.take(page_records, chain)
                held_back = []
                if records is not None:
                    self.take(records, chain)
            if raw:
                previous = raw
            if not page["more_records"]:
                self.finish_chain(chain, waiting, held_back)
                chain.ended = True
                return chain
            cursor = page["cursor"]

    def restart_after_expiry(self, chain: Chain) -> None:
        """Where the chain after an expired cursor starts: at 00:00 by position while the day was read from its
        start in one go (so a record stored after the cut with an earlier timestamp is still read), else (or once
        such a chain fell short) from the minute."""
        if self.progress.unsorted:
            return
        if chain.by_position:
            self.short_restarts = 0 if chain.new else self.short_restarts + 1
            if self.short_restarts >= MAX_SHORT_RESTARTS_FROM_DAY_START:
                self.fall_short(
                    chain,
                    f"its cursors expired before {self.short_restarts} chains from 00:00 in a row got past them",
                )
        elif self.positions_from_day_start and self.progress.records and not self.position_restarts_fall_short:
            self.restart_by_position = True

    def fall_short(self, chain: Chain, why: str) -> None:
        """A chain from 00:00 by position could not get past the records held: chains start from the minute."""
        self.restart_by_position = False
        self.position_restarts_fall_short = True
        self.logger.warning(
            "%s: %s records read so far, and %s; continuing from %s, so a record the server stores after them "
            "with an earlier timestamp would not be read (see the README's known limits)",
            self.where,
            chain.held,
            why,
            self.progress.minute,
        )

    def finish_chain(self, chain: Chain, waiting: Waiting | None, held_back: list[list[dict]]) -> None:
        """A chain ended (or its cursor expired): the page still waiting, then the pages held back, are read."""
        if waiting is not None:
            self.take(self.resolve_edge(waiting, at_chain_end=True), chain)
        for page_records in held_back:
            self.take(page_records, chain)

    # --- page edges and progress ------------------------------------------------------------------------------------
    def page_edge(
        self, previous: list[dict], records: list[dict], waiting: Waiting | None
    ) -> tuple[list[dict] | None, list[dict] | None, Waiting | None]:
        """At the edge between two cursor pages: (the waiting page's records, now resolved, or None; this page's
        records to read, an overlapping first record dropped, or None while it waits; the page that waits).

        A page waits after an edge that repeated while ``edges`` did not know yet: the next edge tells."""
        repeats = len(records) >= 2 and records[0] == previous[-1]
        resolved = None
        if waiting is not None:
            self.edges.learn(repeats)
            resolved = self.resolve_edge(waiting, at_chain_end=False)
        overlaps = self.edges.overlaps
        if overlaps is True:
            if records[0] != previous[-1]:
                raise KahunaAPIError(
                    f"Kahuna Logs API cursor pages of {self.category} logs overlapped (each started with the "
                    f"previous page's last record) but a page of {self.where} does not; the pages cannot be read "
                    f"exactly once; nothing of this day was emitted, re-run to read it again."
                )
            return resolved, records[1:], None
        if repeats and overlaps is None:
            return resolved, None, Waiting(records, previous)
        if len(records) >= 2 and overlaps is None:
            self.edges.learn(False)
        return resolved, records, None

    def resolve_edge(self, waiting: Waiting, *, at_chain_end: bool) -> list[dict]:
        """The waiting page's records to read, once ``edges`` knows (or, at a chain's end, once the edges of a
        chain from 00:00, or a fresh answer counting its first record, told)."""
        if self.edges.overlaps is None and at_chain_end:
            told = self.edges_from_day_start()
            self.edges.learn(self.count_says_overlap(waiting) if told is None else told)
        return waiting.records[1:] if self.edges.overlaps else waiting.records

    def edges_from_day_start(self) -> bool | None:
        """Whether pages overlap, told by the page edges of a chain from 00:00 (they fall elsewhere than the
        chain's): an edge that does not repeat means no, two that repeat in a row mean yes; None if it ends first.
        A chain whose cursor expires first is tried again, up to :data:`EDGE_PROBE_CHAINS` chains."""
        for _ in range(EDGE_PROBE_CHAINS):
            try:
                return self.edges_of_one_chain_from_day_start()
            except CursorExpiredError:
                continue
        return None

    def edges_of_one_chain_from_day_start(self) -> bool | None:
        """:meth:`edges_from_day_start` in one chain; ``CursorExpiredError`` if its cursor expires first."""
        cursor: str | None = None
        previous: list[dict] = []
        repeating = 0
        for _ in range(EDGE_PROBE_PAGES):
            self.requests += 1
            page = self.fetch(DAY_START, self.page_size, cursor)
            records = page[self.category]
            if cursor is not None and previous and len(records) >= 2:
                if records[0] != previous[-1]:
                    told = False
                    break
                repeating += 1
                if repeating == 2:
                    told = True
                    break
            previous = records or previous
            if not page["more_records"]:
                return None
            cursor = page["cursor"]
        else:
            return None
        self.logger.info(
            "%s: Kahuna cursor pages %s (told by the page edges of a chain from 00:00)",
            self.where,
            "repeat the previous page's last record" if told else "do not overlap",
        )
        return told

    def count_says_overlap(self, waiting: Waiting) -> bool:
        """Whether the waiting page's first record (equal to the previous page's last) is one record sent twice:
        count its copies in a fresh answer (a chain's first page has no page before it to overlap)."""
        record = waiting.records[0]
        stamp = record_minute(record.get("timestamp"))
        sides = (waiting.previous, waiting.records)
        copies_here = sum(1 for side in sides for raw in side if raw == record)
        whole_here = all(any(raw != record for raw in side) for side in sides)  # the copies lie inside both pages
        if stamp is not None and stamp[0] == self.progress.day_text and whole_here:
            self.requests += 1
            answer = self.fetch(stamp[1], API_MAX_RECORDS, None)
            fresh = answer[self.category]
            at = [index for index, raw in enumerate(fresh) if raw == record]
            whole_there = bool(at) and (at[-1] + 1 < len(fresh) or not answer["more_records"])
            if whole_there and len(at) in (copies_here, copies_here - 1):
                self.logger.info(
                    "%s: Kahuna cursor pages %s (told by counting one record in a fresh answer)",
                    self.where,
                    "repeat the previous page's last record" if len(at) < copies_here else "do not overlap",
                )
                return len(at) < copies_here
        raise KahunaAPIError(
            f"Kahuna Logs API sent a page of {self.where} that starts with the previous page's last record, and "
            f"whether the server repeats each page's last record or the day holds that record twice cannot be "
            f"told; nothing of this day was emitted. Re-run with another page_size to read it."
        )

    @staticmethod
    def makes_no_progress(previous: list[dict], records: list[dict], cursor: str | None) -> bool:
        """A cursor page with nothing new: empty, the same page again, or only the previous page's last record."""
        if cursor is None:
            return False
        if not records:
            return True
        if len(records) >= 2:
            return records == previous
        return bool(previous) and records[0] == previous[-1]

    def take(self, records: list[dict], chain: Chain) -> None:
        """Skip what the chain sends again of the records held, keep the rest (in order)."""
        new_records = []
        progress = self.progress
        for raw in records:
            chain.received += 1
            timestamp = raw.get("timestamp")
            stamp = record_minute(timestamp)
            if chain.skipped < chain.held:
                if chain.by_position:
                    chain.skipped += 1
                    continue
                if chain.skipped == 0 and self.earlier_than_asked(stamp, chain):
                    chain.earlier += 1
                    chain.first_earlier = chain.first_earlier or f"{stamp[0]} {stamp[1]}"  # type: ignore[index]
                    continue
                self.check_repeated(stamp, chain)
                chain.skipped += 1
                continue
            if chain.skipped == 0 and not chain.by_position and self.earlier_than_asked(stamp, chain):
                chain.earlier += 1  # a chain from a minute with none of it held yet (a record without a timestamp)
                continue
            if stamp is not None and stamp[0] != progress.day_text:
                raise self.other_day(stamp, chain)
            new_records.append(raw)
            progress.count(stamp, timestamp)
        if new_records:
            chain.new += len(new_records)
            if not chain.by_position and (chain.minute != DAY_START or chain.held):
                self.positions_from_day_start = False  # records of a restart from a minute
            self.keep(new_records)

    @staticmethod
    def earlier_than_asked(stamp: tuple[str, str] | None, chain: Chain) -> bool:
        """A record of the chain's day before the minute asked: the server answered from earlier (all held)."""
        return stamp is not None and chain.minute != DAY_START and stamp[1] < chain.minute and chain.new == 0

    # --- what must hold for exactly once --------------------------------------------------------------------------
    def check_repeated(self, stamp: tuple[str, str] | None, chain: Chain) -> None:
        """A record the chain sends again must be of its start minute, or records of it are missing."""
        if stamp == (self.progress.day_text, chain.minute):
            return
        found = f"{stamp[0]} {stamp[1]}" if stamp else "no readable timestamp"
        raise KahunaAPIError(
            f"Kahuna Logs API answered the request for {self.where} from {chain.minute} "
            f'("timestamp": "{self.describe_minute(chain.minute)}") with a record of {found} where the '
            f"{chain.held} records of {chain.minute} read before were due: it did not read the time as "
            f"sent; try the other timestamp_format (24h or am_pm). Nothing of this day was emitted, re-run to read "
            f"it again."
        )

    def other_day(self, stamp: tuple[str, str], chain: Chain) -> KahunaAPIError:
        """A new record of another day than requested: a date read another way would mislabel records."""
        return KahunaAPIError(
            f"Kahuna Logs API answered the request for {self.where} from {chain.minute} "
            f'("timestamp": "{self.describe_minute(chain.minute)}") with a record of {stamp[0]} {stamp[1]}: '
            f"it did not read the date as sent (m/dd/yyyy); nothing of this day was emitted, re-run to read it again."
        )

    def day_shrank(self, chain: Chain) -> KahunaAPIError:
        """The server now sends fewer records than it did: positions would no longer be stable."""
        if chain.earlier:
            return KahunaAPIError(
                f"Kahuna Logs API answered the request for {self.where} from {chain.minute} "
                f'("timestamp": "{self.describe_minute(chain.minute)}") with a record of {chain.first_earlier} '
                f"({chain.earlier} records before {chain.minute}) and only {chain.received - chain.earlier} of the "
                f"{chain.held} records of {chain.minute} read before: it did not read the time as sent; try the "
                f"other timestamp_format (24h or am_pm). Nothing of this day was emitted, re-run to read it again."
            )
        what = "of the day" if chain.by_position else f"of {chain.minute}"
        return KahunaAPIError(
            f"Kahuna Logs API now sends {chain.received - chain.earlier} records {what} for {self.where} where "
            f"{chain.held} were read before (records were removed or reordered), so the day cannot be "
            f"continued exactly once; nothing of this day was emitted. Re-read the day from its start by setting "
            f"this stream's bookmark back to the day before."
        )

    def no_progress(self, chain: Chain, pages: int) -> ChainWithoutProgressError:
        """The one line of a cursor chain that goes on without anything new."""
        return ChainWithoutProgressError(
            f"Kahuna Logs API kept answering the cursor chain of {self.where} (from {chain.minute}) with pages "
            f"that bring nothing new (empty, the same page again, or only the last record again): {pages} in a "
            f"row, each with a new cursor; stopped "
            f"after {self.progress.records} records of that day (emitted, with their bookmark), none of the rest "
            f"is vouched for. Re-run later; if it persists, report the chain to Kahuna."
        )

    def restart_from_day_start(self, chain: Chain) -> RestartFromDayStartError:
        """A capped chain spent on records before the minute asked: no request reaches the rest of the day."""
        return RestartFromDayStartError(
            f"Kahuna Logs API answers the request for {self.where} from {chain.minute} from earlier in the day "
            f"(it reads only the date of timestamp) and stops each cursor chain after number_of_records records, so "
            f"no request reaches past the first {self.progress.records} records of that day (emitted, with their "
            f"bookmark). Raise page_size (now {self.page_size}, at most {API_MAX_RECORDS}) to reach further."
        )

    def unsorted_and_capped(self, chain: Chain) -> UnsortedDayError:
        """Out of order, and capped chains from 00:00 cannot get past the records held."""
        return UnsortedDayError(
            f"Kahuna Logs API sends {self.where} out of timestamp order and stops each cursor chain after "
            f"number_of_records records, so neither a request from a minute nor one from 00:00 reaches past the "
            f"first {chain.held} records; nothing of this day was emitted. Raise page_size (now {self.page_size}, "
            f"at most {API_MAX_RECORDS}) so that one chain holds more of the day."
        )

    def overfull(self, chain: Chain) -> OverfullMinuteError:
        """The one clear error of a minute that holds at least as many records as one chain delivers."""
        cap, held = self.page_size, max(chain.held, self.page_size)
        fix = (
            f"raise page_size (now {cap}, at most {API_MAX_RECORDS}) so that one chain delivers more of that minute"
            if cap < API_MAX_RECORDS
            else "the Logs API cannot deliver the rest of that minute; ask Kahuna for it another way"
        )
        return OverfullMinuteError(
            f"{self.where}: minute {chain.minute} holds at least {held} records, as many as one cursor chain "
            f"delivers (number_of_records = page_size = {cap}: this server caps each chain), so the rest of that "
            f"minute cannot be read; this run emitted none of that minute's records and no bookmark past the "
            f"minute before it. {fix}."
        )
