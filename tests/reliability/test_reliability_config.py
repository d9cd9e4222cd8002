"""Each required setting missing, each own setting of the wrong type, for every plugin: one clear error, no request.

The settings come from each plugin's ``--about --format=json`` (the SDK's standard settings are the SDK's concern).
Kahuna and Kissmetrics runs point at their emulators and assert their logs stay empty; Kaon points at a
loopback listener that counts connections (the same assertion without depending on the Kaon emulator).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import KM_KEY, event_messages, kahuna_config, singer_text
from tests.support.cli import TAP_KAHUNA, TAP_KAON, TARGET_KM, run_plugin

SDK_STANDARD = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
    "add_record_metadata",
    "load_method",
    "batch_size_rows",
    "validate_records",
}
WRONG_VALUE = {"integer": "not-a-number", "number": "fast", "boolean": "maybe", "array": "x", "object": "x"}
#: What the ERROR line says after the setting's name, by problem and (for a wrong type) the type it must have.
PHRASE = {
    "missing": "is required",
    "integer": "must be a whole number",
    "number": "must be a number",
    "boolean": "must be true or false",
    "array": "must be a list",
    "object": "must be an object",
    "string": "must be a string",
    "date": "must be a date like 2026-11-01",
}


@cache
def about(executable: str) -> dict[str, Any]:
    """The plugin's --about JSON."""
    result = subprocess.run([executable, "--about", "--format=json"], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def own_settings(executable: str) -> dict[str, dict]:
    """The plugin's own settings (name -> JSON schema)."""
    return {
        name: schema for name, schema in about(executable)["settings"]["properties"].items() if name not in SDK_STANDARD
    }


def required_settings(executable: str) -> list[str]:
    """The settings --about marks required."""
    return list(about(executable)["settings"].get("required", []))


def setting_type(schema: dict) -> str:
    """The setting's JSON type (its first that is not null)."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    return next(t for t in types if t != "null")


def expected_phrase(plugin: str, setting: str, problem: str) -> str:
    """What an ERROR line must say: the setting's name (the new one for a deprecated alias) and the problem."""
    schema = own_settings(plugin).get(setting, {})
    renamed = (
        re.fullmatch(r"Deprecated: use (\w+)\.", schema.get("description", "")) if schema.get("deprecated") else None
    )
    name = renamed.group(1) if renamed else setting
    if problem == "missing":
        return f"{name} {PHRASE['missing']}"
    kind = "date" if schema.get("format") in ("date", "date-time") else setting_type(schema)
    return f"{name} {PHRASE[kind]}"


def wrong_value(schema: dict) -> Any:
    """A value of a type the setting does not accept."""
    return WRONG_VALUE.get(setting_type(schema), 12345)


class ConnectionCounter:
    """A loopback TCP listener that accepts and counts connections (and closes them)."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture(scope="module")
def kissmetrics() -> Iterator[EmulatorProcess]:
    """One Kissmetrics emulator for the module."""
    emulator = EmulatorProcess("kissmetrics", "--now", "2026-11-18T15:30:00+00:00")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def kaon_listener() -> Iterator[ConnectionCounter]:
    """A listener standing in for the Kaon API: it only counts connections."""
    listener = ConnectionCounter()
    yield listener
    listener.close()


def valid_config(plugin: str, url: str) -> dict[str, Any]:
    """A config of ``plugin`` that works against ``url``."""
    if plugin == TAP_KAHUNA:
        return kahuna_config(url)
    if plugin == TAP_KAON:
        return {"api_key": "kaon-demo-key", "client": "demo-client", "api_url": f"{url}/api", "start_week": 775}
    return {"api_key": KM_KEY, "tracking_url": url}


def cases() -> list[tuple[str, str, str]]:
    """(plugin, setting, "missing" | "wrong_type") for every required and every own setting."""
    found = []
    for plugin in (TAP_KAHUNA, TAP_KAON, TARGET_KM):
        found += [(plugin, name, "missing") for name in required_settings(plugin)]
        found += [(plugin, name, "wrong_type") for name in own_settings(plugin)]
    return found


CASES = cases()
# Known bugs as {(plugin, setting, problem): reason}: each becomes a strict xfail, so a fix removes its entry.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def case_param(plugin: str, setting: str, problem: str) -> Any:
    """A pytest param, xfail(strict) for a known bug."""
    bug = KNOWN_BUGS.get((plugin, setting, problem))
    marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
    return pytest.param(plugin, setting, problem, id=f"{Path(plugin).name}-{setting}-{problem}", marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "setting", "problem"), [case_param(*case) for case in CASES])
def test_bad_setting_is_a_clear_error_before_any_request(
    plugin: str,
    setting: str,
    problem: str,
    kahuna: EmulatorProcess,
    kissmetrics: EmulatorProcess,
    kaon_listener: ConnectionCounter,
    tmp_path: Path,
) -> None:
    url = {TAP_KAHUNA: kahuna.url, TAP_KAON: kaon_listener.url, TARGET_KM: kissmetrics.url}[plugin]
    config = valid_config(plugin, url)
    if problem == "missing":
        config.pop(setting, None)
    else:
        config[setting] = wrong_value(own_settings(plugin)[setting])
    kahuna.reset()
    kissmetrics.reset()
    connections_before = kaon_listener.connections
    stdin = singer_text(event_messages(3)) if plugin == TARGET_KM else None

    run = run_plugin(plugin, config, tmp_path, stdin=stdin, timeout=120)

    assert run.returncode == 1, f"{setting} {problem} was accepted"
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    phrase = expected_phrase(plugin, setting, problem)
    assert any(phrase in line for line in run.error_lines), f"no ERROR line says {phrase!r}: {run.error_lines}"
    assert not run.record_messages
    assert kahuna.requests() == []
    assert kissmetrics.control("stats")["raw"]["total"] == 0
    assert kaon_listener.connections == connections_before
