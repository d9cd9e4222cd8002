"""A given value as a setting's value: strings coerced to the declared type (``--config=ENV`` and Meltano pass
numbers and booleans as strings, lists and objects as JSON text), bounds checked, deprecated names taken, and
the JSON and Python forms of a value. Each problem is a short phrase naming what is wrong ("must be ...").
"""

from __future__ import annotations

import json
import math
import re
import types
import typing as t
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .setting_fields import SettingField

_TRUE = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f"})
#: ``2026-11-01``, optionally with an ISO time of day and offset (``2026-11-01T00:00:00Z``), nothing else.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?")


def is_unset(value: t.Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def take_deprecated_names(config: dict[str, t.Any], field: SettingField, warnings: list[str]) -> t.Any:
    """The setting's value, from its name or (with a warning) a deprecated name; the old keys are removed."""
    value = config.get(field.name)
    for old_name in field.spec.deprecated_names:
        if old_name not in config:
            continue
        old_value = config.pop(old_name)
        if is_unset(value):
            value = old_value
            warnings.append(f"setting '{old_name}' is deprecated: use '{field.name}' (it means the same)")
        else:
            warnings.append(f"setting '{old_name}' is deprecated and ignored: '{field.name}' is set too")
    return value


def coerce(field: SettingField, value: t.Any) -> tuple[t.Any, str | None]:
    """The value as its declared kind, or a problem ("must be ...")."""
    coercers: dict[str, Callable[[t.Any], tuple[t.Any, str | None]]] = {
        "string": _as_string,
        "integer": _as_integer,
        "number": _as_number,
        "boolean": _as_boolean,
        "date": _as_date,
        "array": _as_string_list,
        "object": _as_object,
    }
    return coercers[field.kind](value)


def _as_string(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, str):
        return value, None
    return None, f"must be a string (got {_shown(value)})"


def _as_integer(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, bool):
        return None, f"must be a whole number (got {_shown(value)})"
    if isinstance(value, int):
        return value, None
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return int(value), None
    if isinstance(value, str):
        try:
            return int(value.strip()), None
        except ValueError:
            pass
    return None, f"must be a whole number (got {_shown(value)})"


def _as_number(value: t.Any) -> tuple[t.Any, str | None]:
    problem = f"must be a number, e.g. 0.5 (got {_shown(value)})"
    if isinstance(value, bool):
        return None, problem
    if isinstance(value, int):
        return value, None
    if isinstance(value, float | Decimal):
        number = float(value)
        return (number, None) if math.isfinite(number) else (None, problem)
    if isinstance(value, str):
        try:
            number = float(Decimal(value.strip()))
        except (InvalidOperation, ValueError):
            return None, problem
        return (number, None) if math.isfinite(number) else (None, problem)
    return None, problem


def _as_boolean(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE, None
    return None, f"must be true or false (got {_shown(value)})"


def _as_date(value: t.Any) -> tuple[t.Any, str | None]:
    """Only ``YYYY-MM-DD`` (or an ISO 8601 date-time of that day): no other order of day and month is guessed."""
    if isinstance(value, datetime):
        return value.date().isoformat(), None
    if isinstance(value, date):
        return value.isoformat(), None
    if isinstance(value, str) and _ISO_DATE.fullmatch(text := value.strip()):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat(), None
        except ValueError:
            pass  # a month over 12, a day past the month's end or an hour over 23
    return None, f"must be a date like 2026-11-01 (got {_shown(value)})"


def _as_string_list(value: t.Any) -> tuple[t.Any, str | None]:
    value, parsed = _parsed_json_text(value, "[")
    if not parsed or not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        return None, f'must be a list of strings, e.g. ["a", "b"] (got {_shown(value)})'
    return list(value), None


def _as_object(value: t.Any) -> tuple[t.Any, str | None]:
    value, parsed = _parsed_json_text(value, "{")
    if not parsed or not isinstance(value, Mapping):
        return None, f"must be an object (a mapping of names to values), not {_kind_name(value)}"
    return dict(value), None


def _parsed_json_text(value: t.Any, opener: str) -> tuple[t.Any, bool]:
    """A list or object given as JSON text (as environment variables give them) parsed; False when it is not JSON."""
    if not (isinstance(value, str) and value.strip().startswith(opener)):
        return value, True
    try:
        return json.loads(value), True
    except ValueError:
        return value, False


def bounds_problem(field: SettingField, value: t.Any) -> str | None:
    spec = field.spec
    if field.kind in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            return f"must be {_number(spec.minimum)} or more (got {_number(value)})"
        if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            return f"must be more than {_number(spec.exclusive_minimum)} (got {_number(value)})"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be {_number(spec.maximum)} or less (got {_number(value)})"
    if spec.options:
        chosen = value if field.kind == "array" else [value]
        unknown = [item for item in chosen if item not in spec.options]
        if unknown:
            return f"must be one of {', '.join(spec.options)} (got {', '.join(map(repr, unknown))})"
    return None


def json_value(value: t.Any) -> t.Any:
    """A value as it travels in a JSON config (tuples as lists, read-only mappings as dicts)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    return value


def python_value(field: SettingField, value: t.Any) -> t.Any:
    """A config value as the settings object holds it (lists as tuples, dates as dates, objects read-only)."""
    if value is None:
        return None
    if field.kind == "array":
        return tuple(value)
    if field.kind == "date":
        return date.fromisoformat(str(value)[:10])
    if field.kind == "number":
        return float(value)
    if field.kind == "object":
        return types.MappingProxyType(dict(value))
    return value


def _shown(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_name(value: t.Any) -> str:
    return {str: "str", list: "list", int: "int", float: "float", bool: "bool"}.get(type(value), type(value).__name__)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
