"""Kahuna logs day by day: the days to read, day workers, day order, keys and bookmarks.

- every UTC day from the bookmark (or ``start_date``) to ``end_date`` is read by ``cursor_chains.DayReader``: cursor
  chains from the minute of the last record held, exactly once under both readings of ``number_of_records``;
- a worker buffers one day of its category (``DayRecords``: in memory up to ``day_buffer_mb``, then in a temporary
  file, so memory stays flat however big a day is); up to ``max_concurrency`` days are read at once and emitted in
  day order (``connector_common.concurrency.ordered_map``);
- the days of all the categories a sync reads are one queue (``DayReadAhead``, in the order the streams sync): while
  the last days of one category are read, the workers left idle start the next category's first days, so a run of
  four categories keeps ``max_concurrency`` requests in flight from its first day to its last;
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
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import partial
from itertools import islice

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_kahuna_logs.client import KahunaClient, request_timestamp
from tap_kahuna_logs.connector_common.concurrency import ordered_map
from tap_kahuna_logs.connector_common.sdk_compat import write_state_now
from tap_kahuna_logs.cursor_chains import (
    DayReader,
    DayStopError,
    OverfullMinuteError,
    PageEdges,
    ReadDayFromStart,
    UnsortedDayError,
)
from tap_kahuna_logs.progress import DayProgress, progress_from_bookmark
from tap_kahuna_logs.records import FieldKinds, iso_timestamp, log_record, unknown_fields
from tap_kahuna_logs.spooled_day import DayRecords

if t.TYPE_CHECKING:
    from tap_kahuna_logs.tap import TapKahunaLogs


@dataclass
class DayRead:
    """One day as a worker read it: where it started, its new records, and how many of them may leave."""

    start: DayProgress
    skip: int  # records to skip before emitting (a 0.1.x bookmark: the day was re-read from 00:00)
    records: DayRecords
    emit_count: int  # every record, or those before where the day could not be read further (none, if unsorted)
    stop: DayStopError | None = None  # raised once the records before it have left
    unsorted: bool = False  # records came out of timestamp order: the day's bookmark carries no minute


class DayReadAhead:
    """The days of every stream a sync reads, in one queue of at most ``max_concurrency`` reads at once.

    The streams sync one after the other (singer-sdk: the selected ones, by name), each emitting its days
    in order; their reads need not wait: the queue lists every (stream, day) in that order, so while a
    stream's last days are read the next stream's first ones start. Results are held as ``ordered_map``
    holds them (at most twice ``max_concurrency`` days ahead); each stream takes its own days when its sync
    asks. A stream that is not next in the queue (the SDK synced another order) reads its days alone.
    """

    def __init__(self, streams: Sequence[DailyLogStream]) -> None:
        self.streams = list(streams)
        self._reads: Generator[DayRead, None, None] | None = None
        self._planned: deque[tuple[DailyLogStream, int]] = deque()  # (stream, its number of days), sync order
        self._closed = False

    @property
    def finished(self) -> bool:
        """Every planned stream took its days (or the queue was closed)."""
        return self._closed or (self._reads is not None and not self._planned)

    def day_reads(self, stream: DailyLogStream) -> Iterator[DayRead] | None:
        """``stream``'s days, read ahead, in day order; None if it is not the next stream of the queue."""
        if self._closed:
            return None
        if self._reads is None:
            # Planned when the first stream syncs: the catalog is applied and every stream's state prepared.
            syncing = sorted(
                (planned for planned in self.streams if planned.selected and not planned.parent_stream_type),
                key=lambda planned: planned.name,
            )
            plan = [(planned, planned.days_to_read()) for planned in syncing]
            for planned, _ in plan:
                _ = planned.retrying_sender  # built once, before the workers share it
            self._planned.extend((planned, len(days)) for planned, days in plan)
            items = [(planned, day) for planned, days in plan for day in days]
            workers = stream.settings.max_concurrency  # the tap's setting, shared by its streams
            self._reads = ordered_map(lambda item: item[0].read_day(item[1]), items, workers)
        if not self._planned or self._planned[0][0] is not stream:
            return None
        _, count = self._planned.popleft()
        return islice(self._reads, count)

    def close(self) -> None:
        """Stop the reads still going (waiting for the workers) and release every day buffered."""
        self._closed = True
        if self._reads is not None:
            self._reads.close()
        for stream in self.streams:
            stream.close_day_buffers()


class DailyLogStream(KahunaClient):
    """One Kahuna log category, read day by day; a stream names its category and schema.

    How each field is typed comes from the schema (``records.FieldKinds``); a field the schema does not name is
    kept in ``extra`` and reported once per run with a warning: it is a change of the Logs API's records.
    """

    replication_key = "timestamp"
    is_sorted = True
    # Resuming relies on the day/position bookmark; a record's timestamp out of order must not abort the run.
    check_sorted = False
    primary_keys = ("log_date", "log_position")
    # A bookmark inside a day resumes at its minute: a STATE every 1,000 records keeps a killed run's re-read short.
    STATE_MSG_FREQUENCY = 1000
    # log_record() already builds schema-typed JSON values; the SDK's recursive conform costs a third of the CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: How the schema's fields are typed (set from ``schema`` when a stream class is defined).
    field_kinds: t.ClassVar[FieldKinds]

    @override
    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("schema"), dict):
            cls.field_kinds = FieldKinds.of(cls.__dict__["schema"])

    @override
    def __init__(self, tap: TapKahunaLogs, **kwargs: t.Any) -> None:
        super().__init__(tap, **kwargs)
        #: The tap's queue of every stream's days (``TapKahunaLogs.discover_streams``); None: this stream reads alone.
        self.read_ahead: DayReadAhead | None = None
        self._day_buffers: list[DayRecords] = []
        self._day_buffers_lock = threading.Lock()
        self.page_edges = PageEdges()  # whether this server's cursor pages overlap, learned once for every day
        self.reported_fields: set[str] = set()  # unknown fields already warned about

    # --- reading a day -------------------------------------------------------------
    def read_day(self, day: date) -> DayRead:
        """This category's records of one UTC day from its start position, in server order (in a worker thread)."""
        start, skip = self._day_starts.get(day, (DayProgress(day), 0))
        try:
            return self._read_day(start, skip)
        except ReadDayFromStart as signal:
            # The bookmark's records arrived before those after its minute: from 00:00 they come first.
            self.logger.info(
                "%s: records came out of timestamp order after the bookmark's minute; reading the day again from "
                "00:00 and skipping the %d records emitted before by position",
                signal,
                start.records,
            )
            return self._read_day(DayProgress(day), start.records, bookmark_ends_with=start.last_timestamp)

    def _read_day(self, start: DayProgress, skip: int, bookmark_ends_with: str | None = None) -> DayRead:
        """The day read from ``start``; ``skip`` records to skip when emitting. ``bookmark_ends_with``: the
        timestamp the record at position ``skip - 1`` must have (the bookmark's last one), else nothing of the day
        is emitted."""
        day = start.day
        limit_mb = self.settings.day_buffer_mb
        records = DayRecords(int(limit_mb * 1024 * 1024))
        with self._day_buffers_lock:
            self._day_buffers.append(records)
        last_skipped: list[t.Any] = []  # the raw timestamp at position skip - 1, once read

        def keep_and_note_last_skipped(page: list[dict]) -> None:
            if not last_skipped and records.count + len(page) >= skip:
                last_skipped.append(page[skip - 1 - records.count].get("timestamp"))
            records.extend(page)

        reader = DayReader(
            category=self.category,
            progress=start.copy(),
            page_size=self.settings.page_size,
            fetch=partial(self.fetch_page, day),
            keep=records.extend if bookmark_ends_with is None else keep_and_note_last_skipped,
            describe_minute=partial(request_timestamp, day, timestamp_format=self.settings.timestamp_format),
            logger=self.logger,
            edges=self.page_edges,
        )
        try:
            reader.read()
        except ReadDayFromStart:
            records.close()  # read again from 00:00 into a new buffer
            raise
        except DayStopError as stop:
            if isinstance(stop, OverfullMinuteError):
                emit_count = records.count - reader.progress.records_of_minute_since(start)
            else:
                emit_count = records.count if stop.keeps_records else 0
            return DayRead(start, skip, records, emit_count, stop, reader.progress.unsorted)
        if bookmark_ends_with is not None and (
            not last_skipped or iso_timestamp(last_skipped[0]) != iso_timestamp(bookmark_ends_with)
        ):
            found = f"a record of {iso_timestamp(last_skipped[0])}" if last_skipped else "no record"
            mismatch = UnsortedDayError(
                f"Kahuna Logs API sends {reader.where} out of timestamp order, and read from 00:00 it has {found} at "
                f"position {skip - 1}, where the bookmark's last record ({bookmark_ends_with}) was: the records "
                f"emitted before cannot be matched to positions from 00:00; nothing more of this day was emitted. "
                f"Re-read the day from its start by setting this stream's bookmark back to the day before."
            )
            return DayRead(start, skip, records, 0, mismatch, unsorted=True)
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
        if reader.progress.unsorted and not start.unsorted:
            self.logger.info(
                "%s: records came out of timestamp order; the day was read from 00:00 by position, and its "
                "bookmark makes the next run do the same",
                reader.where,
            )
        return DayRead(start, skip, records, records.count, unsorted=reader.progress.unsorted)

    # --- the sync --------------------------------------------------------------------
    def days_to_read(self) -> list[date]:
        """The days to read: from the bookmark's (or ``start_date``) to ``end_date`` (default today, UTC).

        Records where the bookmark's day resumes in ``_day_starts``.
        """
        resume = progress_from_bookmark(self.stream_state)
        self._day_starts: dict[date, tuple[DayProgress, int]] = {resume[0].day: resume} if resume else {}
        first = resume[0].day if resume else self.settings.start_date
        today = datetime.now(timezone.utc).date()
        last = self.settings.end_date or today
        if last > today:
            # A future day read now is empty, and its bookmark would let later runs skip it once it has records.
            self.logger.info(
                "%s: end_date %s is after today (UTC); reading to %s", self.name, last.isoformat(), today.isoformat()
            )
            last = today
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> Iterator[dict]:
        """Every record from the bookmark on, in day order, updating the bookmark as records leave."""
        queued = self.read_ahead.day_reads(self) if self.read_ahead is not None else None
        if queued is not None:
            completed = False
            try:
                for day_read in queued:
                    yield from self._emit_day(day_read)
                completed = True
            finally:
                self.close_day_buffers()
                assert self.read_ahead is not None
                if not completed or self.read_ahead.finished:  # a failed sync stops the reads of the streams after
                    self.read_ahead.close()
            return
        days = self.days_to_read()
        _ = self.retrying_sender  # built once, before the day workers share it
        day_reads = ordered_map(self.read_day, days, self.settings.max_concurrency)
        try:
            for day_read in day_reads:
                yield from self._emit_day(day_read)
        finally:
            day_reads.close()  # waits for the workers still reading
            self.close_day_buffers()

    def close_day_buffers(self) -> None:
        """Release the days this stream buffered (memory or temporary files)."""
        with self._day_buffers_lock:
            buffers, self._day_buffers = self._day_buffers, []
        for buffer in buffers:
            buffer.close()

    def _emit_day(self, day_read: DayRead) -> Iterator[dict]:
        """One day's records in order, the bookmark moving with them, then a STATE (and the day's stop, if any)."""
        progress = day_read.start.copy()
        progress.unsorted = (
            progress.unsorted or day_read.unsorted
        )  # every bookmark of the day then re-reads it by position
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
        """A Singer record of this category (see ``records.log_record``); new unknown fields are reported."""
        record = log_record(raw, day, position, self.field_kinds)
        if record["extra"] and (new := unknown_fields(record) - self.reported_fields):
            self.reported_fields |= new
            self.logger.warning(
                "%s: the Logs API sent field(s) %s that this tap's schema does not name: kept in `extra` "
                "(a change of the API's records; the tap needs a new version to type them)",
                self.name,
                ", ".join(sorted(new)),
            )
        return record
