"""The one sink: each record becomes its beacons, handed to the sender as soon as the record is read.

Nothing is held per batch: the sender's window bounds what is in memory, and the target writes each STATE only
once every beacon submitted before it got a 200 (``BeaconSender.when_delivered``), so a drain has nothing to wait
for. A record that breaks its schema or a beacon rule is dead-lettered (or stops the run), never sent.
"""

from __future__ import annotations

import sys
import typing as t

from typing_extensions import override

from target_kissmetrics.beacons import InvalidRecordError, build_beacons, mappings_for_stream
from target_kissmetrics.connector_common.sdk_compat import RecordCheckingSink
from target_kissmetrics.schema_checks import RecordSchemaCheck

if t.TYPE_CHECKING:
    from target_kissmetrics.target import TargetKissmetrics

DRY_RUN_KEY = "REDACTED"


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
        self.mappings = mappings_for_stream(stream_name, target.settings.streams, list(schema.get("properties", {})))
        self.sender = target.sender

    @override
    def schema_problems(self, record: dict) -> list[str]:
        """The compiled schema check."""
        return self.schema_check.problems(record)

    @override
    def process_record(self, record: dict, context: dict) -> None:
        """Build the record's beacons and send them (or dead-letter the record if it breaks a rule)."""
        try:
            if self.record_problems:
                raise InvalidRecordError(self.record_problems)
            beacons = build_beacons(record, self.mappings, self.kissmetrics.current_time_extracted)
        except InvalidRecordError as invalid:
            self.kissmetrics.reject(self.stream_name, self.key_properties, record, invalid.reasons)
            return
        if self.sender is None:
            for beacon in beacons:
                sys.stderr.write(f"DRY RUN {beacon.url(self.kissmetrics.settings.tracking_url, DRY_RUN_KEY)}\n")
                self.kissmetrics.count_dry_run(beacon.kind)
            return
        for beacon in beacons:
            self.sender.submit(beacon)

    @override
    def process_batch(self, context: dict) -> None:
        """Nothing to write: the beacons left while the records were read (a STATE waits for them instead)."""
