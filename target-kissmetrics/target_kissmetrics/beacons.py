"""Beacon building: from a Singer record and a stream mapping to encoded Kissmetrics beacons.

One place for every encoding and validation rule. A record yields its beacons or an
:class:`InvalidRecordError` naming every rule it breaks: never some of its beacons.

Value encoding (the tracking API only takes flat strings):

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
import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from target_kissmetrics.connector_common.redaction import REDACTED

MAX_IDENTITY_CHARS = 255
MAX_NAME_CHARS = 255
MAX_VALUE_CHARS = 512
LIST_SEPARATOR = "; "
KINDS = {"event": "e", "set": "s", "alias": "a"}
#: The longest beacon URL (scheme, host, path and query, ``_k`` included) the target sends: the tracking server
#: answered HTTP 400 to a URL of 16 KB, and common HTTP servers refuse request lines of about 8 KB.
MAX_BEACON_URL_BYTES = 8000
#: Percent-encoding turns one character into at most 12 bytes (a 4-byte UTF-8 character, each byte as ``%XX``).
_MAX_ENCODED_BYTES_PER_CHAR = 12
#: The keys of one ``streams`` mapping object, each with the type of its value.
MAPPING_KEYS: dict[str, type] = {
    "kind": str,
    "person": str,
    "event": str,
    "alias": str,
    "timestamp": str,
    "properties": list,
    "exclude": list,
}
# Singer metadata columns change on every run (received/batched at): sending them would defeat dedup.
SINGER_METADATA_PREFIX = "_sdc_"
_TEMPLATE_FIELD = re.compile(r"\{([^{}|]+)(?:\|([a-z_]+))?\}")
_TEMPLATE_FILTERS: dict[str, Callable[[str], str]] = {"urldecode": unquote, "lower": str.lower, "upper": str.upper}


class InvalidRecordError(ValueError):
    """A record that breaks one or more beacon rules; ``reasons`` names each one."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


class MappingError(ValueError):
    """A ``streams`` setting that cannot work (unknown kind, bad template)."""


# Parameter names repeat on every record: each is encoded once (up to a bound: nested objects may bring any key).
_ENCODED_NAMES: dict[str, str] = {}
_MAX_ENCODED_NAMES = 10_000


def _encoded_name(name: str) -> str:
    encoded = _ENCODED_NAMES.get(name)
    if encoded is None:
        encoded = quote(name, safe="")
        if len(_ENCODED_NAMES) < _MAX_ENCODED_NAMES:
            _ENCODED_NAMES[name] = encoded
    return encoded


def _encoded_value(value: str) -> str:
    # ASCII letters and digits (times, counts, most IDs) never need encoding: skip quote's work for them.
    return value if value.isascii() and value.isalnum() else quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Beacon:
    """One tracking request: ``kind`` is ``e``, ``s`` or ``a``; ``params`` excludes ``_k``."""

    kind: str
    params: tuple[tuple[str, str], ...]
    #: The record it came from, for messages that must name it without its values (see ``records.py``).
    origin: RecordOrigin | None = field(default=None, compare=False)

    @staticmethod
    def encode_key(api_key: str) -> str:
        """The API key as it appears in the query string."""
        return quote(api_key, safe="")

    @property
    def encoded_params(self) -> str:
        """``name=value&...`` for every parameter but ``_k``, each name and value percent-encoded.

        The same text as ``urlencode(params, quote_via=quote)``, with each name encoded once per run.
        """
        return "&".join([f"{_encoded_name(name)}={_encoded_value(value)}" for name, value in self.params])

    def query(self, api_key: str) -> str:
        """The encoded query string, ``_k`` first (every character that needs it is percent-encoded)."""
        return f"_k={self.encode_key(api_key)}&{self.encoded_params}"

    def url(self, tracking_url: str, api_key: str) -> str:
        """The full GET URL of this beacon."""
        return f"{tracking_url.rstrip('/')}/{self.kind}?{self.query(api_key)}"

    def shown_url(self, tracking_url: str) -> str:
        """The URL as logs show it: the key is the redaction marker every log uses (as is, not percent-encoded)."""
        return f"{tracking_url.rstrip('/')}/{self.kind}?_k={REDACTED}&{self.encoded_params}"

    def url_bytes_over(self, prefix_bytes: int, limit: int = MAX_BEACON_URL_BYTES) -> int | None:
        """The length in bytes of this beacon's URL when it is over ``limit``, else None.

        ``prefix_bytes`` is the length of ``<tracking_url>/<kind>?_k=<key>&``. Most beacons are far below the limit
        even if every character took the most bytes percent-encoding can give it: those are not encoded here.
        """
        chars = sum(len(name) + len(value) + 2 for name, value in self.params)
        if prefix_bytes + chars * _MAX_ENCODED_BYTES_PER_CHAR <= limit:
            return None
        size = prefix_bytes + len(self.encoded_params.encode("utf-8"))
        return size if size > limit else None


@dataclass(frozen=True, slots=True)
class RecordOrigin:
    """Where a beacon came from: its stream and the values of the stream's key properties."""

    stream: str
    key: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class StreamMapping:
    """How one stream's records become beacons (one beacon per mapping per record)."""

    kind: str = "event"
    person: str = "person"
    event: str = "{event}"
    alias: str = "alias"
    timestamp: str | None = "timestamp"
    properties: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    used_fields: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any], schema_fields: Sequence[str]) -> StreamMapping:
        """Build a mapping from one ``streams`` entry; unset names take the defaults."""
        check_mapping_keys(setting)
        kind = setting.get("kind") or infer_kind(schema_fields)
        if kind not in KINDS:
            raise MappingError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
        timestamp = setting.get("timestamp", "timestamp" if "timestamp" in schema_fields else None)
        mapping = cls(
            kind=kind,
            person=setting.get("person") or "person",
            event=setting.get("event") or "{event}",
            alias=setting.get("alias") or "alias",
            timestamp=timestamp or None,
            properties=tuple(setting["properties"]) if setting.get("properties") is not None else None,
            exclude=tuple(setting.get("exclude") or ()),
        )
        return mapping.with_used_fields()

    def with_used_fields(self) -> StreamMapping:
        """Record which fields feed ``_p``, ``_n`` and ``_t`` (they are not sent again as properties)."""
        used = {self.person}
        if self.timestamp:
            used.add(self.timestamp)
        if self.kind == "event":
            used.update(name for name, _ in _TEMPLATE_FIELD.findall(self.event))
        if self.kind == "alias":
            used.add(self.alias)
        return StreamMapping(**{**self.__dict__, "used_fields": frozenset(used)})

    def named_fields(self) -> list[tuple[str, str]]:
        """``(mapping key, field name)`` of every record field this mapping reads, defaults included."""
        named = [("person", self.person)]
        if self.kind == "event":
            named.extend(("event", name) for name, _ in _TEMPLATE_FIELD.findall(self.event))
        if self.kind == "alias":
            named.append(("alias", self.alias))
        else:
            if self.timestamp:
                named.append(("timestamp", self.timestamp))
            named.extend(("properties", name) for name in self.properties or ())
        named.extend(("exclude", name) for name in self.exclude)
        return named


def check_mapping_keys(setting: Mapping[str, Any]) -> None:
    """Raise :class:`MappingError` for a key no mapping has (naming the closest one) or a value of the wrong type."""
    if not isinstance(setting, Mapping):
        raise MappingError(f"a mapping must be an object with keys such as {', '.join(MAPPING_KEYS)}")
    for key, value in setting.items():
        if key not in MAPPING_KEYS:
            close = difflib.get_close_matches(str(key), list(MAPPING_KEYS), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (keys: {', '.join(MAPPING_KEYS)})"
            raise MappingError(f"unknown key '{key}'{hint}")
        wanted = MAPPING_KEYS[key]
        if value is None:
            continue
        if wanted is list:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise MappingError(f"'{key}' must be a list of field names")
        elif not isinstance(value, wanted):
            raise MappingError(f"'{key}' must be a string")


def infer_kind(schema_fields: Sequence[str]) -> str:
    """The kind of a stream with no ``kind`` setting, from its field names.

    ``event`` if it has an ``event`` field; ``alias`` if its fields are ``person`` and ``alias``
    (and optionally ``timestamp``); otherwise ``set``.
    """
    names = set(schema_fields) - {name for name in schema_fields if name.startswith(SINGER_METADATA_PREFIX)}
    if "event" in names:
        return "event"
    if "alias" in names and names <= {"person", "alias", "timestamp"}:
        return "alias"
    return "set"


def mappings_for_stream(
    stream_name: str, streams_setting: Mapping[str, Any] | None, schema_fields: Sequence[str]
) -> list[StreamMapping]:
    """The mappings of a stream: its own entry, else the ``"*"`` entry, else inferred defaults.

    An entry is an object or a list of objects (several beacons per record).
    """
    settings = streams_setting or {}
    entry = settings.get(stream_name, settings.get("*", {}))
    entries = entry if isinstance(entry, list) else [entry]
    try:
        return [StreamMapping.from_setting(item or {}, schema_fields) for item in entries]
    except MappingError as error:
        raise MappingError(f"streams.{stream_name}: {error}") from None


# --- value encoding -------------------------------------------------------------------


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


# --- time ---------------------------------------------------------------------------------


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


# --- building -----------------------------------------------------------------------------


def field_value(record: Mapping[str, Any], name: str) -> Any:
    """A field by name; a dotted name reaches into nested objects when no field has that exact name."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render_event_name(template: str, record: Mapping[str, Any]) -> str:
    """Fill ``{field}`` (or ``{field|urldecode}``, ``|lower``, ``|upper``) placeholders from the record."""

    def fill(match: re.Match[str]) -> str:
        name, filter_name = match.group(1), match.group(2)
        value = encode_scalar(field_value(record, name))
        if value is None or value == "":
            raise InvalidRecordError([f"event name field '{name}' is missing or empty"])
        if filter_name:
            if filter_name not in _TEMPLATE_FILTERS:
                raise MappingError(f"unknown template filter '{filter_name}': use {', '.join(_TEMPLATE_FILTERS)}")
            value = _TEMPLATE_FILTERS[filter_name](value)
        return value

    return _TEMPLATE_FIELD.sub(fill, template)


def build_beacons(
    record: Mapping[str, Any],
    mappings: Sequence[StreamMapping],
    time_extracted: Any = None,
    origin: RecordOrigin | None = None,
) -> list[Beacon]:
    """All beacons of one record, or :class:`InvalidRecordError` with every rule it breaks.

    ``origin`` is attached to each beacon, so that a message about it can name its record.
    """
    beacons: list[Beacon] = []
    reasons: list[str] = []
    for mapping in mappings:
        try:
            beacons.extend(_beacons_for_mapping(record, mapping, time_extracted, origin))
        except InvalidRecordError as invalid:
            reasons.extend(invalid.reasons)
    if reasons:
        raise InvalidRecordError(list(dict.fromkeys(reasons)))
    return beacons


def _beacons_for_mapping(
    record: Mapping[str, Any], mapping: StreamMapping, time_extracted: Any, origin: RecordOrigin | None
) -> list[Beacon]:
    reasons: list[str] = []
    person = _identity(record, mapping.person, "person", reasons)
    if mapping.kind == "alias":
        identities = _alias_identities(record, mapping.alias, reasons)
        if reasons:
            raise InvalidRecordError(reasons)
        return [Beacon("a", (("_p", person), ("_n", identity)), origin) for identity in identities]  # type: ignore[arg-type]
    params: list[tuple[str, str]] = [("_p", person or "")]
    if mapping.kind == "event":
        event_name = _event_name(record, mapping.event, reasons)
        params.append(("_n", event_name))
    timestamp = _timestamp(record, mapping, time_extracted, reasons)
    params.extend((("_t", str(timestamp)), ("_d", "1")))
    properties = _properties(record, mapping, reasons)
    if mapping.kind == "set" and not properties:
        reasons.append("a set beacon needs at least one property, and none is left")
    params.extend(properties)
    if reasons:
        raise InvalidRecordError(reasons)
    return [Beacon(KINDS[mapping.kind], tuple(params), origin)]


def _identity(record: Mapping[str, Any], field_name: str, label: str, reasons: list[str]) -> str | None:
    value = field_value(record, field_name)
    if isinstance(value, Mapping | list):
        reasons.append(f"{label} field '{field_name}' is not a single value")
        return None
    text = encode_scalar(value)
    if text is None or not text.strip():
        reasons.append(f"{label} field '{field_name}' is missing or empty")
        return None
    if len(text) > MAX_IDENTITY_CHARS:
        reasons.append(f"{label} (_p) is {len(text)} characters, over {MAX_IDENTITY_CHARS}")
    return text


def _alias_identities(record: Mapping[str, Any], field_name: str, reasons: list[str]) -> list[str]:
    value = field_value(record, field_name)
    values = value if isinstance(value, list) else [value]
    identities = [text for text in (encode_scalar(item) for item in values) if text and text.strip()]
    if not identities:
        reasons.append(f"alias field '{field_name}' is missing or empty")
    for identity in identities:
        if len(identity) > MAX_IDENTITY_CHARS:
            reasons.append(f"alias (_n) is {len(identity)} characters, over {MAX_IDENTITY_CHARS}")
    return identities


def _event_name(record: Mapping[str, Any], template: str, reasons: list[str]) -> str:
    try:
        name = render_event_name(template, record)
    except InvalidRecordError as invalid:
        reasons.extend(invalid.reasons)
        return ""
    if not name.strip():
        reasons.append("event name is empty")
    elif len(name) > MAX_NAME_CHARS:
        reasons.append(f"event name (_n) is {len(name)} characters, over {MAX_NAME_CHARS}")
    elif "," in name or ":" in name:  # the name is made of record values: not shown (it goes to logs)
        reasons.append("event name contains ',' or ':' (Kissmetrics would turn them into spaces)")
    return name


def _timestamp(record: Mapping[str, Any], mapping: StreamMapping, time_extracted: Any, reasons: list[str]) -> int:
    if mapping.timestamp:
        source, value = f"timestamp field '{mapping.timestamp}'", field_value(record, mapping.timestamp)
    else:
        source, value = "the RECORD message's time_extracted", time_extracted
    if value is None or value == "":
        if mapping.timestamp:
            reasons.append(f"{source} is missing or empty")
        else:
            reasons.append("no timestamp: the mapping names no timestamp field and the RECORD has no time_extracted")
        return 0
    try:
        return unix_seconds(value)
    except (ValueError, OverflowError):  # the value itself is not shown: reasons go to logs
        reasons.append(f"{source} is neither ISO 8601 nor unix seconds")
        return 0


def _selected_fields(record: Mapping[str, Any], mapping: StreamMapping) -> dict[str, Any]:
    if mapping.properties is not None:
        return {name: field_value(record, name) for name in mapping.properties if name not in mapping.exclude}
    skipped = set(mapping.exclude) | mapping.used_fields
    return {
        name: value
        for name, value in record.items()
        if name not in skipped and not name.startswith(SINGER_METADATA_PREFIX)
    }


def _properties(record: Mapping[str, Any], mapping: StreamMapping, reasons: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = list(flatten_properties(_selected_fields(record, mapping)))
    except ValueError as error:
        reasons.append(f"property value {error}")
        return []
    excluded = set(mapping.exclude)
    pairs = [(name, value) for name, value in pairs if name not in excluded]
    seen: dict[str, str] = {}
    for name, value in pairs:
        reasons.extend(_property_problems(name, value))
        folded = name.casefold()
        if folded in seen:
            reasons.append(
                f"property names '{seen[folded]}' and '{name}' are the same to Kissmetrics (case-insensitive)"
            )
        seen[folded] = name
    return pairs


def _property_problems(name: str, value: str) -> list[str]:
    problems = []
    if not name:
        problems.append("empty property name")
    if name.startswith("_"):
        problems.append(f"property name '{name[:80]}' starts with '_' (reserved for Kissmetrics parameters)")
    if len(name) > MAX_NAME_CHARS:
        problems.append(f"property name '{name[:80]}...' is {len(name)} characters, over {MAX_NAME_CHARS}")
    if "," in name or ":" in name:
        problems.append(f"property name '{name[:80]}' contains ',' or ':' (Kissmetrics would turn them into spaces)")
    if len(value) > MAX_VALUE_CHARS:
        problems.append(f"value of property '{name[:80]}' is {len(value)} characters, over {MAX_VALUE_CHARS}")
    return problems
