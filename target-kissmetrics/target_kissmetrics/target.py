"""The Kissmetrics target: settings, dead letters, the shared sender and the run summary."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
import typing as t
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from connector_common.redaction import install_secret_redaction
from target_kissmetrics.beacons import KINDS, MappingError, encode_scalar, mappings_for_stream
from target_kissmetrics.delivery import BeaconSender, DeliveryError, DeliverySettings
from target_kissmetrics.sinks import KissmetricsSink

DEFAULT_TRACKING_URL = "https://trk.kissmetrics.io"
DEFAULT_DEAD_LETTER_PATH = "output/kissmetrics-dead-letters.jsonl"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

_STRING_LIST = th.ArrayType(th.StringType)
_MAPPING = th.ObjectType(
    th.Property("kind", th.StringType, allowed_values=list(KINDS), description="event (/e), set (/s) or alias (/a)."),
    th.Property("person", th.StringType, description="Field sent as _p (default `person`)."),
    th.Property(
        "event", th.StringType, description="Event name: a constant or a `{field}` template (default `{event}`)."
    ),
    th.Property("alias", th.StringType, description="Field holding the second identity of an alias (default `alias`)."),
    th.Property("timestamp", th.StringType, description="Field sent as _t (default `timestamp` if the stream has it)."),
    th.Property("properties", _STRING_LIST, description="Fields to send as properties (default: all other fields)."),
    th.Property("exclude", _STRING_LIST, description="Fields (or flattened names) never sent."),
    additional_properties=False,
)


class TargetKissmetricsError(RuntimeError):
    """An error the run stops on with a one-line message (bad setting, invalid record, undelivered beacon)."""


class TargetKissmetrics(Target):
    """Singer target for the Kissmetrics tracking API."""

    name = "target-kissmetrics"
    default_sink_class = KissmetricsSink
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True, description="Kissmetrics API key (_k)."),
        th.Property(
            "tracking_url",
            th.StringType,
            default=DEFAULT_TRACKING_URL,
            description="Tracking host; https is required except on 127.0.0.1/localhost.",
        ),
        th.Property(
            "streams",
            th.ObjectType(additional_properties=th.CustomType({"anyOf": [_MAPPING.to_dict(), {"type": "array"}]})),
            description='Per stream name (or "*" for all others): a mapping object, or a list of them '
            "(one beacon per mapping). Without it the kind is inferred from the field names (see README).",
        ),
        th.Property(
            "dead_letter_path",
            th.StringType,
            default=DEFAULT_DEAD_LETTER_PATH,
            description="JSONL file that receives invalid records with their reasons.",
        ),
        th.Property(
            "fail_on_invalid",
            th.BooleanType,
            default=False,
            description="Stop the run at the first invalid record instead of dead-lettering it.",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Print the beacon URLs (key redacted) to stderr instead of sending them.",
        ),
        th.Property("max_concurrency", th.IntegerType, default=32, description="Beacons in flight at once."),
        th.Property(
            "max_requests_per_second", th.NumberType, description="Optional cap on requests per second (token bucket)."
        ),
        th.Property("request_timeout", th.NumberType, default=30, description="Seconds to connect and to read."),
        th.Property("max_retries", th.IntegerType, default=8, description="Retries per beacon after the first try."),
        th.Property("backoff_base", th.NumberType, default=0.5, description="First backoff wait in seconds."),
        th.Property(
            "backoff_max", th.NumberType, default=30, description="Longest wait between tries (also caps Retry-After)."
        ),
        th.Property(
            "state_flush_seconds",
            th.NumberType,
            default=2,
            description="On a STATE message, wait for the in-flight beacons and emit it if this long passed since "
            "the last one (smaller: less re-sent after a crash; larger: fewer pauses).",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = install_secret_redaction([self.config.get("api_key")])
        self.tracking_url = self._checked_tracking_url(self.config.get("tracking_url") or DEFAULT_TRACKING_URL)
        self._check_stream_mappings()
        self.max_parallelism = 1  # sinks share one bounded sender; parallel drains would only wait side by side
        self.sender = None if self.config.get("dry_run") else self._build_sender()
        self.current_time_extracted: t.Any = None
        self.invalid_records: Counter[str] = Counter()
        self.dry_run_beacons: Counter[str] = Counter()
        self._dead_letter_lock = threading.Lock()
        self._started = time.monotonic()

    # --- settings ------------------------------------------------------------------
    @staticmethod
    def _checked_tracking_url(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
            return url.rstrip("/")
        raise TargetKissmetricsError(
            f"tracking_url {url!r} must use https (plain http is allowed only for 127.0.0.1/localhost)"
        )

    def _check_stream_mappings(self) -> None:
        try:
            for stream_name in self.config.get("streams") or {}:
                mappings_for_stream(stream_name, self.config["streams"], [])
        except MappingError as error:
            raise TargetKissmetricsError(f"invalid setting {error}") from None

    def _build_sender(self) -> BeaconSender:
        concurrency, timeout = (
            int(self.config.get("max_concurrency", 32)),
            float(self.config.get("request_timeout", 30)),
        )
        if concurrency < 1 or timeout <= 0:
            raise TargetKissmetricsError("max_concurrency must be at least 1 and request_timeout above 0")
        settings = DeliverySettings(
            tracking_url=self.tracking_url,
            max_concurrency=concurrency,
            max_requests_per_second=self.config.get("max_requests_per_second"),
            request_timeout=timeout,
            max_retries=int(self.config.get("max_retries", 8)),
            backoff_base=float(self.config.get("backoff_base", 0.5)),
            backoff_max=float(self.config.get("backoff_max", 30)),
        )
        return BeaconSender(settings, self.config["api_key"], self.redactor.redact, time.sleep)

    # --- message handling -------------------------------------------------------------
    def _process_record_message(self, message_dict: dict) -> None:
        # A record's own time (time_extracted) is its _t when the mapping has no timestamp field.
        self.current_time_extracted = message_dict.get("time_extracted")
        super()._process_record_message(message_dict)

    def _process_state_message(self, message_dict: dict) -> None:
        previous = self._latest_state
        super()._process_state_message(message_dict)
        interval = float(self.config.get("state_flush_seconds", 2))
        if self._latest_state != previous and self._max_record_age_in_minutes * 60 >= interval:
            self.drain_all()

    def process_endofpipe(self) -> None:
        """Drain every sink (emitting the last STATE), then log the run summary."""
        try:
            super().process_endofpipe()
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
            f"{invalid} invalid records dead-lettered to {self.config.get('dead_letter_path')} "
            f"in {time.monotonic() - self._started:.1f} s"
        )

    def count_dry_run(self, kind: str) -> None:
        """Count a beacon printed instead of sent."""
        self.dry_run_beacons[kind] += 1

    # --- invalid records ----------------------------------------------------------------
    def reject(self, stream_name: str, key_properties: t.Sequence[str], record: dict, reasons: list[str]) -> None:
        """Dead-letter an invalid record, or stop the run when ``fail_on_invalid`` is set."""
        key = {name: record.get(name) for name in key_properties}
        if self.config.get("fail_on_invalid"):
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
        path = Path(self.config.get("dead_letter_path") or DEFAULT_DEAD_LETTER_PATH)
        with self._dead_letter_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as dead_letters:
                dead_letters.write(self.redactor.redact(line) + "\n")
            self.invalid_records[stream_name] += 1
        self.logger.warning("Invalid record in stream '%s' dead-lettered: %s", stream_name, "; ".join(reasons))

    # --- CLI ----------------------------------------------------------------------------------
    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        """Run the target; known failures end with one clear error line and exit code 1."""
        try:
            super().invoke(*args, **kwargs)
        except (TargetKissmetricsError, DeliveryError) as error:
            cls.logger.error("%s", error)  # the message is the whole story: no traceback
            sys.exit(1)


if __name__ == "__main__":
    TargetKissmetrics.cli()
