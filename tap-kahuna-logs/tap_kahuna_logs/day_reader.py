"""Reading one category's UTC day exactly once, whichever way the server reads ``number_of_records``.

The seed lists, among the conditions that end a cursor chain, "the number of records sent is equal to the value
of number_of_records": so ``number_of_records`` may be the page size (the chain runs to the day's end) or the cap
of the whole chain (the server pages by its own size and stops at the cap). One algorithm is right under both,
with no setting to pick one:

- a chain starts with a ``timestamp`` request from the minute of the last record held (00:00 at first); the
  records of that minute already held come back first and are skipped (each checked to be of that minute, which
  also proves the server read the time as meant);
- after a chain that ended by itself (``more_records`` false) and brought new records, another chain follows;
  a chain that brought nothing new ends the day. Under the page-size reading that costs one request per day;
- an expired cursor ends its chain early: the next chain starts the same way (never again from 00:00, which
  could loop under the capped reading);
- a chain that brought nothing new but sent exactly ``number_of_records`` records, all of the one minute, is
  ambiguous: the day may be done (page size) or that minute may hold more than a chain delivers (cap). One probe
  with a smaller ``number_of_records`` tells: more records than asked means pages, so the day is done; exactly
  as many means a cap, and that minute cannot be read completely (:class:`OverfullMinuteError`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tap_kahuna_logs.client import CursorExpiredError
from tap_kahuna_logs.payloads import KahunaAPIError
from tap_kahuna_logs.progress import DayProgress, record_minute

#: One checked page: ``fetch(minute, number_of_records, cursor)`` (``cursor`` None starts a chain at ``minute``).
FetchPage = Callable[[str, int, "str | None"], dict[str, Any]]
MAX_EXPIRIES_WITHOUT_PROGRESS = 10
API_MAX_RECORDS = 1000


class OverfullMinuteError(KahunaAPIError):
    """A minute holds at least as many records as one cursor chain delivers: the rest of it cannot be read."""


@dataclass
class Chain:
    """One cursor chain: where it started, what it asked for, what it sent and how it ended."""

    minute: str
    number_of_records: int
    held_of_minute: int  # records of ``minute`` already held: the chain sends them first
    received: int = 0
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
    ) -> None:
        self.category = category
        self.progress = progress
        self.page_size = page_size
        self.fetch = fetch
        self.keep = keep
        self.describe_minute = describe_minute  # the request's timestamp text, for messages
        self.logger = logger
        self.requests = 0
        self.chains = 0

    @property
    def where(self) -> str:
        """``inapp logs of UTC day 2026-11-18`` (for messages)."""
        return f"{self.category} logs of UTC day {self.progress.day.isoformat()}"

    def read(self) -> None:
        """Read to the day's end (today: to now); raise :class:`OverfullMinuteError` at a minute one chain cannot
        deliver (``progress`` then says how far the read got)."""
        expiries_without_progress = 0
        number_of_records, probing = self.page_size, False
        while True:
            chain = self.read_chain(number_of_records)
            if chain.new:
                expiries_without_progress = 0
                number_of_records, probing = self.page_size, False
                continue
            if not chain.ended:
                expiries_without_progress += 1
                if expiries_without_progress > MAX_EXPIRIES_WITHOUT_PROGRESS:
                    raise KahunaAPIError(
                        f"Kahuna cursors for {self.where} keep expiring before any new record arrives; "
                        f"try a larger page_size or a lower max_concurrency."
                    )
                number_of_records, probing = self.page_size, False
                continue
            if chain.received != chain.number_of_records:
                if chain.received < chain.held_of_minute:
                    raise self.minute_shrank(chain)
                return
            if probing:
                raise self.overfull(chain)
            # Nothing new and exactly number_of_records sent: a page that ended the day, or a capped chain?
            probing = True
            number_of_records = self.page_size - 1 if self.page_size > 1 else 2

    def read_chain(self, number_of_records: int) -> Chain:
        """One cursor chain from the current minute: skip the records of it already held, keep the rest."""
        self.chains += 1
        chain = Chain(self.progress.minute, number_of_records, self.progress.minute_records)
        cursor: str | None = None
        while True:
            try:
                self.requests += 1
                page = self.fetch(chain.minute, number_of_records, cursor)
            except CursorExpiredError:
                self.logger.warning(
                    "Cursor expired while reading %s after %d records; continuing from %s (skipping the %d records "
                    "of that minute already read)",
                    self.where,
                    self.progress.records,
                    self.progress.minute,
                    self.progress.minute_records,
                )
                return chain
            new_records = []
            for raw in page[self.category]:
                chain.received += 1
                if chain.received <= chain.held_of_minute:
                    self.check_repeated(raw, chain)
                    continue
                timestamp = raw.get("timestamp")
                stamp = record_minute(timestamp)
                if stamp is not None and stamp[0] != self.progress.day_text:
                    raise self.other_day(stamp, chain)
                new_records.append(raw)
                self.progress.count(stamp, timestamp)
            if new_records:
                chain.new += len(new_records)
                self.keep(new_records)
            if not page["more_records"]:
                chain.ended = True
                return chain
            cursor = page["cursor"]

    # --- what must hold for exactly once --------------------------------------------------------------------------
    def check_repeated(self, raw: dict, chain: Chain) -> None:
        """A record the chain sends again must be of its start minute, or the server did not read the time as sent."""
        stamp = record_minute(raw.get("timestamp"))
        if stamp == (self.progress.day_text, chain.minute):
            return
        found = f"{stamp[0]} {stamp[1]}" if stamp else "no readable timestamp"
        raise KahunaAPIError(
            f"Kahuna Logs API answered the request for {self.where} from {chain.minute} "
            f'("timestamp": "{self.describe_minute(chain.minute)}") with a record of {found} where the '
            f"{chain.held_of_minute} records of {chain.minute} read before were due: it did not read the time as "
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

    def minute_shrank(self, chain: Chain) -> KahunaAPIError:
        """The server now sends fewer records of a minute than it did: positions would no longer be stable."""
        return KahunaAPIError(
            f"Kahuna Logs API now sends {chain.received} records of {chain.minute} for {self.where} where "
            f"{chain.held_of_minute} were read before (records were removed or reordered), so the day cannot be "
            f"continued exactly once; nothing of this day was emitted. Re-read the day from its start by setting "
            f"this stream's bookmark back to the day before."
        )

    def overfull(self, chain: Chain) -> OverfullMinuteError:
        """The one clear error of a minute that holds at least as many records as one chain delivers."""
        cap, held = self.page_size, max(chain.held_of_minute, self.page_size)
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
