"""Shared helpers of the reliability suite: real CLIs as subprocesses, Singer output, canary secrets, expectations.

Everything here talks to real processes: the plugins' console scripts and the emulators on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from emulators.testing import EmulatorProcess

BIN = Path(sys.executable).parent
TAP_KAHUNA = str(BIN / "tap-kahuna-logs")
TAP_KAON = str(BIN / "tap-kaon-insights")
TARGET_KM = str(BIN / "target-kissmetrics")

FIXED_NOW = "2026-11-18T15:30:00+00:00"  # tests/conftest.py FIXED_NOW
KAHUNA_DAYS = 5
KAHUNA_LOGS_PER_DAY = 120
KAHUNA_SECRET = "kahuna-demo-secret"  # noqa: S105 (the emulator's demo credential)
KAHUNA_KEY = "kahuna-demo-key"
KAHUNA_STREAMS = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}
KM_KEY = "km-demo-key"

# Canary secrets: distinctive, and full of characters that URL-encoding and Basic auth transform.
CANARY_API_KEY = "canary-APIKEY-7f3a+/=Q9"
CANARY_SECRET_KEY = "canary-SECRET-2b8c+/=Z4"  # noqa: S105 (a canary, not a credential)
CANARY_KM_KEY = "canary-KMKEY-5d1e+/=W6"

PROCESS_TIMEOUT = 240  # generous: a run that hangs fails the test instead of the suite


@dataclass
class Run:
    """What one plugin run printed, with its Singer messages parsed."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The RECORD messages, in order."""
        return [m for m in self.messages if m.get("type") == "RECORD"]

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE values, in order (a target writes bare STATE messages too)."""
        return [m["value"] for m in self.messages if m.get("type") == "STATE"]

    @property
    def target_states(self) -> list[dict[str, Any]]:
        """The state values a target wrote: bare JSON objects, one a line."""
        return [m for m in self.messages if "type" not in m]

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The last STATE value, or None."""
        return self.states[-1] if self.states else None


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Singer messages from a plugin's stdout (every line must be JSON)."""
    return [json.loads(line) for line in json_lines(stdout)]


def json_lines(text: str) -> list[str]:
    """Non-empty lines split on "\\n" only (``str.splitlines`` also splits on U+0085 and U+2028 inside JSON strings)."""
    return [line for line in text.split("\n") if line.strip()]


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as JSON and return the path."""
    path.write_text(json.dumps(value))
    return path


def run_plugin(
    executable: str,
    config: dict[str, Any],
    workdir: Path,
    *,
    state: dict[str, Any] | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = PROCESS_TIMEOUT,
) -> Run:
    """Run a plugin's real CLI in ``workdir`` with a config file (and state file) and parse its stdout."""
    workdir.mkdir(parents=True, exist_ok=True)
    serial = len(list(workdir.glob("config-*.json")))
    command = [executable, "--config", str(write_json(workdir / f"config-{serial}.json", config)), *args]
    if state is not None:
        command += ["--state", str(write_json(workdir / f"state-{serial}.json", state))]
    completed = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=workdir,
        env={**os.environ, **(env or {})},
    )
    messages = parse_messages(completed.stdout) if completed.returncode == 0 else _parse_prefix(completed.stdout)
    return Run(completed.returncode, completed.stdout, completed.stderr, messages)


def _parse_prefix(stdout: str) -> list[dict[str, Any]]:
    """Messages of a failed run: every complete JSON line (a killed process may leave half a line)."""
    messages = []
    for line in json_lines(stdout):
        try:
            messages.append(json.loads(line))
        except ValueError:
            break
    return messages


def run_tap_killed(
    executable: str,
    config: dict[str, Any],
    workdir: Path,
    *,
    state: dict[str, Any] | None,
    kill_after_lines: int,
    args: tuple[str, ...] = (),
) -> Run:
    """Run a tap and ``kill -9`` it once ``kill_after_lines`` stdout lines were read (or let it finish first).

    The lines read are what a downstream target would have received; what sat in the pipe is lost.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    serial = len(list(workdir.glob("config-*.json")))
    command = [executable, "--config", str(write_json(workdir / f"config-{serial}.json", config)), *args]
    if state is not None:
        command += ["--state", str(write_json(workdir / f"state-{serial}.json", state))]
    stderr_path = workdir / f"stderr-{serial}.txt"
    with stderr_path.open("w") as stderr_file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file, text=True, cwd=workdir)
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if len(lines) >= kill_after_lines:
                process.send_signal(signal.SIGKILL)
                break
        process.stdout.close()
        returncode = process.wait(timeout=PROCESS_TIMEOUT)
    return Run(returncode, "".join(lines), stderr_path.read_text(), _parse_prefix("".join(lines)))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def secret_forms(*secrets: str) -> list[str]:
    """Every spelling of the secrets that could leak: raw, URL-encoded (both styles), Basic-auth base64."""
    forms: set[str] = set()
    for secret in secrets:
        forms |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    for username in secrets:
        for password in secrets:
            forms.add(base64.b64encode(f"{username}:{password}".encode()).decode())
    forms |= {base64.b64encode(secret.encode()).decode() for secret in secrets}
    return sorted(forms)


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    """Fail naming the leaked form and where, with a little context."""
    for form in secret_forms(*secrets):
        position = text.find(form)
        assert position < 0, (
            f"secret form {form!r} leaked in {where}: ...{text[max(0, position - 120) : position + 60]!r}"
        )


def files_text(root: Path) -> dict[str, str]:
    """The text of every file under ``root`` (config files excluded: they hold the secrets on purpose)."""
    texts = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("config"):
            texts[str(path)] = path.read_bytes().decode(errors="replace")
    return texts


# --- Kahuna -------------------------------------------------------------------------------------------------


def start_kahuna(*args: str) -> EmulatorProcess:
    """A Kahuna emulator with the small data set, frozen at FIXED_NOW (later args win)."""
    return EmulatorProcess(
        "kahuna", "--now", FIXED_NOW, "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY), *args
    )


def kahuna_dataset() -> Any:
    """The Kahuna emulator's deterministic data at FIXED_NOW."""
    from emulators.kahuna_data import KahunaDataset

    return KahunaDataset(
        seed=42, now=datetime.fromisoformat(FIXED_NOW), days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p"
    )


def kahuna_config(emulator_url: str, *, days: int = KAHUNA_DAYS, **overrides: Any) -> dict[str, Any]:
    """A tap-kahuna-logs config reading the last ``days`` days of the emulator, in small pages, fast retries."""
    data_days: list[date] = kahuna_dataset().days
    return {
        "secret_key": KAHUNA_SECRET,
        "api_key": KAHUNA_KEY,
        "api_url": f"{emulator_url}/api/kahunalogs",
        "start_date": data_days[-days].isoformat(),
        "end_date": data_days[-1].isoformat(),
        "page_size": 25,
        "max_concurrency": 2,
        "max_retries": 10,
        "request_timeout": 5,
        **overrides,
    }


def expected_kahuna_keys(days: int = KAHUNA_DAYS, categories: tuple[str, ...] = tuple(KAHUNA_STREAMS)) -> dict:
    """``{stream: {(log_date, log_position): raw record}}`` for everything the emulator serves in the last days."""
    data = kahuna_dataset()
    expected: dict[str, dict[tuple[str, int], dict]] = {}
    for category in categories:
        rows = expected.setdefault(KAHUNA_STREAMS[category], {})
        for day in data.days[-days:]:
            for position, raw in enumerate(data.records(category, day)):
                rows[(day.isoformat(), position)] = raw
    return expected


def kahuna_keys_by_stream(records: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Primary keys of tap-kahuna-logs RECORD messages per stream, in output order (duplicates kept)."""
    keys: dict[str, list[tuple[str, int]]] = {}
    for message in records:
        record = message["record"]
        keys.setdefault(message["stream"], []).append((record["log_date"], record["log_position"]))
    return keys


def upsert(warehouse: dict[str, dict[tuple, dict]], records: list[dict[str, Any]], key_fields: tuple[str, ...]) -> None:
    """Load RECORD messages as a warehouse upsert on their primary key would."""
    for message in records:
        record = message["record"]
        warehouse.setdefault(message["stream"], {})[tuple(record[name] for name in key_fields)] = record


# --- Kissmetrics --------------------------------------------------------------------------------------------


def event_messages(count: int, *, stream: str = "events", state_every: int = 25, seed: int = 0) -> list[dict]:
    """SCHEMA + ``count`` event records (person, event, timestamp, two properties) with STATE every few records.

    Each STATE value is ``{"bookmarks": {stream: {"sent_up_to": i}}}``: records before ``i`` came before it.
    """
    rng = random.Random(seed)
    messages: list[dict] = [
        {
            "type": "SCHEMA",
            "stream": stream,
            "key_properties": ["id"],
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "person": {"type": "string"},
                    "event": {"type": "string"},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "plan": {"type": "string"},
                    "amount": {"type": "integer"},
                },
            },
        }
    ]
    base = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
    for index in range(count):
        moment = datetime.fromtimestamp(base + index * 37, tz=timezone.utc)
        record = {
            "id": index,
            "person": f"user-{index % 17}@example.com",
            "event": rng.choice(["Signed Up", "Viewed Página", "Purchased ☕"]),
            "timestamp": moment.isoformat(),
            "plan": rng.choice(["free", "pro & co", "50% off"]),
            "amount": index,
        }
        messages.append({"type": "RECORD", "stream": stream, "record": record})
        if (index + 1) % state_every == 0:
            messages.append({"type": "STATE", "value": {"bookmarks": {stream: {"sent_up_to": index + 1}}}})
    messages.append({"type": "STATE", "value": {"bookmarks": {stream: {"sent_up_to": count}}}})
    return messages


def expected_events(messages: list[dict]) -> set[tuple]:
    """The dedup view's events the records must produce: (person, event, time, sorted properties)."""
    expected = set()
    for message in messages:
        if message["type"] != "RECORD":
            continue
        record = message["record"]
        moment = int(datetime.fromisoformat(record["timestamp"]).timestamp())
        properties = {"id": str(record["id"]), "plan": record["plan"], "amount": str(record["amount"])}
        expected.add((record["person"], record["event"], moment, tuple(sorted(properties.items()))))
    return expected


def dedup_events(emulator: EmulatorProcess) -> set[tuple]:
    """The Kissmetrics emulator's deduplicated events in the shape of :func:`expected_events`."""
    view = emulator.control("dedup")
    return {
        (event["person"], event["event"], event["time"], tuple(sorted(event["properties"].items())))
        for event in view["events"]
    }


def raw_event_beacons(emulator: EmulatorProcess) -> list[tuple]:
    """Every /e beacon received (re-sends included) in the shape of :func:`expected_events`."""
    beacons = emulator.control("beacons?offset=0&limit=1000000")["beacons"]
    found = []
    for beacon in beacons:
        if beacon["kind"] != "e":
            continue
        params = beacon["params"]
        properties = {name: value for name, value in params.items() if not name.startswith("_")}
        found.append((params["_p"], params["_n"], int(params["_t"]), tuple(sorted(properties.items()))))
    return found


def km_config(url: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """A target-kissmetrics config for the emulator at ``url`` with fast retries and a dead-letter file."""
    return {
        "api_key": KM_KEY,
        "tracking_url": url,
        "dead_letter_path": str(workdir / "dead-letters.jsonl"),
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 1.5,
        "max_retries": 12,
        "request_timeout": 5,
        "max_concurrency": 8,
        "state_flush_seconds": 0,
        **overrides,
    }


def singer_text(messages: list[dict]) -> str:
    """Messages as Singer input lines."""
    return "".join(json.dumps(message) + "\n" for message in messages)


def messages_after(messages: list[dict], state: dict | None, stream: str = "events") -> list[dict]:
    """What a tap would re-send from ``state``: the SCHEMA, then every record at or after the bookmark."""
    done = state["bookmarks"][stream]["sent_up_to"] if state else 0
    schema = [m for m in messages if m["type"] == "SCHEMA"]
    rest = [
        m
        for m in messages
        if (m["type"] == "RECORD" and m["record"]["id"] >= done)
        or (m["type"] == "STATE" and m["value"]["bookmarks"][stream]["sent_up_to"] > done)
    ]
    return schema + rest


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (synchronisation only, never an assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
