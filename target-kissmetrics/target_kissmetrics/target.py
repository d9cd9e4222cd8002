"""The Kissmetrics target: settings, dead letters, the shared sender and the run summary."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import typing as t
from collections import Counter
from functools import cached_property
from pathlib import Path

from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.target_base import Target
from typing_extensions import override

from target_kissmetrics.beacons import KINDS, encode_scalar
from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.connector_common.plugin import ConnectorTarget
from target_kissmetrics.connector_common.redaction import SecretRedactor
from target_kissmetrics.connector_common.sdk_compat import BatchAsRecordsTarget, StateFlushingTarget
from target_kissmetrics.delivery import BeaconSender
from target_kissmetrics.reader import MessageReader, decode_json
from target_kissmetrics.settings import DEFAULT_DEAD_LETTER_PATH, KissmetricsSettings
from target_kissmetrics.sinks import KissmetricsSink


class TargetKissmetricsError(ConnectorError):
    """An error the run stops on with a one-line message (an invalid record with ``fail_on_invalid``)."""


class TargetKissmetrics(ConnectorTarget, StateFlushingTarget, BatchAsRecordsTarget):
    """Singer target for the Kissmetrics tracking API."""

    name = "target-kissmetrics"
    #: BATCH messages (singer-sdk's JSON Lines files, gzip or plain) are read record by record, each record the way
    #: of a RECORD message: same stream maps, schema check, dead letters, delivery and STATE order.
    capabilities = [*Target.capabilities, PluginCapabilities.BATCH]
    default_sink_class = KissmetricsSink
    message_reader_class = MessageReader
    #: A record without its key properties stops the run (singer-sdk's rule) with one line, not a traceback.
    reported_errors = (ConnectorError, MissingKeyPropertiesError)
    settings_class = KissmetricsSettings
    config_jsonschema = KissmetricsSettings.config_jsonschema()

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = SecretRedactor(self.settings.secret_values())
        self.max_parallelism = 1  # sinks share one bounded sender; parallel drains would only wait side by side
        self.sender = None
        if not self.settings.dry_run:
            delivery_logger = self.logger.getChild("delivery")
            user_agent = f"{self.name}/{self.plugin_version}"
            self.sender = BeaconSender(self.settings, self.redactor.redact, delivery_logger, user_agent)
        self.invalid_records: Counter[str] = Counter()
        self.dry_run_beacons: Counter[str] = Counter()
        self._dead_letter_lock = threading.Lock()
        self._started = time.monotonic()

    @classmethod
    @override
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """The SDK's built-in target settings, less those that mean nothing for beacons.

        ``load_method`` (append/upsert/overwrite) and ``add_record_metadata`` (``_sdc_`` columns, which beacons
        never send) belong to SQL targets. ``validate_records`` keeps its meaning (the SCHEMA check) and
        ``batch_size_rows`` the SDK's (how often it closes a batch and logs its batch timer); delivery and STATE do
        not wait for a batch. ``batch_config`` (where a tap writes BATCH files) is the tap's setting: a BATCH
        message names its files in full.
        """
        super().append_builtin_config(config_jsonschema)
        for name in ("load_method", "add_record_metadata", "batch_config"):
            config_jsonschema.get("properties", {}).pop(name, None)

    @cached_property
    def settings(self) -> KissmetricsSettings:
        """The config with defaults applied."""
        return self.load_settings(KissmetricsSettings)

    @property
    @override
    def state_flush_interval_seconds(self) -> float:
        """``state_flush_seconds``."""
        return self.settings.state_flush_seconds

    @override
    def write_state_when_safe(self, write_state: t.Callable[[], None]) -> None:
        """Write the STATE once every beacon of the records before it got a 200 (at once in a dry run)."""
        if self.sender is None:
            write_state()
        else:
            self.sender.when_delivered(write_state)

    @override
    def decode_batch_line(self, line: bytes) -> t.Any:
        """A BATCH file's line, read as input lines are (msgspec, numbers with a fraction as Decimal)."""
        return decode_json(line)

    # --- the run -------------------------------------------------------------------------
    @override
    def process_endofpipe(self) -> None:
        """Drain every sink, wait for the last beacons (and so the last STATE), then log the run summary."""
        try:
            super().process_endofpipe()
            if self.sender is not None:
                self.sender.wait_until_all_delivered()
        finally:
            if self.sender is not None:
                self.sender.close()
        self.logger.info(self.summary())

    def summary(self) -> str:
        """The final one-line account of the run."""
        sent = self.dry_run_beacons if self.sender is None else self.sender.sent
        by_kind = ", ".join(f"/{kind} {sent[kind]}" for kind in KINDS.values())
        invalid = sum(self.invalid_records.values())
        verb = "printed (dry run)" if self.sender is None else "delivered"
        retried = 0 if self.sender is None else self.sender.retried
        return (
            f"Kissmetrics summary: {sum(sent.values())} beacons {verb} ({by_kind}), {retried} retries, "
            f"{invalid} invalid records dead-lettered to {self.settings.dead_letter_path} "
            f"in {time.monotonic() - self._started:.1f} s"
        )

    def count_dry_run(self, kind: str) -> None:
        """Count a beacon printed instead of sent."""
        self.dry_run_beacons[kind] += 1

    # --- invalid records ----------------------------------------------------------------
    def reject(self, stream_name: str, key_properties: t.Sequence[str], record: dict, reasons: list[str]) -> None:
        """Dead-letter an invalid record, or stop the run when ``fail_on_invalid`` is set."""
        key = {name: record.get(name) for name in key_properties}
        if self.settings.fail_on_invalid:
            shown_key = json.dumps(key, default=encode_scalar) if key else "(stream has no key_properties)"
            raise TargetKissmetricsError(
                self.redactor.redact(
                    f"invalid record in stream '{stream_name}' with key {shown_key}: {'; '.join(reasons)} "
                    "(set fail_on_invalid: false to dead-letter such records instead)"
                )
            )
        line = json.dumps(
            {
                "stream": stream_name,
                "key": key,
                "reasons": reasons,
                "record": record,
                "time": dt.datetime.now(dt.timezone.utc).isoformat(),
            },
            default=encode_scalar,
            ensure_ascii=False,
        )
        path = Path(self.settings.dead_letter_path or DEFAULT_DEAD_LETTER_PATH)
        with self._dead_letter_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as dead_letters:
                dead_letters.write(self.redactor.redact(line) + "\n")
            self.invalid_records[stream_name] += 1
        self.logger.warning("Invalid record in stream '%s' dead-lettered: %s", stream_name, "; ".join(reasons))


if __name__ == "__main__":
    TargetKissmetrics.cli()
