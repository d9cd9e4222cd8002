"""The real target CLI against the Kissmetrics emulator: exact beacons, dead letters, dry run, retries, failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from KISSmetrics.query_string import create_query

from emulators.testing import EmulatorProcess
from tests.target_kissmetrics.km_target_helpers import (
    API_KEY,
    dead_letters,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    state_message,
    target_config,
)

StartEmulator = Callable[..., EmulatorProcess]
JAN_1_2010 = 1262304000

STRING = {"type": ["string", "null"]}
INTEGER = {"type": ["integer", "null"]}
DATETIME = {"type": ["string", "null"], "format": "date-time"}
OBJECT = {"type": ["object", "null"]}
STRINGS = {"type": ["array", "null"], "items": {"type": "string"}}


def official_params(**kwargs: object) -> dict[str, str]:
    """What py-KISSmetrics would send for the same call (its own query builder)."""
    return dict(parse_qsl(create_query(API_KEY, **kwargs)))


def params_of(beacons: list[dict], kind: str) -> list[dict[str, str]]:
    """The parameters of every beacon of one kind, in a stable order (beacons are sent concurrently)."""
    return in_order([beacon["params"] for beacon in beacons if beacon["kind"] == kind])


def in_order(params: list[dict[str, str]]) -> list[dict[str, str]]:
    """Beacon parameters sorted by person, name and time (arrival order is not part of the contract)."""
    return sorted(params, key=lambda p: (p.get("_p", ""), p.get("_n", ""), p.get("_t", ""), sorted(p.items())))


def test_default_mappings_send_exact_event_set_and_alias_beacons(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    messages = [
        schema_message("signups", {"person": STRING, "event": STRING, "timestamp": DATETIME, "plan": STRING}),
        record_message(
            "signups", {"person": "bob", "event": "Signed Up", "timestamp": "2010-01-01T00:00:00Z", "plan": "a+b & c"}
        ),
        schema_message("profiles", {"person": STRING, "timestamp": INTEGER, "gender": STRING, "address": OBJECT}),
        record_message(
            "profiles", {"person": "bob", "timestamp": JAN_1_2010, "gender": "male", "address": {"city": "Zürich"}}
        ),
        schema_message("identities", {"person": STRING, "alias": STRING}),
        record_message("identities", {"person": "bob", "alias": "bob@bob.com"}),
        state_message({"bookmarks": {"signups": 1}}),
    ]
    result = run_target(tmp_path, target_config(tmp_path, emulator), messages)
    assert result.returncode == 0, result.stderr
    beacons = received_beacons(emulator)
    assert params_of(beacons, "e") == [
        official_params(person="bob", event="Signed Up", timestamp=JAN_1_2010, properties={"plan": "a+b & c"})
    ]
    assert params_of(beacons, "s") == [
        official_params(person="bob", timestamp=JAN_1_2010, properties={"gender": "male", "address.city": "Zürich"})
    ]
    assert params_of(beacons, "a") == [official_params(person="bob", identity="bob@bob.com")]
    assert {beacon["method"] for beacon in beacons} == {"GET"}
    assert result.target_states == [{"bookmarks": {"signups": 1}}]
    view = emulator.control("dedup")
    assert view["events"] == [
        {"person": "bob", "event": "Signed Up", "time": JAN_1_2010, "properties": {"plan": "a+b & c"}}
    ]
    assert view["aliases"] == [["bob", "bob@bob.com"]]
    assert {(p["name"], p["value"]) for p in view["properties"]} == {
        ("plan", "a+b & c"),
        ("gender", "male"),
        ("address.city", "Zürich"),
    }


KAHUNA_INAPP = {
    "kind": "event",
    "person": "user_id",
    "event": "Kahuna {action}",
    "timestamp": "timestamp",
    "exclude": ["log_date", "log_position", "credentials", "credentials_by_type", "extra"],
}
KAHUNA_EMAIL_ALIASES = {"kind": "alias", "person": "user_id", "alias": "credentials_by_type.email"}
KAON_CLICKS = {
    "kind": "event",
    "person": "external_id",
    "event": "Viewed {path|urldecode}",
    "timestamp": "timestamp_unix",
    "properties": ["client", "path", "sequence_in_second"],
}


def test_documented_project_mappings(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    inapp_schema = {
        "log_date": {"type": "string", "format": "date"},
        "log_position": {"type": "integer"},
        "timestamp": DATETIME,
        "user_id": STRING,
        "credentials": STRINGS,
        "credentials_by_type": OBJECT,
        "campaign": STRING,
        "action": STRING,
        "os": STRING,
        "extra": OBJECT,
    }
    inapp = {
        "log_date": "2026-11-17",
        "log_position": 0,
        "timestamp": "2026-11-17 09:15:02.123456",
        "user_id": "u-1",
        "credentials": ["email:u1@example.com", "fbid:42"],
        "credentials_by_type": {"email": ["u1@example.com"], "fbid": ["42"]},
        "campaign": "Black Friday",
        "action": "ia_click",
        "os": "ios",
        "extra": {},
    }
    clicks_schema = {
        "client": STRING,
        "external_id": STRING,
        "timestamp": DATETIME,
        "timestamp_unix": INTEGER,
        "sequence_in_second": INTEGER,
        "path": STRING,
    }
    click = {
        "client": "acme",
        "external_id": "EXT-7",
        "timestamp": "2010-01-01T00:00:00Z",
        "timestamp_unix": JAN_1_2010,
        "sequence_in_second": 1,
        "path": "%2Fproducts%2Fsofa%20bed",
    }
    config = target_config(
        tmp_path,
        emulator,
        streams={"inapp_logs": [KAHUNA_INAPP, KAHUNA_EMAIL_ALIASES], "external_id_hits": KAON_CLICKS},
    )
    messages = [
        schema_message("inapp_logs", inapp_schema, ["log_date", "log_position"]),
        record_message("inapp_logs", inapp),
        schema_message("external_id_hits", clicks_schema, ["client", "external_id", "timestamp_unix"]),
        record_message("external_id_hits", click),
    ]
    result = run_target(tmp_path, config, messages)
    assert result.returncode == 0, result.stderr
    beacons = received_beacons(emulator)
    inapp_time = int(datetime(2026, 11, 17, 9, 15, 2, tzinfo=timezone.utc).timestamp())
    assert params_of(beacons, "e") == in_order(
        [
            official_params(
                person="u-1",
                event="Kahuna ia_click",
                timestamp=inapp_time,
                properties={"campaign": "Black Friday", "os": "ios"},
            ),
            official_params(
                person="EXT-7",
                event="Viewed /products/sofa bed",
                timestamp=JAN_1_2010,
                properties={"client": "acme", "path": "%2Fproducts%2Fsofa%20bed", "sequence_in_second": "1"},
            ),
        ]
    )
    assert params_of(beacons, "a") == [official_params(person="u-1", identity="u1@example.com")]


def test_invalid_records_go_to_dead_letters_and_the_rest_is_sent(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"id": INTEGER, "person": STRING, "event": STRING, "timestamp": INTEGER, "note": STRING}
    records = [
        {"id": 1, "person": "ok", "event": "Good", "timestamp": 1, "note": "fine"},
        {"id": 2, "person": "", "event": "Good", "timestamp": 1},
        {"id": 3, "person": "p" * 300, "event": "Bad:Name", "timestamp": 1},
        {"id": 4, "person": "ok", "event": "Good", "timestamp": 2, "note": "x" * 513},
        {"id": 5, "person": "ok2", "event": "Good", "timestamp": 3},
    ]
    messages = [schema_message("events", schema, ["id"]), *(record_message("events", r) for r in records)]
    result = run_target(tmp_path, target_config(tmp_path, emulator, max_dead_letter_ratio=1), messages)
    assert result.returncode == 0, result.stderr
    assert sorted(b["params"]["_p"] for b in received_beacons(emulator)) == ["ok", "ok2"]
    letters = dead_letters(tmp_path)
    assert [(letter["stream"], letter["key"]) for letter in letters] == [
        ("events", {"id": 2}),
        ("events", {"id": 3}),
        ("events", {"id": 4}),
    ]
    assert letters[0]["reasons"] == ["person field 'person' is missing or empty"]
    assert letters[1]["reasons"] == [
        "person (_p) is 300 characters, over 255",
        "event name contains ',' or ':' (Kissmetrics would turn them into spaces)",
    ]
    assert letters[2]["reasons"] == ["value of property 'note' is 513 characters, over 512"]
    assert letters[2]["record"] == records[3]
    assert all("time" in letter for letter in letters)
    assert "2 beacons sent (/e 2, /s 0, /a 0), each answered 200" in result.stderr
    assert "3 invalid records dead-lettered" in result.stderr
    assert "'events' 2 records sent, 3 dead-lettered" in result.stderr


def test_fail_on_invalid_stops_with_one_clear_line(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    schema = {"order_id": STRING, "person": STRING, "event": STRING, "timestamp": INTEGER}
    messages = [
        schema_message("orders", schema, ["order_id"]),
        record_message("orders", {"order_id": "A1", "person": "p", "event": "Bought", "timestamp": 1}),
        state_message({"bookmarks": {"orders": "A1"}}),
        record_message("orders", {"order_id": "A2", "person": None, "event": "Bought", "timestamp": 2}),
        record_message("orders", {"order_id": "A3", "person": "q", "event": "Bought", "timestamp": 3}),
        state_message({"bookmarks": {"orders": "A3"}}),
    ]
    result = run_target(
        tmp_path, target_config(tmp_path, emulator, fail_on_invalid=True, state_flush_seconds=0), messages
    )
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1
    expected = "invalid record: stream 'orders' record {\"order_id\": \"A2\"}: person field 'person' is missing"
    assert expected in error_lines[0]
    assert "Traceback" not in result.stderr
    assert [b["params"]["_p"] for b in received_beacons(emulator)] == ["p"]
    assert result.target_states == [{"bookmarks": {"orders": "A1"}}]
    assert dead_letters(tmp_path) == []


def test_dry_run_prints_redacted_urls_and_sends_nothing(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics")
    messages = [
        schema_message("e", {"person": STRING, "event": STRING, "timestamp": INTEGER}),
        record_message("e", {"person": "bob@x.com", "event": "Signed Up", "timestamp": JAN_1_2010}),
    ]
    result = run_target(tmp_path, target_config(tmp_path, emulator, dry_run=True), messages)
    assert result.returncode == 0, result.stderr
    (url,) = [line.removeprefix("DRY RUN ") for line in result.stderr.splitlines() if line.startswith("DRY RUN ")]
    assert url == f"{emulator.url}/e?_k=***REDACTED***&_p=bob%40x.com&_n=Signed%20Up&_t=1262304000&_d=1"
    assert dict(parse_qsl(urlsplit(url).query))["_n"] == "Signed Up"
    assert API_KEY not in result.stderr + result.stdout
    assert emulator.control("stats")["raw"]["total"] == 0
    assert "dry run: 1 beacons built (/e 1, /s 0, /a 0), none sent, no STATE emitted" in result.stderr


def expected_events(count: int) -> list[dict]:
    return [
        {"person": f"user-{i % 50}", "event": "Played", "time": JAN_1_2010 + i, "properties": {"n": str(i)}}
        for i in range(count)
    ]


def event_messages(count: int, state_every: int = 0) -> list[dict]:
    schema = {"person": STRING, "event": STRING, "timestamp": INTEGER, "n": INTEGER}
    messages = [schema_message("plays", schema, ["n"])]
    for i in range(count):
        messages.append(
            record_message(
                "plays", {"person": f"user-{i % 50}", "event": "Played", "timestamp": JAN_1_2010 + i, "n": i}
            )
        )
        if state_every and (i + 1) % state_every == 0:
            messages.append(state_message({"bookmarks": {"plays": i}}))
    return messages


def sorted_events(view: dict) -> list[dict]:
    return sorted(view["events"], key=lambda event: event["time"])


def test_retries_deliver_every_beacon_through_errors_drops_and_429s(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics", "--error-rate", "0.3", "--retry-after", "0.1", "--fault-seed", "7")
    result = run_target(tmp_path, target_config(tmp_path, emulator, max_retries=30), event_messages(300))
    assert result.returncode == 0, result.stderr
    stats = emulator.control("stats")
    assert stats["raw"]["total"] == 300  # faulted requests never reach the beacon log
    assert sorted_events(emulator.control("dedup")) == expected_events(300)
    emulator.reset()
    emulator.set_faults(error_rate=0.1, drop_rate=0.1, rate_limit_rate=0.1)
    result = run_target(tmp_path, target_config(tmp_path, emulator, max_retries=30), event_messages(200))
    assert result.returncode == 0, result.stderr
    assert sorted_events(emulator.control("dedup")) == expected_events(200)
    retries = int(result.stderr.split(" retries")[0].rsplit(" ", 1)[1])
    assert retries > 0


def test_an_undeliverable_beacon_fails_the_run_without_state(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics", "--error-rate", "1.0")
    config = target_config(tmp_path, emulator, max_retries=2, state_flush_seconds=0)
    result = run_target(tmp_path, config, event_messages(5, state_every=1))
    assert result.returncode == 1
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1
    assert "was not delivered after 3 attempts (last: HTTP 50" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_bad_settings_stop_with_one_clear_line(tmp_path: Path) -> None:
    result = run_target(tmp_path, {"api_key": API_KEY, "streams": {"orders": {"kind": "track"}}}, [])
    assert result.returncode == 1
    assert "streams is invalid: streams.orders: unknown kind 'track': use one of event, set, alias" in result.stderr
    result = run_target(tmp_path, {"api_key": API_KEY, "streams": {"orders": [{"kind": "track"}]}}, [])
    assert result.returncode == 1
    assert "streams is invalid: streams.orders: unknown kind 'track'" in result.stderr
    result = run_target(tmp_path, {"api_key": API_KEY, "tracking_url": "http://127.0.0.1:9", "max_concurrency": 0}, [])
    assert result.returncode == 1
    assert "max_concurrency must be 1 or more (got 0)" in result.stderr
    assert "Traceback" not in result.stderr
