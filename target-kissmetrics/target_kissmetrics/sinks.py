"""The one sink: each record becomes its beacons, handed to the sender as soon as the record is read.

Nothing is held per batch: the sender's window bounds what is in memory, and the target writes each STATE only
once every beacon submitted before it got a 200 (``BeaconSender.when_delivered``), so a drain has nothing to wait
for. A record that breaks its schema or a beacon rule is dead-lettered (or stops the run), never sent.
"""

from __future__ import annotations

import re
import sys
import typing as t

from typing_extensions import override

from target_kissmetrics.beacons import MAX_BEACON_URL_BYTES, Beacon, InvalidRecordError, build_beacons
from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.connector_common.sdk_compat import RecordCheckingSink
from target_kissmetrics.records import record_origin
from target_kissmetrics.schema_checks import RecordSchemaCheck, mapping_field_problems
from target_kissmetrics.stream_mappings import KINDS, mappings_for_stream

if t.TYPE_CHECKING:
    from target_kissmetrics.target import TargetKissmetrics

#: singer-sdk's reason for an unparsable date-time names the value: ``Could not parse value 'x' for field 'at'.``
_UNPARSABLE_DATE = re.compile(r"Could not parse value .* for field '(?P<field>[^']*)'\.?$", re.DOTALL)


class MappingSchemaError(ConnectorError):
    """A ``streams`` mapping names a field that its stream's SCHEMA does not have."""


class KissmetricsSink(RecordCheckingSink):
    """Turns a stream's records into Kissmetrics beacons (see ``beacons.py`` for the rules)."""

    MAX_SIZE_DEFAULT = 10000

    @override
    def __init__(
        self,
        target: TargetKissmetrics,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.kissmetrics = target
        self.schema_check = RecordSchemaCheck(self.schema)
        streams = target.settings.streams or {}
        self.mappings = mappings_for_stream(stream_name, streams, list(schema.get("properties", {})))
        entry = stream_name if stream_name in streams else ("*" if "*" in streams else None)
        problems = mapping_field_problems(stream_name, self.mappings, entry, self.schema)
        if problems:
            raise MappingSchemaError(
                "; ".join(problems) + "; nothing of this stream was sent: fix the mapping (setting streams)"
            )
        #: The fields holding identities (persons first), hashed wherever a log line names the record.
        self.identity_fields = list(
            dict.fromkeys(
                [mapping.person for mapping in self.mappings]
                + [mapping.alias for mapping in self.mappings if mapping.kind == "alias"]
            )
        )
        self.sender = target.sender
        #: Bytes of ``<tracking_url>/<kind>?_k=<key>&`` per kind, for the beacon URL limit.
        tracking_url, key = target.settings.tracking_url.rstrip("/"), Beacon.encode_key(target.settings.api_key)
        self.url_prefix_bytes = {kind: len(f"{tracking_url}/{kind}?_k={key}&".encode()) for kind in KINDS.values()}
        #: Whether this sink's schema was written to the dead-letter file yet (resend needs it).
        self.schema_dead_lettered = False
        target.stream_arrived(stream_name)

    @override
    def schema_problems(self, record: dict) -> list[str]:
        """The compiled schema check."""
        return self.schema_check.problems(record)

    @override
    def process_record(self, record: dict, context: dict) -> None:
        """Build the record's beacons and send them (or dead-letter the record if it breaks a rule)."""
        target = self.kissmetrics
        try:
            if self.record_problems:
                raise InvalidRecordError([value_free(problem) for problem in self.record_problems])
            origin = record_origin(self.stream_name, self.key_properties, record)
            beacons = build_beacons(record, self.mappings, target.current_time_extracted, origin)
            self.check_url_lengths(beacons)
        except InvalidRecordError as invalid:
            target.reject(self, record, invalid.reasons)
            return
        target.count_sent_record(self.stream_name)
        if self.sender is None:
            for beacon in beacons:
                sys.stderr.write(f"DRY RUN {beacon.shown_url(target.settings.tracking_url)}\n")
                target.count_dry_run(beacon.kind)
            return
        for beacon in beacons:
            self.sender.submit(beacon)

    def check_url_lengths(self, beacons: list[Beacon]) -> None:
        """Raise :class:`InvalidRecordError` when a beacon's URL is over :data:`MAX_BEACON_URL_BYTES`."""
        reasons = []
        for beacon in beacons:
            size = beacon.url_bytes_over(self.url_prefix_bytes[beacon.kind])
            if size is not None:
                reasons.append(f"beacon URL of {size} bytes exceeds the {MAX_BEACON_URL_BYTES}-byte limit")
        if reasons:
            raise InvalidRecordError(reasons)

    def dead_letter_schema(self) -> dict[str, t.Any] | None:
        """The schema and key properties for the dead-letter file: once per sink (a resend reads them back)."""
        if self.schema_dead_lettered:
            return None
        self.schema_dead_lettered = True
        return {"schema": self.schema, "key_properties": list(self.key_properties)}

    @override
    def process_batch(self, context: dict) -> None:
        """Nothing to write: the beacons left while the records were read (a STATE waits for them instead)."""


def value_free(problem: str) -> str:
    """A record problem without the record's value in it (problems are logged)."""
    unparsable = _UNPARSABLE_DATE.match(problem)
    if unparsable:
        return f"field '{unparsable.group('field')}' is not a valid date-time"
    return problem
