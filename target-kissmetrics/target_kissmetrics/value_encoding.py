"""Values as the tracking API takes them: flat strings.

- nested objects are flattened to ``parent.child`` names;
- lists become one string: items encoded by these rules, commas in items replaced by spaces,
  joined with ``"; "`` (nested lists are flattened first; an empty list is dropped);
- ``datetime`` -> ISO 8601 in UTC (``2026-11-18T15:30:00+00:00``; naive values are taken as UTC),
  ``date``/``time`` -> ISO 8601;
- ``Decimal``/``float`` -> plain numbers without exponent (``1e-07`` -> ``0.0000001``);
- booleans -> ``true``/``false``; ``None`` (and empty objects) are dropped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

LIST_SEPARATOR = "; "


def encode_scalar(value: Any) -> str | None:
    """The string Kissmetrics receives for a scalar value, or ``None`` when it is dropped."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return _plain_decimal(Decimal(repr(value)))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite number")
        return _plain_decimal(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


def encode_list(items: Sequence[Any]) -> str | None:
    """A list as one comma-free string: items joined with ``"; "``; ``None`` if nothing is left."""
    parts = [part.replace(",", " ") for part in _list_parts(items)]
    return LIST_SEPARATOR.join(parts) if parts else None


def _list_parts(items: Sequence[Any]) -> Iterator[str]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from _list_parts(item)
        elif isinstance(item, Mapping):
            yield " ".join(f"{name}={value}" for name, value in flatten_properties(item, ""))
        else:
            encoded = encode_scalar(item)
            if encoded is not None:
                yield encoded


def flatten_properties(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(name, value)`` pairs: nested objects as ``parent.child``, lists joined, nulls dropped."""
    for name, value in record.items():
        full_name = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from flatten_properties(value, f"{full_name}.")
        elif isinstance(value, list | tuple):
            encoded = encode_list(value)
            if encoded is not None:
                yield full_name, encoded
        else:
            encoded = encode_scalar(value)
            if encoded is not None:
                yield full_name, encoded


def unix_seconds(value: Any) -> int:
    """Unix seconds from an ISO 8601 string, a datetime, a date or an epoch number (int, float or str)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float | Decimal):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp())
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(Decimal(text))
        except ArithmeticError:
            pass
        try:
            return unix_seconds(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise ValueError(f"{value!r} is neither ISO 8601 nor unix seconds") from None
    raise ValueError(f"{value!r} is not a timestamp")
