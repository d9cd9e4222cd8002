"""How far into one UTC day a category has been read or emitted, and the bookmark that records it (pure).

The Logs API can only be asked "from this minute to the end of the day" (``timestamp``, minute precision), so a
position inside a day is the minute of the last record held plus how many records of that minute are held: a
request from that minute sends those records again first, and skipping that many lands on the next record.
``records`` counts the day's records so far: the next record's ``log_position``.

Records are expected in timestamp order (the API selects by time), but the seed never says so. The position's
minute never moves back: a record stamped earlier than the current minute (or with no readable timestamp) is
counted in ``records`` only, and marks the day ``unsorted``: a request from a minute would not send such records
again, so the day is then continued from 00:00 by position (``cursor_chains``), and its bookmark carries no
``last_timestamp`` (the next run re-reads the day from 00:00 and skips ``day_records_emitted``).
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field
from datetime import date

from tap_kahuna_logs.records import iso_timestamp

BOOKMARK_DAY = "day"
BOOKMARK_DAY_RECORDS = "day_records_emitted"
BOOKMARK_LAST_TIMESTAMP = "last_timestamp"
BOOKMARK_MINUTE_RECORDS = "minute_records_emitted"
DAY_START = "00:00"
ISO_LENGTH = len("2026-11-18T15:29:59.123456+00:00")  # records.iso_timestamp's form

# A UTC timestamp as the API sends it (``2026-11-18 15:29:59.123456``) or as records carry it (ISO, ``+00:00``):
# its day and minute are read without parsing; anything else goes through ``iso_timestamp``.
_PLAIN_UTC = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:\+00:00|Z)?")


def record_minute(timestamp: t.Any) -> tuple[str, str] | None:
    """(UTC day ``YYYY-MM-DD``, minute ``HH:MM``) of a record timestamp, or None when it is not readable."""
    if isinstance(timestamp, str) and (_is_record_iso(timestamp) or _PLAIN_UTC.fullmatch(timestamp)):
        return timestamp[:10], timestamp[11:16]
    iso = iso_timestamp(timestamp)
    return (iso[:10], iso[11:16]) if iso else None


def _is_record_iso(timestamp: str) -> bool:
    """Whether ``timestamp`` is ``iso_timestamp``'s own UTC form (a record's ``timestamp``): a quick check."""
    return (
        len(timestamp) == ISO_LENGTH
        and timestamp.endswith("+00:00")
        and timestamp[10] == "T"
        and timestamp[11:13].isdigit()
        and timestamp[14:16].isdigit()
    )


@dataclass
class DayProgress:
    """A position inside one category's UTC day: records so far, the minute of the last one, that minute's count."""

    day: date
    records: int = 0
    minute: str = DAY_START
    minute_records: int = 0
    last_timestamp: str | None = None  # the timestamp of the last record of ``minute``, as given to ``advance``
    unsorted: bool = False  # a record came out of timestamp order (or had no readable timestamp)
    day_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.day_text = self.day.isoformat()

    def copy(self) -> DayProgress:
        """An independent copy (one for reading, one for emitting)."""
        return DayProgress(self.day, self.records, self.minute, self.minute_records, self.last_timestamp, self.unsorted)

    def advance(self, timestamp: t.Any) -> None:
        """Count one more record of the day, stamped ``timestamp`` (raw or ISO)."""
        self.count(record_minute(timestamp), timestamp)

    def count(self, stamp: tuple[str, str] | None, timestamp: t.Any) -> None:
        """Count one more record of the day: ``stamp`` is ``record_minute(timestamp)``, already known."""
        self.records += 1
        if stamp is None or stamp[0] != self.day_text or stamp[1] < self.minute:
            self.unsorted = True
            return
        if stamp[1] == self.minute:
            self.minute_records += 1
        else:
            self.minute, self.minute_records = stamp[1], 1
        self.last_timestamp = timestamp

    def records_of_minute_since(self, start: DayProgress) -> int:
        """How many records of the current minute were counted after ``start`` (an earlier copy)."""
        held_before = start.minute_records if start.minute == self.minute else 0
        return self.minute_records - held_before

    def bookmark(self) -> dict[str, t.Any]:
        """The stream bookmark of this position."""
        return {
            BOOKMARK_DAY: self.day_text,
            BOOKMARK_DAY_RECORDS: self.records,
            BOOKMARK_LAST_TIMESTAMP: None if self.unsorted else self.last_timestamp,
            BOOKMARK_MINUTE_RECORDS: self.minute_records,
        }


def progress_from_bookmark(bookmark: t.Mapping[str, t.Any]) -> tuple[DayProgress, int] | None:
    """Where to resume the bookmark's day, and how many of the records read from there to skip; None: no bookmark.

    A bookmark with ``last_timestamp`` resumes at its minute (skip 0: the minute's emitted records are already
    counted). One without (written by 0.1.x, or before any record with a readable timestamp) re-reads the day
    from 00:00 and skips ``day_records_emitted`` records, as 0.1.x did.
    """
    if not bookmark.get(BOOKMARK_DAY):
        return None
    day = date.fromisoformat(str(bookmark[BOOKMARK_DAY]))
    emitted = int(bookmark.get(BOOKMARK_DAY_RECORDS) or 0)
    stamp = record_minute(bookmark.get(BOOKMARK_LAST_TIMESTAMP))
    minute_records = int(bookmark.get(BOOKMARK_MINUTE_RECORDS) or 0)
    if stamp is None or stamp[0] != day.isoformat() or not 0 < minute_records <= emitted:
        return DayProgress(day), emitted
    return DayProgress(day, emitted, stamp[1], minute_records, bookmark[BOOKMARK_LAST_TIMESTAMP]), 0
