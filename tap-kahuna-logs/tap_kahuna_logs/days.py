"""Reading Kahuna logs day by day: cursor chains, restarts after an expired cursor, day order, bookmarks.

- every UTC day from the bookmark (or ``start_date``) to ``end_date`` is requested from 00:00 with ``timestamp``,
  then ``cursor`` is followed while ``more_records``;
- a worker buffers one day of its category (``DayRecords``: in memory up to ``day_buffer_mb``, then in a temporary
  file, so memory stays flat however big a day is); up to ``max_concurrency`` days are read at once and emitted in
  day order (``connector_common.concurrency.ordered_map``);
- an expired cursor (400 naming the cursor) restarts the day from 00:00 and the records already buffered are
  skipped by their position, so nothing is lost or repeated;
- a record's key is ``log_date`` + ``log_position`` (its 0-based ordinal among that category's records of that
  day). Records only ever get appended to a day, so positions stay stable when today's partial day is read again,
  genuine repeats keep distinct keys, and a re-sent record keeps its key;
- the bookmark is ``day`` + ``day_records_emitted``: the next run re-reads that day and skips what was emitted.
  Days before it are complete.
"""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_kahuna_logs.client import CursorExpiredError, KahunaClient
from tap_kahuna_logs.connector_common.concurrency import ordered_map
from tap_kahuna_logs.connector_common.sdk_compat import write_state_now
from tap_kahuna_logs.day_buffer import DayRecords
from tap_kahuna_logs.payloads import KahunaAPIError
from tap_kahuna_logs.records import log_record

BOOKMARK_DAY = "day"
BOOKMARK_DAY_RECORDS = "day_records_emitted"
MAX_RESTARTS_WITHOUT_PROGRESS = 10


class DailyLogStream(KahunaClient):
    """One Kahuna log category, read day by day; a stream names its category and known fields."""

    replication_key = "timestamp"
    is_sorted = True
    # Resuming relies on the day/position bookmark; a record's timestamp out of order must not abort the run.
    check_sorted = False
    primary_keys = ("log_date", "log_position")
    # log_record() already builds schema-typed JSON values; the SDK's recursive conform costs a third of the CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Fields that hold lists of ``type:value`` credentials; each also gets a ``<name>_by_type`` object.
    credential_fields: tuple[str, ...] = ()
    #: Known scalar fields by JSON type; anything else goes to ``extra``.
    string_fields: tuple[str, ...] = ()
    boolean_fields: tuple[str, ...] = ()

    # --- reading a day -------------------------------------------------------------
    def read_day(self, day: date) -> DayRecords:
        """All raw records of this category for one UTC day, in server order (runs in a worker thread)."""
        limit_mb = self.settings.day_buffer_mb
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
                    f"{limit_mb:g}",
                )
            return records

    def _read_day_into(self, day: date, records: DayRecords) -> None:
        """Page through ``day`` from 00:00; append only positions not in ``records`` yet."""
        position = 0
        cursor: str | None = None
        while True:
            page = self.fetch_page(day, cursor)
            page_records = page[self.category]
            already = records.count - position
            records.extend(page_records[already:] if already > 0 else page_records)
            position += len(page_records)
            if not page["more_records"]:
                return
            cursor = page["cursor"]

    # --- the sync --------------------------------------------------------------------
    def days_to_read(self) -> tuple[list[date], date | None, int]:
        """The days to read, the bookmark day and how many of its records were already emitted."""
        state = self.stream_state
        bookmark_day = date.fromisoformat(state[BOOKMARK_DAY]) if state.get(BOOKMARK_DAY) else None
        emitted = int(state.get(BOOKMARK_DAY_RECORDS, 0)) if bookmark_day else 0
        first = bookmark_day or self.settings.start_date
        last = self.settings.end_date or datetime.now(timezone.utc).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return days, bookmark_day, emitted

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterator[dict]:
        """Every record from the bookmark on, in day order, updating the bookmark as records leave."""
        days, bookmark_day, emitted = self.days_to_read()
        _ = self.retrying_sender  # built once, before the day workers share it
        self._day_buffers: list[DayRecords] = []
        self._day_buffers_lock = threading.Lock()
        buffered_days = ordered_map(self.read_day, days, self.settings.max_concurrency)
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
            write_state_now(self)  # so a killed run resumes from the end of this day

    def _set_bookmark(self, day: date, records_emitted: int) -> None:
        state = self.stream_state
        state[BOOKMARK_DAY] = day.isoformat()
        state[BOOKMARK_DAY_RECORDS] = records_emitted

    def to_record(self, raw: dict, day: date, position: int) -> dict:
        """A Singer record of this category (see ``records.log_record``)."""
        return log_record(
            raw,
            day,
            position,
            credential_fields=self.credential_fields,
            string_fields=self.string_fields,
            boolean_fields=self.boolean_fields,
        )
