"""Helpers for the target-kissmetrics tests: Singer messages, running the real CLI, reading the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulators.testing import EmulatorProcess
from tests.support.cli import TARGET_KM, PluginRun, run_plugin
from tests.support.datasets import KM_API_KEY

TARGET_CLI = TARGET_KM
API_KEY = KM_API_KEY


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
