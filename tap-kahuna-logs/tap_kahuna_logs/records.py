"""Row building: from a raw Kahuna log record to a typed Singer record (pure functions)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

#: The columns the tap adds to every record; the rest of a schema's properties are fields of the API's records.
TAP_COLUMNS = frozenset({"log_date", "log_position", "extra"})
#: Where an unparseable ``timestamp`` goes in ``extra`` (``timestamp`` is a known field, parsed on its own).
TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldKinds:
    """How each field the schema names is typed: credential lists, strings, booleans (read from the schema)."""

    credentials: frozenset[str]
    strings: frozenset[str]
    booleans: frozenset[str]

    @classmethod
    def of(cls, schema: dict[str, Any]) -> FieldKinds:
        """The kinds of a stream's schema: an array with a ``<name>_by_type`` sibling is a credential list.

        A property of another type is a mistake in the schema, raised here (when the stream class is defined).
        """
        properties = schema["properties"]
        kinds: dict[str, set[str]] = {"credentials": set(), "strings": set(), "booleans": set()}
        for name, prop in properties.items():
            if name in TAP_COLUMNS or name == TIMESTAMP or name.endswith("_by_type"):
                continue
            types = prop.get("type", [])
            if "array" in types and f"{name}_by_type" in properties:
                kinds["credentials"].add(name)
            elif "boolean" in types:
                kinds["booleans"].add(name)
            elif "string" in types:
                kinds["strings"].add(name)
            else:
                raise ValueError(f"schema property {name!r} has a type the record builder does not know: {types}")
        return cls(**{kind: frozenset(names) for kind, names in kinds.items()})


def log_record(raw: dict[str, Any], day: date, position: int, kinds: FieldKinds) -> dict[str, Any]:
    """A Singer record: typed known fields, parsed credentials, the key, and unknown fields in ``extra``."""
    record: dict[str, Any] = {"log_date": day.isoformat(), "log_position": position, "timestamp": None}
    extra: dict[str, Any] = {}
    for name, value in raw.items():
        if name == TIMESTAMP:
            record["timestamp"] = iso_timestamp(value)
            if record["timestamp"] is None and value is not None:
                extra["timestamp"] = value
        elif name in kinds.credentials:
            credentials = credential_list(value)
            record[name] = credentials
            record[f"{name}_by_type"] = credentials_by_type(credentials)
        elif name in kinds.strings:
            record[name] = as_string(value)
        elif name in kinds.booleans:
            record[name] = as_boolean(value)
        else:
            extra[name] = value
    record["extra"] = extra
    return record


def unknown_fields(record: dict[str, Any]) -> set[str]:
    """The API fields of a built record that its schema does not name (kept in ``extra``)."""
    return {name for name in record["extra"] if name != TIMESTAMP}


def iso_timestamp(value: Any) -> str | None:
    """``2026-11-18 15:29:59.123456`` (UTC) -> ``2026-11-18T15:29:59.123456+00:00``."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def credential_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def credentials_by_type(credentials: list[str] | None) -> dict[str, list[str]] | None:
    """``["email:a:b@x.com", "12345"]`` -> ``{"email": ["a:b@x.com"]}`` (split on the first ``:``)."""
    if credentials is None:
        return None
    by_type: dict[str, list[str]] = {}
    for credential in credentials:
        kind, separator, value = credential.partition(":")
        if separator and kind:
            by_type.setdefault(kind, []).append(value)
    return by_type


def as_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)


def as_boolean(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "t")
    return bool(value)
