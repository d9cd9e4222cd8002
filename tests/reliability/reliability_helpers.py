"""Shared helpers of the reliability suite: real CLIs as subprocesses, Singer output, canary secrets, expectations.

Everything here talks to real processes: the plugins' console scripts and the emulators on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.support.datasets import (
    FIXED_NOW_TEXT,
    KAHUNA_API_KEY,
    KAHUNA_SECRET_KEY,
    KAHUNA_SMALL,
    KAHUNA_STREAMS,
    KM_API_KEY,
    kahuna_dataset,
)

FIXED_NOW = FIXED_NOW_TEXT
KAHUNA_DAYS = KAHUNA_SMALL["days"]
KAHUNA_SECRET = KAHUNA_SECRET_KEY
KAHUNA_KEY = KAHUNA_API_KEY
KM_KEY = KM_API_KEY

# Canary secrets: distinctive, and full of characters that URL-encoding and Basic auth transform (each of
# + / = & @ has its own escape, and & and = would split a query string if a plugin forgot to encode them).
CANARY_API_KEY = "canary-APIKEY-7f3a+/=&@Q9"
CANARY_SECRET_KEY = "canary-SECRET-2b8c+/=&@Z4"  # noqa: S105 (a canary, not a credential)
CANARY_KM_KEY = "canary-KMKEY-5d1e+/=&@W6"
#: How much of a secret's start is searched for on its own (``canary-APIKEY``): a secret cut short, or encoded in a
#: way the other forms miss, still shows by it.
SECRET_STEM_LENGTH = 13


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def secret_stem(secret: str) -> str | None:
    """The secret's first characters when no encoding changes them (``canary-APIKEY``), else None."""
    stem = secret[:SECRET_STEM_LENGTH]
    return stem if len(stem) == SECRET_STEM_LENGTH and re.fullmatch(r"[A-Za-z0-9_.~-]+", stem) else None


def secret_forms(*secrets: str) -> list[str]:
    """Every spelling of the secrets that could leak: raw, URL-encoded (both styles), Basic-auth base64, and the
    secret's stem (its first characters, when no encoding changes them).
    """
    forms: set[str] = set()
    for secret in secrets:
        forms |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        stem = secret_stem(secret)
        if stem:
            forms.add(stem)
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


def expected_kahuna_keys(
    days: int = KAHUNA_DAYS, categories: tuple[str, ...] = tuple(KAHUNA_STREAMS), data: KahunaDataset | None = None
) -> dict:
    """``{stream: {(log_date, log_position): raw record}}`` for everything the emulator serves in the last days
    (of ``data``, default the small data set)."""
    data = data or kahuna_dataset()
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
