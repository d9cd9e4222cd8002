"""The API key never leaves the beacons: canary key, DEBUG logging, errors, dry run, dead letters."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from connector_common.redaction import secret_variants
from emulators.testing import EmulatorProcess
from tests.target_kissmetrics.km_target_helpers import (
    received_beacons,
    record_message,
    run_target,
    schema_message,
    state_message,
    target_config,
)

StartEmulator = Callable[..., EmulatorProcess]
CANARY = "CANARY+k3y/=@secret"
# The target at DEBUG, and asyncio's debug mode too (its transport and connection lines, slow-callback warnings).
DEBUG = {"TARGET_KISSMETRICS_LOGLEVEL": "DEBUG", "PYTHONASYNCIODEBUG": "1"}
SCHEMA = {"id": {"type": "integer"}, "person": {"type": "string"}, "event": {"type": "string"}, "timestamp": {}}


def messages() -> list[dict]:
    return [
        schema_message("canary", SCHEMA, ["id"]),
        record_message("canary", {"id": 1, "person": "p1", "event": "Seen", "timestamp": 1}),
        record_message("canary", {"id": 2, "person": "", "event": "Seen", "timestamp": 2}),
        state_message({"bookmarks": {"canary": 2}}),
    ]


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for variant in secret_variants([CANARY]):
            assert variant not in text


def dead_letter_text(tmp_path: Path) -> str:
    path = tmp_path / "dead-letters.jsonl"
    return path.read_text() if path.exists() else ""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_canary_key_is_sent_but_never_printed(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("kissmetrics", "--api-key", CANARY, "--error-rate", "0.3", "--drop-rate", "0.1")
    result = run_target(
        tmp_path, target_config(tmp_path, emulator, api_key=CANARY, max_retries=20), messages(), env=DEBUG
    )
    assert result.returncode == 0, result.stderr
    assert [beacon["params"]["_k"] for beacon in received_beacons(emulator)] == [CANARY]
    assert emulator.control("dedup")["events"][0]["person"] == "p1"
    assert "target-kissmetrics.delivery" in result.stderr  # DEBUG lines of the HTTP client were on
    assert "| asyncio " in result.stderr  # and asyncio's
    assert "/e?_k=***REDACTED***" in result.stderr
    assert len(dead_letter_text(tmp_path).splitlines()) == 1
    assert_no_canary(result.stdout, result.stderr, dead_letter_text(tmp_path))


def test_the_canary_key_stays_out_of_connection_errors(tmp_path: Path) -> None:
    config = target_config(
        tmp_path, None, api_key=CANARY, tracking_url=f"http://127.0.0.1:{closed_port()}", max_retries=1
    )
    result = run_target(tmp_path, config, messages(), env=DEBUG)
    assert result.returncode == 1
    refused = "was not delivered after 2 attempts (last: ClientConnectorError: [Errno 111] Connection refused"
    assert refused in result.stderr
    assert_no_canary(result.stdout, result.stderr, dead_letter_text(tmp_path))


def test_the_canary_key_stays_out_of_dry_runs_and_invalid_record_errors(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics", "--api-key", CANARY)
    dry = run_target(tmp_path, target_config(tmp_path, emulator, api_key=CANARY, dry_run=True), messages(), env=DEBUG)
    assert dry.returncode == 0, dry.stderr
    assert "DRY RUN " in dry.stderr
    failing = run_target(
        tmp_path, target_config(tmp_path, emulator, api_key=CANARY, fail_on_invalid=True), messages(), env=DEBUG
    )
    assert failing.returncode == 1
    assert "invalid record in stream 'canary' with key {\"id\": 2}" in failing.stderr
    record_with_key = [
        schema_message("canary", SCHEMA, ["id"]),
        record_message("canary", {"id": 3, "person": "p", "event": "Seen", "timestamp": 3, "_note": CANARY}),
    ]
    leaked = run_target(tmp_path, target_config(tmp_path, emulator, api_key=CANARY), record_with_key, env=DEBUG)
    assert leaked.returncode == 0, leaked.stderr
    assert "***REDACTED***" in dead_letter_text(tmp_path)
    assert_no_canary(dry.stdout, dry.stderr, failing.stdout, failing.stderr, leaked.stderr, dead_letter_text(tmp_path))
