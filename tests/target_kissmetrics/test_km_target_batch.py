"""BATCH messages (singer-sdk's batch files) through the real CLI: the same beacons, dead letters and STATE order
as RECORD messages."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.contrib.batch_encoder_jsonl import JSONLinesBatcher
from singer_sdk.helpers._batch import BatchConfig, SDKBatchMessage
from singer_sdk.singerlib.json import serialize_json

from emulators.testing import EmulatorProcess
from tests.target_kissmetrics.km_target_helpers import (
    JAN_1_2010,
    PLAYS_SCHEMA,
    dead_letters,
    play,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    start_fed_target,
    state_message,
    states_checked_against_the_log,
    target_config,
)

GZIP_JSONL = {"format": "jsonl", "compression": "gzip"}


def sdk_batch_messages(directory: Path, records: list[dict], batch_size: int) -> list[dict]:
    """BATCH messages as a singer-sdk tap with ``batch_config`` writes them: its own JSON Lines batcher writes the
    files, its own message class the messages; a STATE naming the last record follows each one."""
    config = BatchConfig.from_dict(
        {"encoding": GZIP_JSONL, "storage": {"root": directory.as_uri()}, "batch_size": batch_size}
    )
    messages: list[dict] = []
    last = -1
    for manifest in JSONLinesBatcher("tap-plays", "plays", config).get_batches(iter(records)):
        message = SDKBatchMessage(stream="plays", encoding=config.encoding, manifest=manifest)
        messages.append(json.loads(serialize_json(message.to_dict())))
        last += batch_size
        messages.append(state_message({"bookmarks": {"plays": min(last, len(records) - 1)}}))
    return messages


def beacon_params(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    """Every received beacon's kind and parameters, in a stable order."""
    beacons = [{"kind": beacon["kind"], **beacon["params"]} for beacon in received_beacons(emulator)]
    return sorted(beacons, key=lambda beacon: sorted(beacon.items()))


def test_batch_files_from_the_sdks_writer_are_delivered_like_records(tmp_path: Path) -> None:
    total, batch_size = 1200, 300
    records = [play(n) for n in range(total)]
    batches = sdk_batch_messages(tmp_path / "batches", records, batch_size)
    assert [message["type"] for message in batches].count("BATCH") == total // batch_size
    with EmulatorProcess("kissmetrics", "--latency-ms", "20") as emulator:
        config = target_config(tmp_path, emulator, max_concurrency=64, state_flush_seconds=0)
        process = start_fed_target(tmp_path, config, [schema_message("plays", PLAYS_SCHEMA), *batches])
        states = states_checked_against_the_log(process, emulator)
        from_batches = beacon_params(emulator)
    assert sorted(set(states)) == [299, 599, 899, 1199]
    arrivals = Counter(int(beacon["_t"]) - JAN_1_2010 for beacon in from_batches)
    assert sorted(arrivals) == list(range(total))
    assert set(arrivals.values()) == {1}, "a beacon arrived twice"
    assert {(beacon["kind"], beacon["_n"], beacon["_d"]) for beacon in from_batches} == {("e", "Played", "1")}
    by_time = {int(beacon["_t"]) - JAN_1_2010: beacon["_p"] for beacon in from_batches}
    assert all(by_time[n] == f"user-{n % 97}" for n in range(total))

    # The same records as RECORD messages give exactly the same beacons.
    with EmulatorProcess("kissmetrics") as emulator:
        messages = [schema_message("plays", PLAYS_SCHEMA), *(record_message("plays", r) for r in records)]
        result = run_target(tmp_path, target_config(tmp_path, emulator), messages)
        assert result.returncode == 0, result.stderr
        assert beacon_params(emulator) == from_batches
    assert dead_letters(tmp_path) == []


def test_batch_records_get_stream_maps_schema_checks_and_dead_letters(tmp_path: Path) -> None:
    records = [
        play(0),
        {**play(1), "timestamp": "soon"},  # breaks the schema (integer)
        play(2),
        {**play(3), "event": ""},  # breaks a beacon rule
        play(4),
    ]
    plain = tmp_path / "plays-1.jsonl"  # written by hand in the SDK's format, no compression
    plain.write_text("".join(json.dumps(record) + "\n" for record in records))
    messages = [
        schema_message("plays", PLAYS_SCHEMA),
        {"type": "BATCH", "stream": "plays", "encoding": {"format": "jsonl"}, "manifest": [plain.as_uri()]},
        state_message({"bookmarks": {"plays": 4}}),
    ]
    with EmulatorProcess("kissmetrics") as emulator:
        config = target_config(
            tmp_path, emulator, stream_maps={"plays": {"person": "person.upper()"}}, max_dead_letter_ratio=0.5
        )
        result = run_target(tmp_path, config, messages)
        assert result.returncode == 0, result.stderr
        beacons = beacon_params(emulator)
    assert [(beacon["_p"], beacon["_n"], int(beacon["_t"]) - JAN_1_2010) for beacon in beacons] == [
        ("USER-0", "Played", 0),
        ("USER-2", "Played", 2),
        ("USER-4", "Played", 4),
    ]
    letters = dead_letters(tmp_path)
    assert [letter["record"]["timestamp"] for letter in letters] == ["soon", JAN_1_2010 + 3]
    assert "timestamp" in letters[0]["reasons"][0]
    assert letters[1]["reasons"] == ["event name field 'event' is missing or empty"]
    assert result.target_states == [{"bookmarks": {"plays": 4}}]
    assert "3 beacons sent (/e 3, /s 0, /a 0), each answered 200" in result.stderr
    assert "2 invalid records dead-lettered" in result.stderr


def broken_gzip(path: Path) -> str:
    path.write_bytes(gzip.compress(json.dumps(play(0)).encode() + b"\n")[:-8])  # cut off: no end-of-stream mark
    return path.as_uri()


def not_json(path: Path) -> str:
    path.write_bytes(gzip.compress(json.dumps(play(0)).encode() + b"\n{not json\n"))
    return path.as_uri()


@pytest.mark.parametrize(
    ("encoding", "make_file", "expected"),
    [
        ({"format": "parquet"}, None, "has encoding {'format': 'parquet'}; this target reads"),
        (GZIP_JSONL, None, "cannot be read: [Errno 2] No such file or directory"),
        (GZIP_JSONL, broken_gzip, "cannot be read: Compressed file ended before the end-of-stream marker"),
        (GZIP_JSONL, not_json, "line 2 of BATCH file"),
    ],
)
def test_a_batch_the_target_cannot_read_stops_with_one_line_and_no_state_after_it(
    tmp_path: Path, encoding: dict, make_file: Any, expected: str
) -> None:
    url = make_file(tmp_path / "plays.json.gz") if make_file else (tmp_path / "missing.json.gz").as_uri()
    messages = [
        schema_message("plays", PLAYS_SCHEMA),
        record_message("plays", play(100)),
        state_message({"bookmarks": {"plays": 100}}),
        {"type": "BATCH", "stream": "plays", "encoding": encoding, "manifest": [url]},
        state_message({"bookmarks": {"plays": 101}}),
    ]
    with EmulatorProcess("kissmetrics") as emulator:
        result = run_target(tmp_path, target_config(tmp_path, emulator, state_flush_seconds=0), messages)
        delivered = [int(beacon["params"]["_t"]) - JAN_1_2010 for beacon in received_beacons(emulator)]
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1, result.stderr
    assert expected in error_lines[0]
    assert "of stream 'plays'" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert result.target_states in ([], [{"bookmarks": {"plays": 100}}]), "a STATE passed the broken BATCH"
    if result.target_states:
        assert 100 in delivered, "the STATE came before its beacon"
    assert set(delivered) <= {0, 100}  # record 0: the line before the broken one
