"""Every private singer-sdk member ``connector_common.sdk_compat`` relies on, checked against the installed SDK.

When one of these fails after an SDK upgrade, ``sdk_compat.py`` (the only module that touches SDK privates) needs
a look before the plugins are trusted again.
"""

from __future__ import annotations

import datetime
import inspect
import io
import json
import logging
import sys
import typing as t
from collections.abc import Callable
from pathlib import Path

import backoff
import pytest
import sqlalchemy as sa
from singer_sdk import Stream, Tap, typing as th
from singer_sdk.contrib.batch_encoder_jsonl import JSONLinesBatcher
from singer_sdk.helpers._batch import BatchConfig
from singer_sdk.plugin_base import BaseSingerReader
from singer_sdk.sinks import Sink
from singer_sdk.sql import SQLConnector
from singer_sdk.streams import RESTStream
from singer_sdk.target_base import Target

from connector_common import sdk_compat


def parameters(function: Callable[..., object]) -> list[str]:
    """A callable's parameter names."""
    return list(inspect.signature(function).parameters)


def test_rest_stream_request_is_the_one_request_primitive() -> None:
    assert parameters(RESTStream._request) == ["self", "prepared_request", "context"]
    source = inspect.getsource(RESTStream._request)
    for step in ("self.authenticator(prepared_request)", "timeout=self.timeout", "self.validate_response(response)"):
        assert step in source, f"RESTStream._request no longer does {step}"


def test_request_decorator_hands_the_stream_logger_to_backoff() -> None:
    source = inspect.getsource(RESTStream.request_decorator)
    assert "backoff.on_exception" in source
    assert "logger=self.logger" in source
    for hook in (
        "self.backoff_wait_generator",
        "self.backoff_max_tries",
        "self.backoff_handler",
        "self.backoff_jitter",
    ):
        assert hook in source, f"request_decorator no longer uses {hook}"


def test_backoff_lines_filter_drops_exactly_backoffs_own_lines() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test-sdk-compat-backoff")
    logger.propagate = False
    logger.addHandler(Keep())
    sdk_compat.quiet_backoff_logging(logger)

    @backoff.on_exception(backoff.constant, ValueError, max_tries=2, interval=0, logger=logger, jitter=None)
    def always_fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        always_fails()
    logger.warning("Retrying a weeks request in 1 s after 1 of 3 tries: HTTP 503")
    assert [record.getMessage() for record in records] == [
        "Retrying a weeks request in 1 s after 1 of 3 tries: HTTP 503"
    ]
    assert len([f for f in logger.filters if isinstance(f, sdk_compat.BackoffLinesFilter)]) == 1
    sdk_compat.quiet_backoff_logging(logger)
    assert len([f for f in logger.filters if isinstance(f, sdk_compat.BackoffLinesFilter)]) == 1


class _CountingConnector(SQLConnector):
    made = 0

    def create_engine(self) -> sa.Engine:
        type(self).made += 1
        return sa.create_engine("sqlite://", poolclass=sa.pool.NullPool)


def test_sql_engine_is_the_connectors_one_engine_made_by_its_create_engine() -> None:
    assert isinstance(inspect.getattr_static(SQLConnector, "_engine"), property)
    assert "self.create_engine()" in inspect.getsource(SQLConnector._engine.fget)  # type: ignore[attr-defined]
    connector = _CountingConnector(config={})
    engine = sdk_compat.sql_engine(connector)
    assert sdk_compat.sql_engine(connector) is engine
    assert _CountingConnector.made == 1, "made once, by the connector's own create_engine"
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select 41 + 1").scalar_one() == 42
    assert sdk_compat.sql_engine(_CountingConnector(config={})) is not engine, "one engine per connector"


def test_stream_write_state_message_writes_only_when_not_flushed() -> None:
    assert parameters(Stream._write_state_message) == ["self"]
    source = inspect.getsource(Stream._write_state_message)
    assert "self.state_manager.is_flushed" in source


class _OneStream(Stream):
    name = "things"
    schema = th.PropertiesList(th.Property("id", th.IntegerType)).to_dict()

    def get_records(self, context: object) -> list[dict]:
        return [{"id": 1}]


class _OneStreamTap(Tap):
    name = "tap-compat-test"
    config_jsonschema = th.PropertiesList().to_dict()

    def discover_streams(self) -> list[Stream]:
        return [_OneStream(self)]


def test_write_state_now_emits_a_state_message(capsys: pytest.CaptureFixture[str]) -> None:
    stream = _OneStreamTap(config={}).streams["things"]
    stream.stream_state["marker"] = "first"
    sdk_compat.write_state_now(stream)
    stream.stream_state["marker"] = "second"
    sdk_compat.write_state_now(stream)  # the stream was flushed in between: written again all the same
    sdk_compat.write_state_now(stream)  # the SDK's state writer skips a STATE equal to the last one
    states = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [state["value"]["bookmarks"]["things"]["marker"] for state in states] == ["first", "second"]


def test_sdk_sync_error_line_is_still_logged_inside_the_except_block() -> None:
    source = inspect.getsource(Stream.sync)
    assert sdk_compat.SDK_SYNC_ERROR_MESSAGE in source
    assert source.index("except Exception") < source.index(sdk_compat.SDK_SYNC_ERROR_MESSAGE)


def test_connection_test_stops_streams_with_the_abort_exceptions() -> None:
    source = inspect.getsource(Tap.run_sync_dry_run)
    for stop in sdk_compat.CONNECTION_TEST_STOPS:
        assert stop.__name__ in source


def test_sdk_noise_filter_drops_the_generic_line_only_for_reported_errors() -> None:
    class ReportedError(Exception):
        pass

    noise = sdk_compat.SdkNoiseFilter((ReportedError,))
    line = logging.LogRecord("s", logging.ERROR, __file__, 1, sdk_compat.SDK_SYNC_ERROR_MESSAGE + " '%s'", ("x",), None)
    try:
        raise ReportedError
    except ReportedError:
        assert noise.filter(line) is False
    try:
        raise KeyError("a bug")
    except KeyError:
        assert noise.filter(line) is True, "a bug keeps the SDK's line (and its traceback)"
    other = logging.LogRecord("s", logging.ERROR, __file__, 1, "something else", (), None)
    assert noise.filter(other) is True


def test_environment_config_reads_sdk_settings_with_the_sdk_and_own_ones_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = th.PropertiesList(
        th.Property("max_retries", th.IntegerType),
        th.Property("names", th.ArrayType(th.StringType)),
        th.Property("stream_maps", th.ObjectType(additional_properties=True)),
    ).to_dict()
    monkeypatch.setenv("TAP_COMPAT_TEST_MAX_RETRIES", "not-a-number")
    monkeypatch.setenv("TAP_COMPAT_TEST_NAMES", "a, b")
    monkeypatch.setenv("TAP_COMPAT_TEST_STREAM_MAPS", '{"things": {"id": "id * 2"}}')
    config = sdk_compat.environment_config("tap-compat-test", schema, {"max_retries", "names"})
    assert config == {"max_retries": "not-a-number", "names": ["a", "b"], "stream_maps": {"things": {"id": "id * 2"}}}
    assert parameters(sdk_compat.parse_environment_config)[:2] == ["config_schema", "prefix"]


def test_target_private_message_handlers_and_state_attributes() -> None:
    assert parameters(Target._process_record_message) == ["self", "message_dict"]
    assert parameters(Target._process_state_message) == ["self", "message_dict"]
    assert "self._latest_state = state" in inspect.getsource(Target._process_state_message)
    assert isinstance(inspect.getattr_static(Target, "_max_record_age_in_minutes"), property)
    assert "self._latest_state" in inspect.getsource(Target.drain_all)


def test_state_flushing_target_sees_time_extracted_and_flushes_on_state(monkeypatch: pytest.MonkeyPatch) -> None:
    pending: list[dict] = []
    drained: list[list[dict]] = []

    class ListSink(Sink):
        def process_record(self, record: dict, context: dict) -> None:
            pending.append(record)

        def process_batch(self, context: dict) -> None:
            drained.append(pending.copy())
            pending.clear()

    class FlushingTarget(sdk_compat.StateFlushingTarget):
        name = "target-flushing"
        config_jsonschema = th.PropertiesList().to_dict()
        default_sink_class = ListSink

    target = FlushingTarget(config={})
    messages = [
        {"type": "SCHEMA", "stream": "events", "schema": {"properties": {"person": {}, "event": {}}},
         "key_properties": []},
        {"type": "RECORD", "stream": "events", "record": {"person": "p1", "event": "Signed up"},
         "time_extracted": "2026-11-18T15:30:00+00:00"},
        {"type": "STATE", "value": {"bookmarks": {"events": 1}}},
    ]  # fmt: skip
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    target.process_lines(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert target.current_time_extracted == "2026-11-18T15:30:00+00:00"
    assert drained == [[{"person": "p1", "event": "Signed up"}]], "the STATE drained the sink (interval 0)"
    assert [json.loads(line) for line in stdout.getvalue().splitlines()] == [{"bookmarks": {"events": 1}}], (
        "the STATE was emitted at once, after draining"
    )


def test_the_test_option_finds_the_config_input_where_the_sdk_leaves_it() -> None:
    source = inspect.getsource(Tap.cb_test)
    assert 'ctx.params.get("config", _ConfigInput())' in source
    assert "config=config.config" in source
    assert "parse_env_config=config.parse_env" in source
    config_input = sdk_compat.parse_environment_config.__module__  # the SDK still has its config helpers module
    assert config_input == "singer_sdk.configuration._dict_config"


def test_record_steps_run_in_the_order_record_checking_sink_relies_on() -> None:
    source = inspect.getsource(Target._process_record_message)
    steps = [
        "sink._validate_and_parse(",
        "sink.preprocess_record(",
        "sink._singer_validate_message(",
        "sink.process_record(",
    ]
    positions = [source.index(step) for step in steps]
    assert positions == sorted(positions), "the SDK's per-record steps changed order"
    assert parameters(Sink._validate_and_parse) == ["self", "record"]
    validate_and_parse = inspect.getsource(Sink._validate_and_parse)
    assert "self._validator" in validate_and_parse
    assert "self._parse_timestamps_in_record(" in validate_and_parse


class _CheckingSink(sdk_compat.RecordCheckingSink):
    seen: t.ClassVar[list[tuple[dict, list[str]]]] = []

    def schema_problems(self, record: dict) -> list[str]:
        return ["no odd ids"] if record["id"] % 2 else []

    def process_record(self, record: dict, context: dict) -> None:
        self.seen.append((dict(record), list(self.record_problems)))

    def process_batch(self, context: dict) -> None:
        pass


class _CheckingTarget(Target):
    name = "target-compat-test"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = _CheckingSink


def test_record_checking_sink_hands_problems_to_process_record_instead_of_failing() -> None:
    schema = {"properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}}
    messages = [
        {"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]},
        {"type": "RECORD", "stream": "s", "record": {"id": 2, "at": "2026-11-18T15:30:00Z"}},
        {"type": "RECORD", "stream": "s", "record": {"id": 3, "at": "2026-11-18T15:30:00Z"}},
        {"type": "RECORD", "stream": "s", "record": {"id": 4, "at": "not a date"}},
    ]
    _CheckingSink.seen.clear()
    _CheckingTarget(config={}).process_lines(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    (good, good_problems), (odd, odd_problems), (_, bad_date_problems) = _CheckingSink.seen
    assert good_problems == []
    assert isinstance(good["at"], datetime.datetime), "dates are still parsed by the SDK"
    assert odd_problems == ["no odd ids"]
    assert odd["at"] == "2026-11-18T15:30:00Z", "a rejected record is not parsed"
    assert bad_date_problems == ["Could not parse value 'not a date' for field 'at'."]
    assert _CheckingSink(_CheckingTarget(config={}), "x", schema, None).get_validator() is None


class _BatchTarget(sdk_compat.BatchAsRecordsTarget):
    name = "target-compat-batch-test"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = _CheckingSink


def test_batch_messages_reach_the_hook_and_their_records_take_the_record_path(tmp_path: Path) -> None:
    source = inspect.getsource(BaseSingerReader.process_lines)
    assert "SingerMessageType.BATCH: self._process_batch_message" in source, "BATCH is no longer dispatched there"
    assert parameters(Target._process_batch_message) == parameters(Target._process_record_message)
    assert parameters(Target._assert_line_requires) == ["self", "message_dict", "requires"]
    # Files written by the SDK's own batch writer, read through the SDK's storage helpers.
    config = BatchConfig.from_dict(
        {"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": tmp_path.as_uri()}}
    )
    records = [{"id": n, "at": "2026-11-18T15:30:00Z"} for n in range(4)]
    (manifest,) = JSONLinesBatcher("tap-x", "s", config).get_batches(iter(records))
    schema = {"properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}}
    messages = [
        {"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]},
        {"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl", "compression": "gzip"}, "manifest": manifest},
    ]
    _CheckingSink.seen.clear()
    _BatchTarget(config={}).process_lines(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert [record["id"] for record, _ in _CheckingSink.seen] == [0, 1, 2, 3]
    assert [problems for _, problems in _CheckingSink.seen] == [[], ["no odd ids"], [], ["no odd ids"]]
    assert isinstance(_CheckingSink.seen[0][0]["at"], datetime.datetime), "batch records are parsed as records are"


def test_checked_sync_tap_checks_before_any_stream_is_read_or_state_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Tap.sync_all`` (final) calls ``_set_compatible_replication_methods`` before it writes the STATE or syncs."""
    source = inspect.getsource(Tap.sync_all)
    assert source.index("self._set_compatible_replication_methods()") < source.index("write_state")
    assert source.index("self._set_compatible_replication_methods()") < source.index("stream.sync()")
    events: list[str] = []

    class Numbers(Stream):
        name = "numbers"
        schema = th.PropertiesList(th.Property("n", th.IntegerType)).to_dict()

        def get_records(self, context: t.Any) -> t.Iterable[dict]:
            events.append("read")
            yield {"n": 1}

    class Refusing(sdk_compat.CheckedSyncTap):
        name = "tap-refusing"
        config_jsonschema = th.PropertiesList().to_dict()

        def discover_streams(self) -> list[Stream]:
            return [Numbers(self)]

        def check_before_sync(self) -> None:
            events.append("check")
            raise sdk_compat.ConnectorError("nothing to read")

    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    tap = Refusing(config={}, state={"bookmarks": {"numbers": {"replication_key_value": 1}}})
    with pytest.raises(sdk_compat.ConnectorError, match="nothing to read"):
        tap.sync_all()
    assert events == ["check"], "the check ran first, and no stream was read"
    assert stdout.getvalue() == "", "no STATE (nor anything else) was written before the check"
