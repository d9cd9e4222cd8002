"""Every use of a private singer-sdk member, in one place (pinned to singer-sdk ~= 0.54.9).

Each entry names the SDK member it relies on; ``tests/connector_common/test_sdk_compat.py`` checks every one
against the installed SDK (the member exists, has the signature used here and behaves as relied on), so an SDK
upgrade that changes one fails there, loudly, before any plugin misbehaves.
"""

from __future__ import annotations

import gzip
import logging
import os
import sys
import typing as t
from collections.abc import Callable, Iterable, Iterator, Mapping

import click
import requests
from singer_sdk import Tap
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget
from singer_sdk.singerlib.json import deserialize_json
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target
from typing_extensions import override

from .errors import ConnectorError

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from singer_sdk import Stream
    from singer_sdk.helpers.types import Context
    from singer_sdk.sql import SQLConnector
    from singer_sdk.streams import RESTStream

#: ``Stream.sync`` logs this (at ERROR, on the stream's logger) for every exception that ends a stream's sync.
SDK_SYNC_ERROR_MESSAGE = "An unhandled error occurred while syncing"
#: The exceptions ``Tap.run_connection_test`` raises to stop each stream after its first record (``--test``).
CONNECTION_TEST_STOPS: tuple[type[BaseException], ...] = (AbortedSyncFailedException, AbortedSyncPausedException)


def request_sender(
    stream: RESTStream[t.Any],
) -> Callable[[requests.PreparedRequest, Context | None], requests.Response]:
    """``RESTStream._request``: authenticate, send with the stream's timeout, log request metrics, validate."""
    return stream._request


def sql_engine(connector: SQLConnector) -> sa.Engine:
    """``SQLConnector._engine``: the connector's one engine, made by its ``create_engine()`` on first use.

    The SDK's docstring calls it "the correct way to access the Connector's engine"; it is still private.
    """
    return connector._engine


def write_state_now(stream: Stream) -> None:
    """Emit the tap's STATE now (``Stream._write_state_message`` writes only when the state is not flushed)."""
    stream.state_manager.is_flushed = False
    stream._write_state_message()


def environment_config(plugin_name: str, schema: Mapping[str, t.Any], own: Iterable[str]) -> dict[str, t.Any]:
    """Settings from ``<PLUGIN_NAME>_<SETTING>`` environment variables, as ``--config=ENV`` reads them.

    The SDK's ``configuration._dict_config.parse_environment_config`` reads the SDK's own settings (it also loads a
    ``.env`` file, as the SDK always did); the plugin's declared settings (``own``) are taken as the raw strings, for
    the settings layer to coerce with a clear message (the SDK would crash on ``int('x')`` and pass ``'0.5'``
    through as a string).
    """
    prefix = f"{plugin_name.upper().replace('-', '_')}_"
    own_names = set(own)
    sdk_schema = {
        "properties": {name: value for name, value in schema.get("properties", {}).items() if name not in own_names}
    }
    config = parse_environment_config(sdk_schema, prefix)
    for name in sorted(own_names):
        variable = prefix + name.upper().replace("-", "_")
        if variable in os.environ:
            text = os.environ[variable]
            if _is_array(schema, name) and not text.strip().startswith("["):
                config[name] = [part.strip() for part in text.split(",") if part.strip()]  # the SDK's legacy "a,b,c"
            else:
                config[name] = text
    return config


def _is_array(schema: Mapping[str, t.Any], name: str) -> bool:
    kind = schema.get("properties", {}).get(name, {}).get("type", [])
    return "array" in ([kind] if isinstance(kind, str) else kind)


def tap_for_test_option(tap_class: type[Tap], ctx: click.Context) -> Tap:
    """The tap ``--test`` runs, made as the SDK's ``Tap.cb_test`` makes it.

    ``--config`` is an eager option whose callback leaves the SDK's ``plugin_base._ConfigInput`` (``config``,
    ``parse_env``) in ``ctx.params["config"]`` by the time ``--test``'s callback runs.
    """
    config_input = ctx.params.get("config")
    config = getattr(config_input, "config", {})
    parse_env = bool(getattr(config_input, "parse_env", False))
    return tap_class(config=config, parse_env_config=parse_env, validate_config=True)


class SdkNoiseFilter(logging.Filter):
    """Drops the SDK's generic "An unhandled error occurred while syncing" line when the cause is reported anyway.

    ``Stream.sync`` logs it inside its ``except`` block, so the exception in flight is visible here: it is dropped
    for the plugin's own fatal errors (the fatal-error path prints their one line) and for the connection test's
    deliberate stop after one record.
    """

    def __init__(self, reported: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.reported = (*reported, *CONNECTION_TEST_STOPS)

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the generic line while a reported exception is being handled."""
        if not str(record.msg).startswith(SDK_SYNC_ERROR_MESSAGE):
            return True
        return not isinstance(sys.exc_info()[1], self.reported)


def hide_sdk_sync_error_line(logger: logging.Logger, reported: tuple[type[BaseException], ...]) -> None:
    """Install :class:`SdkNoiseFilter` on a stream's logger (once)."""
    if not any(isinstance(existing, SdkNoiseFilter) for existing in logger.filters):
        logger.addFilter(SdkNoiseFilter(reported))


class BackoffLinesFilter(logging.Filter):
    """Drops backoff's own "Backing off ..." / "Giving up ..." lines.

    ``RESTStream.request_decorator`` hands the stream's logger to ``backoff.on_exception``, which then logs each
    retry and the final give-up itself (with the exception text); the plugins log one line per retry themselves
    and report the give-up once, as a fatal error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for backoff's formats."""
        message = str(record.msg)
        return not (message.startswith("Backing off %s(...)") or message.startswith("Giving up %s(...)"))


def quiet_backoff_logging(logger: logging.Logger) -> None:
    """Install :class:`BackoffLinesFilter` on a stream's logger (once)."""
    if not any(isinstance(existing, BackoffLinesFilter) for existing in logger.filters):
        logger.addFilter(BackoffLinesFilter())


class CheckedSyncTap(Tap):
    """A tap hook before the first stream of a sync (``Tap.sync_all`` is final).

    ``Tap.sync_all`` calls its private ``_set_compatible_replication_methods`` first, before any stream is read and
    before the incoming STATE is written again; :meth:`check_before_sync` runs there and may raise to stop the run
    with nothing read and no STATE. Discovery and ``--about`` do not call it.
    """

    def check_before_sync(self) -> None:
        """Raise a :class:`ConnectorError` when the sync cannot do anything useful (here: no check)."""

    @override
    def _set_compatible_replication_methods(self) -> None:
        self.check_before_sync()
        super()._set_compatible_replication_methods()


class StateFlushingTarget(Target):
    """Target hooks on the SDK's private message handlers and state writer (``_process_record_message``,
    ``_process_state_message``, ``_write_state_message``).

    - ``current_time_extracted``: the RECORD message's ``time_extracted``, which the SDK does not hand to sinks;
    - ``state_flush_interval_seconds``: on a STATE message that changes the state (``Target._latest_state``), drain
      every sink (after which the SDK writes the STATE) once that long passed since the last drain
      (``Target._max_record_age_in_minutes``);
    - :meth:`write_state_when_safe`: every STATE the SDK writes (it does after each drain of all sinks) goes through
      it, so a target that delivers in the background can write the STATE later, once what came before it is safe.
    """

    current_time_extracted: t.Any = None

    @property
    def state_flush_interval_seconds(self) -> float:
        """Seconds between state-triggered drains (a subclass reads it from its settings)."""
        return 0.0

    def write_state_when_safe(self, write_state: Callable[[], None]) -> None:
        """Call ``write_state`` when the STATE may be written (here: at once); a subclass may defer it."""
        write_state()

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        self.current_time_extracted = message_dict.get("time_extracted")
        super()._process_record_message(message_dict)

    @override
    def _process_state_message(self, message_dict: dict) -> None:
        previous = self._latest_state
        super()._process_state_message(message_dict)
        interval = self.state_flush_interval_seconds
        if self._latest_state != previous and self._max_record_age_in_minutes * 60 >= interval:
            self.drain_all()

    @override
    def _write_state_message(self, state: dict) -> None:
        self.write_state_when_safe(lambda: Target._write_state_message(self, state))


class RecordCheckingSink(Sink):
    """A sink hook on the SDK's private per-record step ``Sink._validate_and_parse``.

    ``Target._process_record_message`` calls, per record: ``_validate_and_parse`` (schema validation, then date-time
    strings parsed), ``preprocess_record``, ``_singer_validate_message`` (key properties present), ``process_record``.
    The SDK ends the run with a traceback when a record breaks its schema or holds an unparsable date-time; here
    each becomes a reason in :attr:`record_problems` (set for every record), which the sink's ``process_record``
    reads, so such a record can be dead-lettered like any other invalid record. The SDK's own validator is off
    (``get_validator`` returns None): :meth:`schema_problems` checks the schema instead.
    """

    record_problems: list[str]

    def schema_problems(self, record: dict) -> list[str]:
        """Why ``record`` breaks the stream's schema (subclasses check it), or ``[]``."""
        return []

    @override
    def get_validator(self) -> None:
        """None: the schema is checked by :meth:`schema_problems`, whose failures do not end the run."""
        return None

    @override
    def _validate_and_parse(self, record: dict) -> dict:
        self.record_problems = self.schema_problems(record) if self.validate_schema else []
        if self.record_problems:
            return record  # values of the wrong type are not parsed as dates
        try:
            return super()._validate_and_parse(record)
        except (ValueError, TypeError) as unparsable:  # the SDK's "Could not parse value ... for field ..."
            self.record_problems = [str(unparsable)]
            return record


class BatchFileError(ConnectorError):
    """A BATCH message the target cannot read: an encoding it does not know, a missing file, a broken line."""


class BatchAsRecordsTarget(Target):
    """A target hook on the SDK's private ``Target._process_batch_message``: each record of a BATCH message's files
    goes the way of a RECORD message (``Target._process_record_message``: stream maps, the schema check, the key
    check, ``Sink.process_record``, the sink's fill level), read one line at a time.

    The SDK would instead read each whole file into a list and hand it to ``Sink.process_batch`` with none of those
    steps. Files are opened the way the SDK opens them (``helpers._batch.StorageTarget``: ``file://`` and whatever
    other filesystem ``fsspec`` has installed); JSON Lines, plain or gzip, as singer-sdk's batch writer writes them.
    """

    def decode_batch_line(self, line: bytes) -> t.Any:
        """One line of a BATCH file (a subclass may read it faster); ``ValueError`` when it is not JSON."""
        return deserialize_json(line)

    @override
    def _process_batch_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"stream", "encoding", "manifest"})
        stream = message_dict["stream"]
        encoding = batch_encoding(stream, message_dict["encoding"])
        for url in message_dict["manifest"]:
            for record in self._batch_file_records(stream, encoding, url):
                self._process_record_message({"type": "RECORD", "stream": stream, "record": record})

    def _batch_file_records(self, stream: str, encoding: BaseBatchFileEncoding, url: str) -> Iterator[dict]:
        head, tail = StorageTarget.split_url(url)
        where = f"BATCH file {url} of stream '{stream}'"
        try:
            with StorageTarget.from_url(head).open(tail, mode="rb") as raw:
                if encoding.compression == "gzip":
                    with gzip.open(raw) as unzipped:
                        yield from self._records_of(unzipped, where)
                else:
                    yield from self._records_of(raw, where)
        except (OSError, EOFError) as error:  # missing, unreadable, truncated or not gzip
            raise BatchFileError(f"{where} cannot be read: {error}") from None

    def _records_of(self, lines: Iterable[bytes], where: str) -> Iterator[dict]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = self.decode_batch_line(line)
            except ValueError as error:
                raise BatchFileError(f"line {number} of {where} is not valid JSON ({error})") from None
            if not isinstance(record, dict):
                raise BatchFileError(f"line {number} of {where} is not a JSON object (a record)")
            yield record


def batch_encoding(stream: str, encoding: t.Any) -> BaseBatchFileEncoding:
    """A BATCH message's ``encoding`` if it is one :class:`BatchAsRecordsTarget` reads, else a clear error."""
    try:
        parsed = BaseBatchFileEncoding.from_dict(encoding)
    except TypeError:  # not a mapping, or keys the SDK does not know
        parsed = None
    if parsed is None or parsed.format != "jsonl" or parsed.compression not in (None, "gzip"):
        raise BatchFileError(
            f"BATCH message of stream '{stream}' has encoding {encoding!r}; this target reads "
            "{'format': 'jsonl', 'compression': 'gzip'} (or no compression): set the tap's batch_config to it"
        )
    return parsed
