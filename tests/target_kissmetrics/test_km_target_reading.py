"""Reading the input fast without reading it differently: msgspec against singer-sdk's own parser, the compiled
schema check against singer-sdk's jsonschema validator, and bad input through the real CLI.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.singerlib.json import deserialize_json
from singer_sdk.sinks.core import JSONSchemaValidator

from emulators.testing import EmulatorProcess
from target_kissmetrics.reader import InvalidInputError, MessageReader
from target_kissmetrics.schema_checks import SCHEMA_PROBLEM, RecordSchemaCheck
from tests.target_kissmetrics.km_target_helpers import (
    dead_letters,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    state_message,
    target_config,
)

StartEmulator = Callable[..., EmulatorProcess]

LINES = [
    '{"type": "RECORD", "stream": "s", "record": {"a": 1.10, "b": -0.0, "c": 1e5, "d": 12345678901234567890123}}',
    '{"type": "RECORD", "stream": "s", "record": {"text": "caf\\u00e9 \\u2603 日本", "list": [1, null, true]}}',
    '{"type": "STATE", "value": {"bookmarks": {"s": {"last": "2026-11-18T15:30:00Z"}}}}',
    '{"type": "RECORD", "stream": "s", "record": {"a": 1, "a": 2}}',
]


@pytest.mark.parametrize("line", LINES)
def test_messages_read_exactly_as_singer_sdk_reads_them(line: str) -> None:
    reader = MessageReader()
    ours = reader.deserialize_json(line.encode())
    assert ours == deserialize_json(line)
    assert repr(ours) == repr(deserialize_json(line)), "same types too (Decimal, not float)"


def test_lines_msgspec_refuses_are_read_the_sdk_way() -> None:
    reader = MessageReader()
    nan = reader.deserialize_json(b'{"type": "RECORD", "stream": "s", "record": {"x": NaN}}')
    assert math.isnan(nan["record"]["x"])
    surrogate = reader.deserialize_json(b'{"type": "RECORD", "stream": "s", "record": {"x": "\\ud800"}}')
    assert surrogate["record"]["x"] == "\ud800"


def test_a_line_that_is_no_json_object_names_its_number() -> None:
    reader = MessageReader()
    reader.deserialize_json(LINES[0].encode())
    with pytest.raises(InvalidInputError, match=r"^input line 2 is not valid JSON .*'\{\"type\": \"RECORD\", \"str"):
        reader.deserialize_json(b'{"type": "RECORD", "stream": "s", "record": {"x": 1')
    with pytest.raises(InvalidInputError, match="input line 3 is not a JSON object: '\\[1, 2\\]'"):
        reader.deserialize_json(b"[1, 2]\n")


def test_the_reader_takes_text_input_too() -> None:
    counts = MessageReader().process_lines(io.StringIO(LINES[2] + "\n"), {"STATE": lambda message: None})
    assert counts == {"STATE": 1}


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "when": {"type": ["string", "null"], "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "plan": {"type": "string", "enum": ["free", "pro"], "default": "free"},
    },
    "required": ["id"],
}
RECORDS = [
    {"id": 1, "amount": Decimal("1.5"), "when": "2026-11-18T15:30:00Z", "tags": ["a"], "address": {"city": "Bern"}},
    {"id": 2.0, "amount": None, "when": "not a date"},  # formats are not checked, as in singer-sdk
    {"id": "1"},
    {"id": True},
    {"id": Decimal("2")},
    {"amount": 1},
    {"id": 1, "tags": ["a", 2]},
    {"id": 1, "address": {}},
    {"id": 1, "plan": "gold"},
    {"id": 1, "extra": {"anything": [1]}},
]


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_the_compiled_schema_check_accepts_and_rejects_what_singer_sdk_does(record: dict) -> None:
    sdk = JSONSchemaValidator(SCHEMA)
    try:
        sdk.validate(dict(record))
        sdk_accepts = True
    except InvalidRecord:
        sdk_accepts = False
    checked = dict(record)
    problems = RecordSchemaCheck(SCHEMA).problems(checked)
    assert (problems == []) == sdk_accepts, problems
    assert checked == record, "the check never fills in defaults"
    for problem in problems:
        assert problem.startswith(SCHEMA_PROBLEM)


def test_schema_problems_name_the_field_and_the_rule() -> None:
    check = RecordSchemaCheck(SCHEMA)
    assert check.problems({"id": "1"}) == [SCHEMA_PROBLEM + "id must be integer"]
    assert check.problems({"id": 1, "address": {}}) == [SCHEMA_PROBLEM + "address must contain ['city'] properties"]
    assert check.problems({}) == [SCHEMA_PROBLEM + "record must contain ['id'] properties"]


def test_a_schema_with_an_outside_reference_is_checked_by_the_sdk_validator() -> None:
    schema = {"type": "object", "properties": {"id": {"$ref": "https://schemas.example.com/id.json"}}}
    check = RecordSchemaCheck(schema)
    assert check.problems({"other": 1}) == []  # the reference is never fetched (jsonschema does not go online)


def test_records_that_break_their_schema_are_dead_lettered_and_the_rest_sent(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {
        "id": {"type": "integer"},
        "person": {"type": "string"},
        "event": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "n": {"type": ["integer", "null"]},
    }
    records = [
        {"id": 1, "person": "p1", "event": "Good", "timestamp": "2010-01-01T00:00:00Z", "n": 1},
        {"id": 2, "person": "p2", "event": "Good", "timestamp": "2010-01-01T00:00:00Z", "n": "two"},
        {"id": 3, "person": "p3", "event": "Good", "timestamp": "yesterday", "n": 3},
        {"id": 4, "person": "p4", "event": "Good", "timestamp": "2010-01-01T00:00:04Z", "n": None},
    ]
    messages = [
        schema_message("events", schema, ["id"]),
        *(record_message("events", record) for record in records),
        state_message({"bookmarks": {"events": 4}}),
    ]
    result = run_target(tmp_path, target_config(tmp_path, emulator, max_dead_letter_ratio=0.5), messages)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(beacon["params"]["_p"] for beacon in received_beacons(emulator)) == ["p1", "p4"]
    letters = dead_letters(tmp_path)
    assert [letter["key"] for letter in letters] == [{"id": 2}, {"id": 3}]
    assert letters[0]["reasons"] == [SCHEMA_PROBLEM + "n must be integer or null"]
    assert letters[0]["record"] == records[1]
    assert letters[1]["reasons"] == ["field 'timestamp' is not a valid date-time"]  # the value is not in logs
    assert result.target_states == [{"bookmarks": {"events": 4}}]
    assert "2 invalid records dead-lettered" in result.stderr


def test_validate_records_false_skips_the_schema_check(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"person": {"type": "string"}, "event": {"type": "string"}, "timestamp": {"type": "integer"}}
    record = {"person": "p", "event": "E", "timestamp": "1262304000"}  # a string where the schema says integer
    config = target_config(tmp_path, emulator, validate_records=False)
    result = run_target(tmp_path, config, [schema_message("e", schema), record_message("e", record)])
    assert result.returncode == 0, result.stderr
    assert [beacon["params"]["_t"] for beacon in received_beacons(emulator)] == ["1262304000"]
    assert dead_letters(tmp_path) == []


def test_input_that_is_not_json_stops_the_run_with_one_line_and_no_state(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"person": {"type": "string"}, "event": {"type": "string"}, "timestamp": {"type": "integer"}}
    good = singer_lines(
        [schema_message("e", schema), record_message("e", {"person": "p", "event": "E", "timestamp": 1})]
    )
    result = run_target(tmp_path, target_config(tmp_path, emulator), good + '{"type": "STATE", "value": {"cut off\n')
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (error,) = result.error_lines
    assert "input line 3 is not valid JSON" in error
    assert "check the tap's output" in error
    assert result.stdout == ""


def test_a_record_missing_its_key_property_stops_with_one_line(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"id": {"type": "integer"}, "person": {"type": "string"}, "event": {"type": "string"}}
    messages = [schema_message("e", schema, ["id"]), record_message("e", {"person": "p", "event": "E"})]
    result = run_target(tmp_path, target_config(tmp_path, emulator), messages)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (error,) = result.error_lines
    assert "Record is missing one or more key_properties" in error
