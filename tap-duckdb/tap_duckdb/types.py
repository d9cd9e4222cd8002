"""DuckDB column types as JSON schema, and DuckDB values as Singer record values.

One place for the type rules. DuckDB names a column's type as text (``information_schema.columns``):
``INTEGER``, ``DECIMAL(18,3)``, ``TIMESTAMP WITH TIME ZONE``, ``VARCHAR[]``, ``INTEGER[3]``,
``STRUCT(a INTEGER, "b c" VARCHAR)``, ``MAP(VARCHAR, INTEGER)``, ``ENUM('a', 'b')``, ``JSON``, ...
Every type maps to a schema, so any DuckDB file can be read: what has no JSON counterpart
(``INTERVAL``, ``UUID``, ``BLOB``, ``BIT``, extension types) becomes a string.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "VARINT",
    }
)
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})
DECIMAL_TYPES = frozenset({"DECIMAL", "NUMERIC"})
TIMESTAMP_TYPES = frozenset(
    {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME"}
)
TIME_TYPES = frozenset({"TIME", "TIME WITH TIME ZONE"})
#: Any JSON value (a JSON or UNION column), spelt out: some tools cannot read the empty schema ``{}``.
ANY_JSON = ("object", "array", "string", "number", "boolean", "null")


def column_schema(duckdb_type: str, *, nullable: bool = True, singer_decimal: bool = False) -> dict[str, Any]:
    """The JSON schema of a column of this DuckDB type."""
    schema = _schema(duckdb_type.strip(), singer_decimal)
    if nullable and isinstance(schema["type"], str):
        schema["type"] = [schema["type"], "null"]
    return schema


def _schema(duckdb_type: str, singer_decimal: bool) -> dict[str, Any]:
    list_start = _list_bracket(duckdb_type)
    if list_start is not None:
        return {"type": "array", "items": column_schema(duckdb_type[:list_start], singer_decimal=singer_decimal)}
    upper = duckdb_type.upper()
    head = upper.split("(", 1)[0].strip()
    if head == "STRUCT":
        fields = [_split_field(part) for part in _split_top_level(_inner(duckdb_type))]
        properties = {name: column_schema(kind, singer_decimal=singer_decimal) for name, kind in fields}
        return {"type": "object", "properties": properties}
    if head == "MAP":
        _, value_type = _split_top_level(_inner(duckdb_type))
        return {"type": "object", "additionalProperties": column_schema(value_type, singer_decimal=singer_decimal)}
    if head in ("JSON", "UNION"):
        return {"type": list(ANY_JSON)}
    if head in INTEGER_TYPES:
        return {"type": "integer"}
    if head in FLOAT_TYPES:
        return {"type": "number"}
    if head in DECIMAL_TYPES:
        return {"type": "string", "format": "x-singer.decimal"} if singer_decimal else {"type": "number"}
    if head == "BOOLEAN":
        return {"type": "boolean"}
    if head == "DATE":
        return {"type": "string", "format": "date"}
    if head in TIMESTAMP_TYPES:
        return {"type": "string", "format": "date-time"}
    if head in TIME_TYPES:
        return {"type": "string", "format": "time"}
    if head == "ENUM":
        return {"type": "string", "enum": [_unquote(label) for label in _split_top_level(_inner(duckdb_type))]}
    if head == "BLOB":
        return {"type": "string", "contentEncoding": "base64"}
    if head == "INTERVAL":
        return {"type": "string", "format": "duration"}
    if head == "UUID":
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}  # VARCHAR, BIT and types of extensions: as text


def is_json_type(duckdb_type: str) -> bool:
    """Whether the column holds JSON text (read as its parsed value)."""
    return duckdb_type.strip().upper() == "JSON"


def record_value(value: Any, *, json_text: bool = False) -> Any:
    """A DuckDB value as a Singer record value (JSON-encodable; ``json_text``: parse a JSON column)."""
    if value is None:
        return None
    if json_text and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, (str, bool, int, float, Decimal, dt.date, dt.time)):
        return value  # datetimes and dates are dt.date subclasses the SDK writes as ISO 8601
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, Mapping):
        return {str(key): record_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [record_value(item) for item in value]
    return str(value)


def iso_duration(value: dt.timedelta) -> str:
    """An interval as ISO 8601 (``P3DT4H5M6.5S``; negative intervals start with ``-``)."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P{value.days}D" if value.days else f"{sign}P"
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if seconds or value.microseconds or not (value.days or hours or minutes):
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        time_part += f"{seconds}{fraction}S"
    return text + (f"T{time_part}" if time_part else "")


# --- parsing DuckDB's type names ---------------------------------------------------------


def _list_bracket(duckdb_type: str) -> int | None:
    """Where the trailing ``[]`` / ``[N]`` of a list or array type starts, or None."""
    if not duckdb_type.endswith("]"):
        return None
    depth = 0
    for index in range(len(duckdb_type) - 1, -1, -1):
        char = duckdb_type[index]
        if char in ")]":
            depth += 1
        elif char in "([":
            depth -= 1
            if depth == 0:
                return index if char == "[" else None
    return None


def _inner(duckdb_type: str) -> str:
    """The text between a type's outer parentheses: ``STRUCT(a INTEGER)`` -> ``a INTEGER``."""
    return duckdb_type[duckdb_type.index("(") + 1 : duckdb_type.rindex(")")]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses, brackets and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _split_field(field: str) -> tuple[str, str]:
    """A STRUCT field ``name TYPE`` or ``"quoted name" TYPE`` as (name, type)."""
    if field.startswith('"'):
        end = field.index('"', 1)
        while end + 1 < len(field) and field[end + 1] == '"':  # "" escapes a quote
            end = field.index('"', end + 2)
        return field[1:end].replace('""', '"'), field[end + 1 :].strip()
    name, _, kind = field.partition(" ")
    return name, kind.strip()


def _unquote(label: str) -> str:
    return label[1:-1].replace("''", "'") if label.startswith("'") and label.endswith("'") else label
