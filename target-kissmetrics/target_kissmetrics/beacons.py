"""Beacon building: from a Singer record and a stream mapping to encoded Kissmetrics beacons.

One place for every encoding and validation rule. A record yields its beacons or an
:class:`InvalidRecordError` naming every rule it breaks: never some of its beacons.

The stream mappings (``streams`` setting) are ``stream_mappings.py``; how values become the flat strings the
tracking API takes is ``value_encoding.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from target_kissmetrics.connector_common.redaction import REDACTED
from target_kissmetrics.stream_mappings import (
    KINDS,
    SINGER_METADATA_PREFIX,
    TEMPLATE_FIELD,
    MappingError,
    RecordOrigin,
    StreamMapping,
)
from target_kissmetrics.value_encoding import encode_scalar, flatten_properties, unix_seconds

MAX_IDENTITY_CHARS = 255
MAX_NAME_CHARS = 255
MAX_VALUE_CHARS = 512
#: The longest beacon URL (scheme, host, path and query, ``_k`` included) the target sends: the tracking server
#: answered HTTP 400 to a URL of 16 KB, and common HTTP servers refuse request lines of about 8 KB.
MAX_BEACON_URL_BYTES = 8000
#: Percent-encoding turns one character into at most 12 bytes (a 4-byte UTF-8 character, each byte as ``%XX``).
_MAX_ENCODED_BYTES_PER_CHAR = 12
_TEMPLATE_FILTERS: dict[str, Callable[[str], str]] = {"urldecode": unquote, "lower": str.lower, "upper": str.upper}


class InvalidRecordError(ValueError):
    """A record that breaks one or more beacon rules; ``reasons`` names each one."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


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


# --- value encoding -------------------------------------------------------------------


# --- time ---------------------------------------------------------------------------------


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

    return TEMPLATE_FIELD.sub(fill, template)


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
