"""How log lines name a record without its personal data.

Person identities, aliases and property values never appear in INFO, WARNING or ERROR lines. A record is named by
its stream and the values of the stream's key properties; a key value that is also the record's person or alias
(a stream keyed by e-mail) is shown as a short hash, and so is the person of a stream without key properties.
The same person always gives the same hash, so a line can be matched to the dead letter or source row by hashing
the identity the same way: ``sha256(identity)``, first 12 hex digits.
"""

from __future__ import annotations

import hashlib
import json
import typing as t
from collections.abc import Iterable, Mapping, Sequence

from target_kissmetrics.beacons import Beacon, field_value
from target_kissmetrics.stream_mappings import RecordOrigin
from target_kissmetrics.value_encoding import encode_scalar

HASH_HEX_DIGITS = 12


def identity_hash(identity: str) -> str:
    """``sha256:<first 12 hex digits>`` of an identity: the same person always reads the same."""
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:HASH_HEX_DIGITS]
    return f"sha256:{digest}"


def record_origin(stream: str, key_properties: Sequence[str], record: Mapping[str, t.Any]) -> RecordOrigin:
    """The origin attached to a record's beacons: its stream and key values."""
    return RecordOrigin(stream, tuple((name, record.get(name)) for name in key_properties))


def describe_record(origin: RecordOrigin, identities: Sequence[str]) -> str:
    """``stream 'orders' record {"order_id": "A2"}``, any key value that is one of ``identities`` hashed.

    Without key properties: ``stream 'orders' record of person sha256:...`` (the first identity, the person).
    """
    known = [identity for identity in identities if identity]
    if origin.key:
        shown = {name: _shown_value(value, set(known)) for name, value in origin.key}
        return f"stream '{origin.stream}' record {json.dumps(shown, ensure_ascii=False)}"
    if not known:
        return f"stream '{origin.stream}' record (no key properties, no person)"
    return f"stream '{origin.stream}' record of person {identity_hash(known[0])} (no key properties)"


def describe_beacon(beacon: Beacon) -> str:
    """``/e beacon of stream ... record ...``: the beacon named by its record (its identities hashed)."""
    identities = [value for name, value in beacon.params if name == "_p" or (name == "_n" and beacon.kind == "a")]
    return f"/{beacon.kind} beacon of {describe_record(beacon.origin or RecordOrigin('?'), identities)}"


def describe_invalid_record(
    stream: str, key_properties: Sequence[str], record: Mapping[str, t.Any], identity_fields: Iterable[str]
) -> str:
    """An invalid record, named by :func:`describe_record`; ``identity_fields`` are its person and alias fields."""
    identities = []
    for name in identity_fields:
        value = field_value(record, name)
        for item in value if isinstance(value, list) else [value]:
            text = None if isinstance(item, Mapping | list) else _text(item)
            if text:
                identities.append(text)
    return describe_record(record_origin(stream, key_properties, record), identities)


def _text(value: t.Any) -> str | None:
    """A scalar as Kissmetrics would receive it (NaN and infinities as Python spells them)."""
    try:
        return encode_scalar(value)
    except ValueError:  # NaN or infinite
        return str(value)


def _shown_value(value: t.Any, identities: set[str]) -> t.Any:
    """A key value as shown: hashed when it is an identity, objects not shown."""
    if isinstance(value, Mapping | list):
        return "(object)"
    text = _text(value)
    if text is not None and text in identities:
        return identity_hash(text)
    return value if value is None or isinstance(value, bool | int | float | str) else text
