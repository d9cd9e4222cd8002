"""Kahuna logs day by day: the days to read, day workers, day order, keys and bookmarks.

- every UTC day from the bookmark (or ``start_date``) to ``end_date`` is read by ``day_reader.DayReader``: cursor
  chains from the minute of the last record held, exactly once under both readings of ``number_of_records``;
- a worker buffers one day of its category (``DayRecords``: in memory up to ``day_buffer_mb``, then in a temporary
  file, so memory stays flat however big a day is); up to ``max_concurrency`` days are read at once and emitted in
  day order (``connector_common.concurrency.ordered_map``);
- a record's key is ``log_date`` + ``log_position`` (its 0-based ordinal among that category's records of that
  day). Records only ever get appended to a day, so positions stay stable when today's partial day is read again,
  genuine repeats keep distinct keys, and a re-sent record keeps its key;
- the bookmark (``progress.DayProgress.bookmark``) is ``day``, ``day_records_emitted``, ``last_timestamp`` and
  ``minute_records_emitted``: the next run asks from that minute and skips the records of it already emitted.
  Days before it are complete. A bookmark without ``last_timestamp`` (0.1.x) re-reads its day from 00:00 and skips
  ``day_records_emitted`` records;
- a minute that one cursor chain cannot deliver stops the run after the records before it (and their bookmark).
"""

from __future__ import annotations

import threading
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import partial

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_kahuna_logs.client import KahunaClient, request_timestamp
from tap_kahuna_logs.connector_common.concurrency import ordered_map
from tap_kahuna_logs.connector_common.sdk_compat import write_state_now
from tap_kahuna_logs.day_buffer import DayRecords
from tap_kahuna_logs.day_reader import DayReader, OverfullMinuteError
from tap_kahuna_logs.progress import DayProgress, progress_from_bookmark
from tap_kahuna_logs.records import log_record


@dataclass
class DayRead:
    """One day as a worker read it: where it started, its new records, and how many of them may leave."""

    start: DayProgress
    skip: int  # records to skip before emitting (a 0.1.x bookmark: the day was re-read from 00:00)
    records: DayRecords
    emit_count: int  # every record, or those before a minute that could not be read
    stop: OverfullMinuteError | None = None  # raised once the records before that minute have left


class DailyLogStream(KahunaClient):
    """One Kahuna log category, read day by day; a stream names its category and known fields."""

    replication_key = "timestamp"
    is_sorted = True
    # Resuming relies on the day/position bookmark; a record's timestamp out of order must not abort the run.
    check_sorted = False
    primary_keys = ("log_date", "log_position")
    # A bookmark inside a day resumes at its minute: a STATE every 1,000 records keeps a killed run's re-read short.
    STATE_MSG_FREQUENCY = 1000
    # log_record() already builds schema-typed JSON values; the SDK's recursive conform costs a third of the CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Fields that hold lists of ``type:value`` credentials; each also gets a ``<name>_by_type`` object.
    credential_fields: tuple[str, ...] = ()
    #: Known scalar fields by JSON type; anything else goes to ``extra``.
    string_fields: tuple[str, ...] = ()
    boolean_fields: tuple[str, ...] = ()

    # --- reading a day -------------------------------------------------------------
    def read_day(self, day: date) -> DayRead:
        """This category's records of one UTC day from its start position, in server order (in a worker thread)."""
        start, skip = self._day_starts.get(day, (DayProgress(day), 0))
        limit_mb = self.settings.day_buffer_mb
        records = DayRecords(int(limit_mb * 1024 * 1024))
        with self._day_buffers_lock:
            self._day_buffers.append(records)
        reader = DayReader(
            category=self.category,
            progress=start.copy(),
            page_size=self.settings.page_size,
            fetch=partial(self.fetch_page, day),
            keep=records.extend,
            describe_minute=partial(request_timestamp, day, timestamp_format=self.settings.timestamp_format),
            logger=self.logger,
        )
        try:
            reader.read()
        except OverfullMinuteError as stop:
            before_minute = records.count - reader.progress.records_of_minute_since(start)
            return DayRead(start, skip, records, before_minute, stop)
        self.logger.debug(
            "%s: %d new records in %d chains, %d requests", reader.where, records.count, reader.chains, reader.requests
        )
        if records.on_disk:
            self.logger.info(
                "%s logs of %s: %d records, more than day_buffer_mb (%s MB); buffered in a temporary file",
                self.category,
                day,
                records.count,
                f"{limit_mb:g}",
            )
        return DayRead(start, skip, records, records.count)

    # --- the sync --------------------------------------------------------------------
    def days_to_read(self) -> list[date]:
        """The days to read: from the bookmark's (or ``start_date``) to ``end_date`` (default today, UTC).

        Records where the bookmark's day resumes in ``_day_starts``.
        """
        resume = progress_from_bookmark(self.stream_state)
        self._day_starts: dict[date, tuple[DayProgress, int]] = {resume[0].day: resume} if resume else {}
        first = resume[0].day if resume else self.settings.start_date
        last = self.settings.end_date or datetime.now(timezone.utc).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterator[dict]:
        """Every record from the bookmark on, in day order, updating the bookmark as records leave."""
        days = self.days_to_read()
        _ = self.retrying_sender  # built once, before the day workers share it
        self._day_buffers: list[DayRecords] = []
        self._day_buffers_lock = threading.Lock()
        day_reads = ordered_map(self.read_day, days, self.settings.max_concurrency)
        try:
            for day_read in day_reads:
                yield from self._emit_day(day_read)
        finally:
            day_reads.close()  # waits for the workers still reading
            for buffer in self._day_buffers:
                buffer.close()

    def _emit_day(self, day_read: DayRead) -> Iterator[dict]:
        """One day's records in order, the bookmark moving with them, then a STATE (and the day's stop, if any)."""
        progress = day_read.start.copy()
        day = progress.day
        if day_read.skip > day_read.records.count:
            self.logger.warning(
                "%s: the bookmark says %d records of %s were emitted but the API now has %d; emitting none",
                self.name,
                day_read.skip,
                day,
                day_read.records.count,
            )
        for index, raw in enumerate(day_read.records):
            if index == day_read.emit_count:
                break
            record = self.to_record(raw, day, progress.records)
            progress.advance(record["timestamp"])
            if index >= day_read.skip:
                self.stream_state.update(progress.bookmark())
                yield record
        if day_read.skip <= progress.records:
            self.stream_state.update(progress.bookmark())
        write_state_now(self)  # so a killed run resumes from the end of this day
        if day_read.stop is not None:
            raise day_read.stop

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
