"""Helpers for the target-kissmetrics tests: Singer messages, running the real CLI, reading the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from emulators.testing import EmulatorProcess

TARGET_CLI = str(Path(sys.executable).with_name("target-kissmetrics"))
API_KEY = "km-demo-key"


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


def write_config(tmp_path: Path, emulator: EmulatorProcess | None, **settings: Any) -> Path:
    """A config file pointing at the emulator, with a dead-letter file under ``tmp_path``."""
    config = {
        "api_key": API_KEY,
        "dead_letter_path": str(tmp_path / "dead-letters.jsonl"),
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        **({"tracking_url": emulator.url} if emulator else {}),
        **settings,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def run_target(
    config_path: Path, messages: list[dict] | str, *, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``target-kissmetrics`` CLI with the messages on stdin."""
    text = messages if isinstance(messages, str) else singer_lines(messages)
    return subprocess.run(
        [TARGET_CLI, "--config", str(config_path)],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def received_beacons(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    """Every beacon the emulator received, oldest first."""
    return emulator.control("beacons?offset=0&limit=1000000")["beacons"]


def emitted_states(stdout: str) -> list[dict]:
    """The STATE values a target wrote on stdout."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def dead_letters(tmp_path: Path) -> list[dict]:
    """The dead-letter lines written under ``tmp_path``."""
    path = tmp_path / "dead-letters.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
