"""Helpers for the target-kissmetrics tests: Singer messages, running the real CLI, reading the emulator."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from emulators.testing import EmulatorProcess
from tests.support.cli import TARGET_KM, PluginRun, parse_messages, run_plugin, start_plugin
from tests.support.datasets import KM_API_KEY

TARGET_CLI = TARGET_KM
API_KEY = KM_API_KEY
JAN_1_2010 = 1262304000
#: The ``plays`` stream: record ``n`` is an event at 2010-01-01 + n s, so a beacon's ``_t`` names its record.
PLAYS_SCHEMA = {"person": {"type": "string"}, "event": {"type": "string"}, "timestamp": {"type": "integer"}}


def play(n: int) -> dict[str, Any]:
    """Record ``n`` of the ``plays`` stream."""
    return {"person": f"user-{n % 97}", "event": "Played", "timestamp": JAN_1_2010 + n}


def schema_message(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None) -> dict:
    """A SCHEMA message."""
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": key_properties or [],
    }


def record_message(stream: str, record: dict[str, Any], time_extracted: str | None = None) -> dict:
    """A RECORD message."""
    message: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": record}
    if time_extracted:
        message["time_extracted"] = time_extracted
    return message


def state_message(value: dict[str, Any]) -> dict:
    """A STATE message."""
    return {"type": "STATE", "value": value}


def singer_lines(messages: list[dict]) -> str:
    """Messages as Singer input text."""
    return "".join(json.dumps(message) + "\n" for message in messages)


def target_config(tmp_path: Path, emulator: EmulatorProcess | None, **settings: Any) -> dict[str, Any]:
    """A config pointing at the emulator, with a dead-letter file under ``tmp_path``."""
    return {
        "api_key": API_KEY,
        "dead_letter_path": str(tmp_path / "dead-letters.jsonl"),
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        **({"tracking_url": emulator.url} if emulator else {}),
        **settings,
    }


def run_target(
    tmp_path: Path,
    config: dict[str, Any],
    messages: list[dict] | str,
    *,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> PluginRun:
    """Run the real ``target-kissmetrics`` CLI in ``tmp_path`` with the messages on stdin."""
    text = messages if isinstance(messages, str) else singer_lines(messages)
    return run_plugin(TARGET_CLI, config, tmp_path, stdin=text, env=env, timeout=timeout)


def received_beacons(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    """Every beacon the emulator received, oldest first."""
    return emulator.control("beacons?offset=0&limit=1000000")["beacons"]


def dead_letters(tmp_path: Path) -> list[dict]:
    """The dead-letter lines written under ``tmp_path``."""
    path = tmp_path / "dead-letters.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def start_fed_target(tmp_path: Path, config: dict, messages: list[dict]) -> subprocess.Popen[str]:
    """The CLI with ``messages`` written to its stdin from a thread (then closed), its stdout piped to the test."""
    process = start_plugin(TARGET_CLI, config, tmp_path, stdin=subprocess.PIPE)
    assert process.stdin is not None
    stdin, text = process.stdin, singer_lines(messages)
    threading.Thread(target=lambda: (stdin.write(text), stdin.close()), daemon=True).start()
    return process


def states_checked_against_the_log(process: subprocess.Popen[str], emulator: EmulatorProcess) -> list[int]:
    """Each STATE line's last record as the target writes it, checked at once: every beacon up to that record is
    already in the emulator's raw log. The process must then exit 0."""
    assert process.stdout is not None
    states = []
    with process.stdout:
        for line in process.stdout:
            (state,) = parse_messages(line)
            delivered = {int(beacon["params"]["_t"]) - JAN_1_2010 for beacon in received_beacons(emulator)}
            last = state["bookmarks"]["plays"]
            assert set(range(last + 1)) <= delivered, f"STATE after record {last} came before its beacons"
            states.append(last)
    assert process.wait(timeout=120) == 0
    return states
