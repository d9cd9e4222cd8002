"""The dead-letter file: one JSON line per invalid record, written so that it can be sent again.

A line is ``{"stream", "key", "reasons", "record", "time"}``, plus ``"time_extracted"`` when the RECORD message had
one, and ``"schema"`` and ``"key_properties"`` on the first dead letter of each stream in a run (a resend reads the
stream's SCHEMA back from there). The record is written as the sink received it (after stream maps, date-times
parsed): numbers keep every digit, NaN and infinities are written as ``NaN``/``Infinity`` (which Singer readers
accept), so a resend builds exactly the beacons the first run would have built.

:func:`resend_messages` turns such a file back into Singer messages (SCHEMA, then RECORD; never STATE).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import typing as t
from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec

from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.reader import decode_json

_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=str)
_NON_FINITE = {"nan": msgspec.Raw(b"NaN"), "inf": msgspec.Raw(b"Infinity"), "-inf": msgspec.Raw(b"-Infinity")}


class DeadLetterFileError(ConnectorError):
    """A dead-letter file that cannot be read back (a line that is not a dead letter)."""


def dead_letter_line(
    stream: str,
    key: Mapping[str, t.Any],
    reasons: list[str],
    record: Mapping[str, t.Any],
    *,
    time_extracted: t.Any = None,
    schema: Mapping[str, t.Any] | None = None,
) -> str:
    """One line of the dead-letter file (no newline)."""
    entry: dict[str, t.Any] = {
        "stream": stream,
        "key": key,
        "reasons": reasons,
        "record": record,
        "time": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    if time_extracted is not None:
        entry["time_extracted"] = time_extracted
    if schema is not None:
        entry.update(schema)
    return _ENCODER.encode(_exact(entry)).decode("utf-8")


def _exact(value: t.Any) -> t.Any:
    """``value`` with non-finite numbers as raw JSON (msgspec would write a NaN float as null)."""
    if isinstance(value, Mapping):
        return {str(name): _exact(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(item) for item in value]
    if isinstance(value, float | decimal.Decimal) and not math.isfinite(value):
        return _NON_FINITE[str(float(value)).lower()]
    return value


def resend_path(source: Path, now: dt.datetime | None = None) -> Path:
    """Where a resend of ``source`` writes the records that are still invalid: a new file next to it, named by the
    time (``-2``, ``-3``, ... for more resends in the same second)."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    suffix = source.suffix or ".jsonl"
    path = source.with_name(f"{source.stem}.resend-{stamp}{suffix}")
    serial = 1
    while path.exists():
        serial += 1
        path = source.with_name(f"{source.stem}.resend-{stamp}-{serial}{suffix}")
    return path


def resend_messages(source: Path, warn: t.Callable[[str], None]) -> Iterator[bytes]:
    """The dead letters of ``source`` as Singer messages, one JSON line each: a SCHEMA whenever a stream's schema
    is read (or first needed), then a RECORD per dead letter. A stream whose lines carry no schema (files written
    before 0.3.0) gets one with the record's fields and no types, with a warning.
    """
    schemas: dict[str, dict[str, t.Any]] = {}
    announced: dict[str, dict[str, t.Any]] = {}
    with source.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            letter = _dead_letter(line, number, source)
            stream = letter["stream"]
            if "schema" in letter:
                schemas[stream] = {"schema": letter["schema"], "key_properties": letter.get("key_properties") or []}
            if stream not in schemas:
                warn(
                    f"dead letters of stream '{stream}' in {source} carry no schema (written before 0.3.0): "
                    "resent with untyped fields (no schema check, no date-time parsing)"
                )
                fields: dict[str, t.Any] = {name: {} for name in letter["record"]}
                schemas[stream] = {"schema": {"type": "object", "properties": fields}, "key_properties": []}
            if announced.get(stream) is not schemas[stream]:
                announced[stream] = schemas[stream]
                yield _ENCODER.encode({"type": "SCHEMA", "stream": stream, **schemas[stream]})
            message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": letter["record"]}
            if letter.get("time_extracted") is not None:
                message["time_extracted"] = letter["time_extracted"]
            yield _ENCODER.encode(_exact(message))


def _dead_letter(line: bytes, number: int, source: Path) -> dict[str, t.Any]:
    try:
        letter = decode_json(line)
    except ValueError as error:
        raise DeadLetterFileError(f"line {number} of {source} is not valid JSON ({error})") from None
    if not isinstance(letter, dict) or not isinstance(letter.get("stream"), str):
        raise DeadLetterFileError(f"line {number} of {source} is not a dead letter (no 'stream')")
    if not isinstance(letter.get("record"), dict):
        raise DeadLetterFileError(f"line {number} of {source} is not a dead letter (no 'record' object)")
    return letter
