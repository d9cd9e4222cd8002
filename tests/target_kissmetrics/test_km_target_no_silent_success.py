"""No silent success (issue 23): the exit code, the STATE and the summary never claim more than happened.

The real target CLI against the Kissmetrics emulator: a mapping checked against the SCHEMA before any beacon,
the dead-letter ratio rule, dry runs without STATE, no personal data in logs, wrong paths, oversized beacons.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from target_kissmetrics.beacons import MAX_BEACON_URL_BYTES
from target_kissmetrics.records import describe_invalid_record, identity_hash
from target_kissmetrics.schema_checks import mapping_field_problems
from target_kissmetrics.stream_mappings import StreamMapping
from tests.support.cli import TARGET_KM, run_plugin
from tests.target_kissmetrics.km_target_helpers import (
    API_KEY,
    JAN_1_2010,
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
STRING = {"type": ["string", "null"]}
INTEGER = {"type": ["integer", "null"]}
SIGNUPS = {"id": INTEGER, "email": STRING, "plan": STRING, "timestamp": INTEGER}
CANARY = "canary-person-7f3a@example.com"


def signup(n: int, email: str | None = None) -> dict[str, Any]:
    """Record ``n`` of the ``signups`` stream (at 2010-01-01 + n s)."""
    return {
        "id": n,
        "email": email if email is not None else f"user-{n}@example.com",
        "plan": "pro",
        "timestamp": JAN_1_2010 + n,
    }


def signup_messages(records: list[dict[str, Any]], state_every: int = 0) -> list[dict]:
    """SCHEMA, the records, a STATE naming the last record after every ``state_every`` records and at the end."""
    messages = [schema_message("signups", SIGNUPS, ["id"])]
    for position, record in enumerate(records, start=1):
        messages.append(record_message("signups", record))
        if state_every and position % state_every == 0:
            messages.append(state_message({"bookmarks": {"signups": record["id"]}}))
    messages.append(state_message({"bookmarks": {"signups": records[-1]["id"]}}))
    return messages


SIGNED_UP = {"kind": "event", "person": "email", "event": "Signed Up"}


# --- 1. the mapping against the SCHEMA -------------------------------------------------------------------------
def test_a_mapping_field_missing_from_the_schema_stops_before_any_beacon(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams={"signups": {**SIGNED_UP, "person": "emial"}})
    result = run_target(tmp_path, config, signup_messages([signup(n) for n in range(5)]))
    assert result.returncode == 1
    (error,) = result.error_lines
    assert "stream 'signups': streams.signups.person names field 'emial', not in the stream's schema" in error
    assert "did you mean 'email'?" in error
    assert "Traceback" not in result.stderr
    assert received_beacons(emulator) == []
    assert result.stdout == ""
    assert dead_letters(tmp_path) == []


SCHEMA = {"properties": {"email": {}, "action": {}, "ts": {}, "meta": {"type": "object", "properties": {"os": {}}}}}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (
            {"person": "emails", "event": "E"},
            "streams.s.person names field 'emails', not in the stream's schema (did you mean 'email'?)",
        ),
        ({"person": "email", "event": "Did {acton}"}, "streams.s.event names field 'acton'"),
        ({"person": "email", "event": "E", "timestamp": "tss"}, "streams.s.timestamp names field 'tss'"),
        ({"kind": "alias", "person": "email", "alias": "aliass"}, "streams.s.alias names field 'aliass'"),
        ({"person": "email", "event": "E", "properties": ["meta.oss"]}, "streams.s.properties names field 'meta.oss'"),
        ({"person": "email", "event": "E", "exclude": ["Action"]}, "(did you mean 'action'?)"),
        ({"kind": "set"}, "streams.s.person names field 'person'"),
    ],
)
def test_every_field_a_mapping_names_is_checked(mapping: dict[str, Any], expected: str) -> None:
    mappings = [StreamMapping.from_setting({"kind": "event", **mapping}, list(SCHEMA["properties"]))]
    (problem,) = mapping_field_problems("s", mappings, "s", SCHEMA)
    assert expected in problem


def test_fields_inside_objects_and_free_form_schemas_pass() -> None:
    mapping = StreamMapping.from_setting(
        {"kind": "event", "person": "email", "event": "{meta.os}", "exclude": ["meta.os"]}, ["email", "meta"]
    )
    assert mapping_field_problems("s", [mapping], "s", SCHEMA) == []
    assert mapping_field_problems("s", [StreamMapping.from_setting({"person": "x"}, [])], "s", {"type": "object"}) == []


@pytest.mark.parametrize(
    ("streams", "expected"),
    [
        ({"signups": {"persn": "email"}}, "streams.signups: unknown key 'persn'; did you mean 'person'?"),
        ({"signups": [SIGNED_UP, {"kind": "alias", "alais": "x"}]}, "unknown key 'alais'; did you mean 'alias'?"),
        ({"signups": {"kind": "event", "properties": "plan"}}, "'properties' must be a list of field names"),
    ],
)
def test_an_unknown_mapping_key_is_one_line_naming_the_closest(
    tmp_path: Path, streams: dict[str, Any], expected: str
) -> None:
    result = run_target(tmp_path, {"api_key": API_KEY, "streams": streams}, [])
    assert result.returncode == 1
    (error,) = result.error_lines
    assert expected in error
    assert "Additional properties" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mapping_for_a_stream_that_never_arrived_is_warned_about(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP, "signpus": SIGNED_UP})
    result = run_target(tmp_path, config, signup_messages([signup(1)]))
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if "never arrived" in line]
    assert "WARNING" in warning
    assert "streams.signpus maps a stream that never arrived (streams that did: signups)" in warning


# --- 2. dead letters fail the run --------------------------------------------------------------------------------
def test_a_run_that_dead_letters_every_record_fails_without_state(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, state_flush_seconds=0)
    records = [signup(n, email="") for n in range(6)]  # the field exists, every value is empty
    result = run_target(tmp_path, config, signup_messages(records, state_every=2))
    assert result.returncode == 1
    assert result.stdout == ""
    assert received_beacons(emulator) == []
    (error,) = result.error_lines
    assert (
        "too many dead letters: stream 'signups' has 6 of 6 records dead-lettered (100%, over max_dead_letter_ratio"
        in error
    )
    assert "6x person field 'email' is missing or empty" in error
    assert "No STATE was emitted" in error
    assert "--resend-dead-letters" in error
    assert "'signups' 0 records sent, 6 dead-lettered" in result.stderr  # the summary line still gives the counts
    assert len(dead_letters(tmp_path)) == 6


def test_a_few_bad_rows_under_the_ratio_pass_with_state_and_counts(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    records = [signup(n, email="" if n == 7 else None) for n in range(20)]
    result = run_target(
        tmp_path, target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}), signup_messages(records)
    )
    assert result.returncode == 0, result.stderr
    assert result.target_states == [{"bookmarks": {"signups": 19}}]
    assert len(received_beacons(emulator)) == 19
    assert "'signups' 19 records sent, 1 dead-lettered (1x person field 'email' is missing or empty)" in result.stderr
    assert "19 beacons sent (/e 19, /s 0, /a 0), each answered 200" in result.stderr


def test_no_state_covers_dead_letters_once_the_ratio_is_broken(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    good = [signup(n) for n in range(10)]
    bad = [signup(n, email="") for n in range(10, 20)]
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, state_flush_seconds=0)
    result = run_target(tmp_path, config, signup_messages(good + bad, state_every=5))
    assert result.returncode == 1
    # The STATEs after records 4 and 9 cover delivered records only; none after the first bad record is written.
    assert [line for line in result.stdout.splitlines() if line] == [
        json.dumps({"bookmarks": {"signups": 4}}),
        json.dumps({"bookmarks": {"signups": 9}}),
    ]
    assert "STATE withheld: stream 'signups' has 5 of 15 records dead-lettered" in result.stderr
    assert len(received_beacons(emulator)) == 10


def test_max_dead_letter_ratio_from_the_environment_as_a_string(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    env = {
        "TARGET_KISSMETRICS_API_KEY": API_KEY,
        "TARGET_KISSMETRICS_TRACKING_URL": emulator.url,
        "TARGET_KISSMETRICS_DEAD_LETTER_PATH": str(tmp_path / "dead-letters.jsonl"),
        "TARGET_KISSMETRICS_STREAMS": json.dumps({"signups": SIGNED_UP}),
        "TARGET_KISSMETRICS_MAX_DEAD_LETTER_RATIO": "1",
    }
    records = [signup(n, email="") for n in range(3)]
    result = run_plugin(TARGET_KM, None, tmp_path, stdin=singer_lines(signup_messages(records)), env=env)
    assert result.returncode == 0, result.stderr  # 1 = never fail: the dead letters are accepted
    assert result.target_states == [{"bookmarks": {"signups": 2}}]
    assert "'signups' 0 records sent, 3 dead-lettered" in result.stderr


# --- 3. a dry run emits no STATE ----------------------------------------------------------------------------------
def test_a_dry_run_never_emits_state(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, dry_run=True, state_flush_seconds=0)
    result = run_target(tmp_path, config, signup_messages([signup(n) for n in range(4)], state_every=1))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "dry run: 4 beacons built (/e 4, /s 0, /a 0), none sent, no STATE emitted" in result.stderr
    assert emulator.control("stats")["raw"]["total"] == 0


# --- 4. no personal data in logs ---------------------------------------------------------------------------------
def test_no_person_in_logs_when_records_are_dead_lettered(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    mapping = {"kind": "event", "person": "email", "event": "Chose {plan}"}
    records = [{**signup(1, email=CANARY), "plan": ""}, {**signup(2, email=CANARY), "plan": "a:" + CANARY}]
    config = target_config(tmp_path, emulator, streams={"signups": mapping}, max_dead_letter_ratio=1)
    result = run_target(tmp_path, config, signup_messages(records))
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stderr
    assert "Invalid record dead-lettered: stream 'signups' record {\"id\": 1}: event name field 'plan'" in result.stderr
    assert [letter["record"]["email"] for letter in dead_letters(tmp_path)] == [CANARY, CANARY]  # the file keeps it


def test_no_person_in_logs_when_the_person_is_the_key(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    messages = [
        schema_message("signups", SIGNUPS, ["email"]),
        record_message("signups", {**signup(1, email=CANARY), "timestamp": None}),
    ]
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, fail_on_invalid=True)
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 1
    assert CANARY not in result.stderr
    (error,) = result.error_lines
    assert f'invalid record: stream \'signups\' record {{"email": "{identity_hash(CANARY)}"}}' in error


def test_no_person_in_logs_when_delivery_fails(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics", "--error-rate", "1.0")
    no_key = {**SIGNUPS}
    messages = [schema_message("signups", no_key), record_message("signups", signup(1, email=CANARY))]
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, max_retries=1)
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 1
    assert CANARY not in result.stderr
    (error,) = result.error_lines
    assert f"the /e beacon of stream 'signups' record of person {identity_hash(CANARY)} (no key properties)" in error
    assert "was not delivered after 2 attempts" in error


def test_a_record_is_named_by_its_key_with_identities_hashed() -> None:
    record = {"email": CANARY, "n": 3, "alias": "other@example.com", "when": float("nan")}
    assert describe_invalid_record("s", ["n"], record, ["email"]) == "stream 's' record {\"n\": 3}"
    keyed_by_alias = describe_invalid_record("s", ["alias", "n"], record, ["email", "alias"])
    assert keyed_by_alias == f'stream \'s\' record {{"alias": "{identity_hash("other@example.com")}", "n": 3}}'
    unkeyed = describe_invalid_record("s", [], record, ["email", "alias"])
    assert unkeyed == f"stream 's' record of person {identity_hash(CANARY)} (no key properties)"
    assert describe_invalid_record("s", ["when"], {"when": float("nan")}, ["when"]).startswith("stream 's' record")


# --- 5. wrong paths ----------------------------------------------------------------------------------------------
def test_a_wrong_tracking_url_path_says_check_tracking_url(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP}, state_flush_seconds=0)
    config["tracking_url"] = f"{emulator.url}/track"
    result = run_target(tmp_path, config, signup_messages([signup(n) for n in range(3)], state_every=1))
    assert result.returncode == 1
    assert result.stdout == ""
    (error,) = result.error_lines
    assert "answered HTTP 404 (no such path) to " + emulator.url + "/track/e: check tracking_url" in error
    assert "without a path" in error


@pytest.fixture
def plain_web_server(tmp_path: Path) -> Iterator[str]:
    """A real web server (Python's http.server) that answers 200 to /e, /s and /a with files: not Kissmetrics."""
    site = tmp_path / "site"
    site.mkdir()
    for kind in ("e", "s", "a"):
        (site / kind).write_text("<html>Welcome</html>")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/e", timeout=1):  # noqa: S310 (our own server on loopback)
                break
        except OSError:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_a_200_that_is_not_the_kissmetrics_gif_fails_without_state(plain_web_server: str, tmp_path: Path) -> None:
    config = target_config(tmp_path, None, streams={"signups": SIGNED_UP}, state_flush_seconds=0)
    config["tracking_url"] = plain_web_server
    result = run_target(tmp_path, config, signup_messages([signup(n) for n in range(3)], state_every=1))
    assert result.returncode == 1
    assert result.stdout == ""
    (error,) = result.error_lines
    assert f"answered HTTP 200 with application/octet-stream to {plain_web_server}/e, not the GIF image" in error
    assert "check tracking_url" in error


# --- 6. oversized beacons --------------------------------------------------------------------------------------
def test_a_beacon_over_the_url_limit_is_dead_lettered_before_sending(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"id": INTEGER, "email": STRING, "timestamp": INTEGER, **{f"note_{i}": STRING for i in range(20)}}
    big = {"id": 1, "email": CANARY, "timestamp": JAN_1_2010, **{f"note_{i}": "n" * 500 for i in range(20)}}
    small = {"id": 2, "email": "ok@example.com", "timestamp": JAN_1_2010, "note_0": "fine"}
    messages = [schema_message("notes", schema, ["id"]), record_message("notes", big), record_message("notes", small)]
    mapping = {"kind": "event", "person": "email", "event": "Wrote"}
    config = target_config(tmp_path, emulator, streams={"notes": mapping}, max_dead_letter_ratio=0.5)
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 0, result.stderr
    assert [beacon["params"]["_p"] for beacon in received_beacons(emulator)] == ["ok@example.com"]
    (letter,) = dead_letters(tmp_path)
    (reason,) = letter["reasons"]
    size = int(reason.split(" ")[3])
    assert size > MAX_BEACON_URL_BYTES
    assert reason == f"beacon URL of {size} bytes exceeds the {MAX_BEACON_URL_BYTES}-byte limit"
    assert emulator.control("stats")["refused_too_long"] == 0
    assert CANARY not in result.stderr


def test_a_400_answer_names_the_beacon_by_its_record(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    emulator.set_faults(error_rate=1.0, error_statuses=[400])
    config = target_config(tmp_path, emulator, streams={"signups": SIGNED_UP})
    result = run_target(tmp_path, config, signup_messages([signup(3, email=CANARY)]))
    assert result.returncode == 1
    assert result.stdout == ""
    assert CANARY not in result.stderr
    (error,) = result.error_lines
    assert "answered HTTP 400, which is not retried, to the /e beacon of stream 'signups' record {\"id\": 3}" in error
    assert f"the target sends URLs of up to {MAX_BEACON_URL_BYTES} bytes" in error
