"""The ``streams`` setting: which beacon kind each stream sends and which fields name the person, the event, the
alias, the time and the properties (:class:`StreamMapping`); a mapping that cannot work is a :class:`MappingError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = {"event": "e", "set": "s", "alias": "a"}
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
TEMPLATE_FIELD = re.compile(r"\{([^{}|]+)(?:\|([a-z_]+))?\}")


class MappingError(ValueError):
    """A ``streams`` setting that cannot work (unknown kind, bad template)."""


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
            used.update(name for name, _ in TEMPLATE_FIELD.findall(self.event))
        if self.kind == "alias":
            used.add(self.alias)
        return StreamMapping(**{**self.__dict__, "used_fields": frozenset(used)})

    def named_fields(self) -> list[tuple[str, str]]:
        """``(mapping key, field name)`` of every record field this mapping reads, defaults included."""
        named = [("person", self.person)]
        if self.kind == "event":
            named.extend(("event", name) for name, _ in TEMPLATE_FIELD.findall(self.event))
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
