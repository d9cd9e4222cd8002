"""``--resend-dead-letters``: dead letters sent again after the mapping is fixed, as the first run would have sent them.

The real CLI against the Kissmetrics emulator: a run with a broken mapping dead-letters its rows (and fails); with
the mapping fixed, a resend delivers exactly the beacons a run of the fixed mapping builds (same ``_t``), so the
emulator's deduplicated view keeps each row once however often the file is resent; rows still invalid go to a new
dead-letter file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from emulators.testing import EmulatorProcess
from target_kissmetrics.dead_letters import dead_letter_line, resend_messages
from target_kissmetrics.reader import decode_json
from tests.support.cli import TARGET_KM, run_plugin
from tests.target_kissmetrics.km_target_helpers import (
    JAN_1_2010,
    dead_letters,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    target_config,
)

StartEmulator = Callable[..., EmulatorProcess]
STRING = {"type": ["string", "null"]}
PLAYS_SCHEMA = {
    "id": {"type": "integer"},
    "email": STRING,
    "level": STRING,
    "price": {"type": ["number", "null"]},
    "at": {"type": ["string", "null"], "format": "date-time"},
    "timestamp": {"type": "integer"},
}
VIEWS_SCHEMA = {"id": {"type": "integer"}, "email": STRING, "page": STRING}  # no timestamp: _t is time_extracted
BROKEN = {
    "plays": {"kind": "event", "person": "email", "event": "Played {level}"},  # level is empty in every row
    "views": {"kind": "event", "person": "email", "event": "Viewed {page}"},
}
FIXED = {
    "plays": {"kind": "event", "person": "email", "event": "Played"},
    "views": {"kind": "event", "person": "email", "event": "Viewed"},
}


def messages() -> str:
    """Five plays (the last without a person: invalid whatever the mapping) and two views, as Singer lines (prices
    written as the exact decimals ``12.50`` ... that a tap writes)."""
    plays = [
        {
            "id": n,
            "email": f"user-{n}@example.com" if n < 4 else "",
            "level": None,
            "price": Decimal("12.50") + n,
            "at": f"2026-11-18T09:00:0{n}Z",
            "timestamp": JAN_1_2010 + n,
        }
        for n in range(5)
    ]
    views = [{"id": n, "email": f"user-{n}@example.com", "page": None} for n in range(2)]
    singer = [
        schema_message("plays", PLAYS_SCHEMA, ["id"]),
        *(record_message("plays", play) for play in plays),
        schema_message("views", VIEWS_SCHEMA, ["id"]),
        *(record_message("views", view, time_extracted=f"2026-11-18T10:00:0{view['id']}+00:00") for view in views),
    ]
    encoder = msgspec.json.Encoder(decimal_format="number")
    return "".join(encoder.encode(message).decode() + "\n" for message in singer)


def resend(tmp_path: Path, config: dict[str, Any], source: Path) -> Any:
    return run_plugin(TARGET_KM, config, tmp_path, args=("--resend-dead-letters", str(source)))


def beacon_params(emulator: EmulatorProcess) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(beacon["params"].items())) for beacon in received_beacons(emulator))


def test_resent_dead_letters_are_the_beacons_of_a_fixed_run_and_kept_once(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    broken = run_target(tmp_path, target_config(tmp_path, emulator, streams=BROKEN), messages())
    assert broken.returncode == 1
    assert "too many dead letters" in broken.error_lines[0]
    assert received_beacons(emulator) == []
    source = tmp_path / "dead-letters.jsonl"
    original = source.read_text()
    assert len(dead_letters(tmp_path)) == 7

    fixed = target_config(tmp_path, emulator, streams=FIXED, max_dead_letter_ratio=0.5)
    first = resend(tmp_path, fixed, source)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # a resend emits no STATE
    assert "'plays' 4 records sent, 1 dead-lettered (1x person field 'email' is missing or empty)" in first.stderr
    assert "'views' 2 records sent, 0 dead-lettered" in first.stderr
    (still_invalid,) = sorted(tmp_path.glob("dead-letters.resend-*.jsonl"))
    assert f"dead-lettered to {still_invalid}" in first.stderr
    assert [json.loads(line)["key"] for line in still_invalid.read_text().splitlines()] == [{"id": 4}]
    assert source.read_text() == original  # the resent file is left as it was

    # A run of the fixed mapping over the same input builds exactly these beacons.
    resent = beacon_params(emulator)
    with EmulatorProcess("kissmetrics") as direct:
        run = run_target(
            tmp_path / "direct",
            target_config(tmp_path / "direct", direct, streams=FIXED, max_dead_letter_ratio=0.5),
            messages(),
        )
        assert run.returncode == 0, run.stderr
        assert beacon_params(direct) == resent
    params = {
        (dict(beacon)["_p"], dict(beacon)["_t"], dict(beacon).get("price"), dict(beacon).get("at")) for beacon in resent
    }
    assert ("user-1@example.com", str(JAN_1_2010 + 1), "13.50", "2026-11-18T09:00:01+00:00") in params
    viewed_at = int(datetime(2026, 11, 18, 10, 0, 1, tzinfo=timezone.utc).timestamp())
    assert ("user-1@example.com", str(viewed_at), None, None) in params  # views: _t from the RECORD's time_extracted

    kept = emulator.control("dedup")["events"]
    assert len(kept) == 6
    for _ in range(2):  # resending again sends the same beacons: Kissmetrics keeps each once
        again = resend(tmp_path, fixed, source)
        assert again.returncode == 0, again.stderr
        assert emulator.control("dedup")["events"] == kept
    assert emulator.control("stats")["raw"]["total"] == 6 * 3


def test_a_resend_of_records_still_invalid_fails_by_the_same_rule_and_keeps_them(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams=BROKEN)
    assert run_target(tmp_path, config, messages()).returncode == 1
    source = tmp_path / "dead-letters.jsonl"
    result = resend(tmp_path, config, source)  # the mapping is still broken
    assert result.returncode == 1
    (error,) = result.error_lines
    assert "too many dead letters: stream 'plays' has 5 of 5 records dead-lettered" in error
    (still_invalid,) = tmp_path.glob("dead-letters.resend-*.jsonl")
    assert len(still_invalid.read_text().splitlines()) == 7
    assert received_beacons(emulator) == []


def test_a_file_that_is_not_dead_letters_stops_with_one_line(tmp_path: Path) -> None:
    source = tmp_path / "not-dead-letters.jsonl"
    source.write_text('{"stream": "plays", "record": {}}\n{"type": "STATE"}\n')
    config = {"api_key": "km-demo-key", "tracking_url": "http://127.0.0.1:9", "dead_letter_path": str(source)}
    result = resend(tmp_path, config, source)
    assert result.returncode == 1
    (error,) = result.error_lines
    assert f"line 2 of {source} is not a dead letter (no 'stream')" in error
    assert "Traceback" not in result.stderr


def test_dead_letters_keep_exact_numbers_and_non_finite_values(tmp_path: Path) -> None:
    record = {
        "id": 1,
        "price": Decimal("12.50"),
        "ratio": float("nan"),
        "at": datetime(2026, 11, 18, tzinfo=timezone.utc),
    }
    schema = {"schema": {"properties": {"price": {}}}, "key_properties": ["id"]}
    source = tmp_path / "letters.jsonl"
    source.write_text(
        dead_letter_line("s", {"id": 1}, ["r"], record, schema=schema, time_extracted="2026-11-18") + "\n"
    )
    warnings: list[str] = []
    schema_message, record_message_ = (decode_json(line) for line in resend_messages(source, warnings.append))
    assert schema_message == {"type": "SCHEMA", "stream": "s", **schema}
    resent = record_message_["record"]
    assert resent["price"] == Decimal("12.50")
    assert str(resent["price"]) == "12.50"
    assert resent["ratio"] != resent["ratio"]  # NaN stays NaN (not null, which would drop the property)
    assert resent["at"] == "2026-11-18T00:00:00Z"
    assert record_message_["time_extracted"] == "2026-11-18"
    assert warnings == []
