"""The Kissmetrics target: settings, dead letters, the shared sender and the run summary."""

from __future__ import annotations

import threading
import time
import typing as t
from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path

import click
from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.target_base import Target
from typing_extensions import override

from target_kissmetrics.connector_common.errors import ConnectorError
from target_kissmetrics.connector_common.plugin import ConnectorTarget
from target_kissmetrics.connector_common.redaction import SecretRedactor
from target_kissmetrics.connector_common.sdk_compat import BatchAsRecordsTarget, StateFlushingTarget
from target_kissmetrics.dead_letters import dead_letter_line, resend_messages, resend_path
from target_kissmetrics.delivery import BeaconSender
from target_kissmetrics.reader import MessageReader, decode_json
from target_kissmetrics.records import describe_invalid_record
from target_kissmetrics.settings import DEFAULT_DEAD_LETTER_PATH, KissmetricsSettings
from target_kissmetrics.sinks import KissmetricsSink
from target_kissmetrics.stream_mappings import KINDS

#: How many of a stream's most frequent dead-letter reasons the summary names.
TOP_REASONS = 3
#: Settings a resend ignores: the dead letters hold records already mapped and flattened.
RESEND_IGNORED_SETTINGS = ("stream_maps", "stream_map_config", "flattening_enabled", "flattening_max_depth")


class TargetKissmetricsError(ConnectorError):
    """An error the run stops on with a one-line message (an invalid record with ``fail_on_invalid``, too many
    dead letters)."""


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
        self.dead_letter_path = Path(self.settings.dead_letter_path or DEFAULT_DEAD_LETTER_PATH)
        #: Per stream: records whose beacons were built (and handed to the sender), records dead-lettered, and why.
        self.sent_records: Counter[str] = Counter()
        self.invalid_records: Counter[str] = Counter()
        self.invalid_reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.arrived_streams: set[str] = set()
        self.dry_run_beacons: Counter[str] = Counter()
        self.states_withheld = 0
        #: The dead-letter file being resent (``--resend-dead-letters``), if this run is a resend.
        self.resending: Path | None = None
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
        """Write the STATE once every beacon of the records before it got a 200; never in a dry run (nothing was
        sent), nor while a stream's dead letters are over ``max_dead_letter_ratio`` (the STATE would cover them).
        """
        if self.sender is None:
            self.states_withheld += 1
            return
        broken = self.dead_letter_rule_problems()
        if broken:
            if not self.states_withheld:
                self.logger.warning("STATE withheld: %s", "; ".join(broken))
            self.states_withheld += 1
            return
        self.sender.when_delivered(write_state)

    @override
    def decode_batch_line(self, line: bytes) -> t.Any:
        """A BATCH file's line, read as input lines are (msgspec, numbers with a fraction as Decimal)."""
        return decode_json(line)

    # --- the run -------------------------------------------------------------------------
    def stream_arrived(self, stream_name: str) -> None:
        """Note a stream whose SCHEMA arrived (a mapping for a stream that never arrives gets a warning)."""
        self.arrived_streams.add(stream_name)

    @override
    def process_endofpipe(self) -> None:
        """Drain every sink, wait for the last beacons (and so the last STATE), log the run summary, then fail if a
        stream's dead letters are over ``max_dead_letter_ratio``."""
        try:
            super().process_endofpipe()
            if self.sender is not None:
                self.sender.wait_until_all_delivered()
        finally:
            if self.sender is not None:
                self.sender.close()
        self.logger.info(self.summary())
        for name in sorted(set(self.settings.streams or {}) - self.arrived_streams - {"*"}):
            self.logger.warning(
                "streams.%s maps a stream that never arrived (streams that did: %s); check the stream's name",
                name,
                ", ".join(sorted(self.arrived_streams)) or "none",
            )
        broken = self.dead_letter_rule_problems()
        if broken:
            raise TargetKissmetricsError(
                f"too many dead letters: {'; '.join(broken)}. No STATE was emitted for them; the records are in "
                f"{self.dead_letter_path}: fix the mapping (setting streams) or the data, then send them again with "
                f"`target-kissmetrics --config <config> --resend-dead-letters {self.dead_letter_path}`"
            )

    def dead_letter_rule_problems(self) -> list[str]:
        """One line per stream whose dead-lettered share of its records so far is over ``max_dead_letter_ratio``."""
        limit = self.settings.max_dead_letter_ratio
        problems = []
        for stream, invalid in sorted(self.invalid_records.items()):
            seen = invalid + self.sent_records[stream]
            if invalid / seen > limit:
                problems.append(
                    f"stream '{stream}' has {invalid} of {seen} records dead-lettered ({invalid / seen:.0%}, over "
                    f"max_dead_letter_ratio {limit:g}): {self.top_reasons(stream)}"
                )
        return problems

    def top_reasons(self, stream: str) -> str:
        """``3x person field 'user_id' is missing or empty, 1x ...``: the most frequent reasons of a stream."""
        reasons = self.invalid_reasons[stream].most_common(TOP_REASONS)
        shown = ", ".join(f"{count}x {reason}" for reason, count in reasons)
        others = len(self.invalid_reasons[stream]) - len(reasons)
        return shown + (f" and {others} other reasons" if others > 0 else "")

    def summary(self) -> str:
        """The final one-line account of the run: beacons by kind, then per stream records sent and dead-lettered."""
        sent = self.dry_run_beacons if self.sender is None else self.sender.sent
        by_kind = ", ".join(f"/{kind} {sent[kind]}" for kind in KINDS.values())
        invalid = sum(self.invalid_records.values())
        if self.sender is None:
            beacons = f"dry run: {sum(sent.values())} beacons built ({by_kind}), none sent, no STATE emitted"
        else:
            beacons = (
                f"{sum(sent.values())} beacons sent ({by_kind}), each answered 200 (Kissmetrics answers 200 to any "
                f"beacon: the checks are the target's own), {self.sender.retried} retries"
            )
            if self.states_withheld:
                beacons += f", STATE withheld {self.states_withheld} times (too many dead letters)"
        handed_on = "built" if self.sender is None else "sent"
        streams = "; ".join(
            f"'{stream}' {self.sent_records[stream]} records {handed_on}, {self.invalid_records[stream]} dead-lettered"
            + (f" ({self.top_reasons(stream)})" if self.invalid_records[stream] else "")
            for stream in sorted(set(self.sent_records) | set(self.invalid_records))
        )
        resent = f"resend of {self.resending}: " if self.resending else ""
        by_stream = f" [{streams}]" if streams else ""
        return (
            f"Kissmetrics summary: {resent}{beacons}, {invalid} invalid records dead-lettered to "
            f"{self.dead_letter_path}{by_stream} in {time.monotonic() - self._started:.1f} s"
        )

    def count_dry_run(self, kind: str) -> None:
        """Count a beacon printed instead of sent."""
        self.dry_run_beacons[kind] += 1

    def count_sent_record(self, stream_name: str) -> None:
        """Count a record whose beacons were built and handed on (sent, or printed in a dry run)."""
        self.sent_records[stream_name] += 1

    # --- invalid records ----------------------------------------------------------------
    def reject(self, sink: KissmetricsSink, record: dict, reasons: list[str]) -> None:
        """Dead-letter an invalid record, or stop the run when ``fail_on_invalid`` is set.

        Log lines name the record by its key (identities hashed, see ``records.py``) and reasons that hold no
        values; the dead-letter file keeps the whole record, so that it can be fixed and sent again.
        """
        stream_name, key_properties = sink.stream_name, sink.key_properties
        shown = describe_invalid_record(stream_name, key_properties, record, sink.identity_fields)
        if self.settings.fail_on_invalid:
            raise TargetKissmetricsError(
                self.redactor.redact(
                    f"invalid record: {shown}: {'; '.join(reasons)} "
                    "(set fail_on_invalid: false to dead-letter such records instead)"
                )
            )
        with self._dead_letter_lock:
            line = dead_letter_line(
                stream_name,
                {name: record.get(name) for name in key_properties},
                reasons,
                record,
                time_extracted=self.current_time_extracted,
                schema=sink.dead_letter_schema(),
            )
            self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter_path.open("a", encoding="utf-8") as dead_letters:
                dead_letters.write(self.redactor.redact(line) + "\n")
            self.invalid_records[stream_name] += 1
            self.invalid_reasons[stream_name].update(dict.fromkeys(reasons, 1))
        self.logger.warning("Invalid record dead-lettered: %s: %s", shown, "; ".join(reasons))

    # --- sending dead letters again ------------------------------------------------------------
    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command line, plus ``--resend-dead-letters PATH``."""
        command = super().get_singer_command()
        command.params.append(
            click.Option(
                ["--resend-dead-letters", "resend_dead_letters"],
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="Send the records of a dead-letter file again (after fixing the mapping or the data); those "
                "still invalid go to a new dead-letter file next to it. Reads no input and emits no STATE.",
            )
        )
        return command

    @classmethod
    @override
    def invoke(cls, *, resend_dead_letters: Path | None = None, **kwargs: t.Any) -> None:
        """Run the target on its input, or (``--resend-dead-letters``) on the records of a dead-letter file."""
        if resend_dead_letters is None:
            super().invoke(**kwargs)
            return
        with cls.fatal_errors():
            config_input = kwargs.get("config")
            config = dict(getattr(config_input, "config", {}) or {})
            for name in RESEND_IGNORED_SETTINGS:
                config.pop(name, None)
            cls.print_version(print_fn=cls.logger.info)
            target = cls(
                config=config, validate_config=True, parse_env_config=getattr(config_input, "parse_env", False)
            )
            target.resend(resend_dead_letters)

    def resend(self, source: Path) -> None:
        """Send the dead letters of ``source`` as a run would have sent their records: the same beacons (same
        ``_t``, so Kissmetrics keeps each once however often they are resent), the same checks; records still
        invalid go to a new dead-letter file (``source`` is left as it is). No STATE is read or written.
        """
        if any(self.config.get(name) for name in RESEND_IGNORED_SETTINGS):
            raise TargetKissmetricsError(
                "a resend takes the dead letters as they are (already mapped): unset stream_maps and flattening "
                "(e.g. the TARGET_KISSMETRICS_STREAM_MAPS variable) for it"
            )
        self.resending = source
        self.dead_letter_path = resend_path(source)
        self.logger.info(
            "Resending the dead letters of %s (still invalid ones go to %s)", source, self.dead_letter_path
        )
        self.listen(t.cast("t.IO[str]", resend_messages(source, self.logger.warning)))


if __name__ == "__main__":
    TargetKissmetrics.cli()
