"""Transient faults (5xx, dropped connections, 429 + Retry-After, slow bodies, cursor expiry): nothing lost or twice.

Each test runs the real CLI against an emulator with its fault knobs set and compares keys with the emulator's dataset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import (
    dedup_events,
    event_messages,
    expected_events,
    expected_kahuna_keys,
    kahuna_config,
    kahuna_keys_by_stream,
    km_config,
    raw_event_beacons,
    singer_text,
)
from tests.support.cli import TAP_KAHUNA, TARGET_KM, run_plugin

# (fault knobs, config overrides): slow bodies pause 1.2 s mid-body against a 2 s read timeout.
KAHUNA_FAULTS = {
    "errors_10pct_drops_5pct": ({"error_rate": 0.10, "error_statuses": [500, 503], "drop_rate": 0.05}, {}),
    "rate_limited_retry_after_1s": ({"rate_limit_rate": 0.08, "retry_after_seconds": 1}, {}),
    "slow_bodies_below_timeout": ({"slow_body_ms": 1200}, {"request_timeout": 2, "page_size": 100}),
}


@pytest.fixture
def clean_kahuna(kahuna: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator with no faults and no cursor expiry, its request log empty."""
    kahuna.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, slow_body_ms=0.0, latency_ms=0.0, seed=0)
    kahuna.control("kahuna/cursors", {"expire_after_uses": None, "ttl_seconds": None, "expire_rate": 0.0})
    kahuna.reset()
    return kahuna


def assert_exactly_once(records: list[dict], expected: dict[str, dict]) -> None:
    """Every expected key once per stream, nothing else, and the payload of each matches the dataset."""
    keys = kahuna_keys_by_stream(records)
    for stream, rows in expected.items():
        emitted = keys.get(stream, [])
        twice = [key for key, count in Counter(emitted).items() if count > 1]
        assert not twice, f"{stream}: keys emitted more than once: {twice[:5]}"
        missing, unexpected = sorted(set(rows) - set(emitted)), sorted(set(emitted) - set(rows))
        assert not missing, f"{stream}: missing {missing[:5]}"
        assert not unexpected, f"{stream}: unexpected {unexpected[:5]}"
    for message in records:
        record = message["record"]
        raw = expected[message["stream"]][(record["log_date"], record["log_position"])]
        assert record["timestamp"].startswith(raw["timestamp"].replace(" ", "T")), (record, raw)


@pytest.mark.parametrize("case", list(KAHUNA_FAULTS.values()), ids=list(KAHUNA_FAULTS))
def test_kahuna_tap_delivers_every_record_once_under_faults(
    clean_kahuna: EmulatorProcess, tmp_path: Path, case: tuple[dict, dict]
) -> None:
    faults, overrides = case
    clean_kahuna.set_faults(**faults, seed=7)
    config = kahuna_config(clean_kahuna.url, days=2, categories=["inapp", "user_merge"], **overrides)

    run = run_plugin(TAP_KAHUNA, config, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert_exactly_once(run.record_messages, expected_kahuna_keys(days=2, categories=("inapp", "user_merge")))
    statuses = Counter(str(entry.get("status")) for entry in clean_kahuna.requests())
    injected = {"error_rate": {"500", "503"}, "drop_rate": {"dropped"}, "rate_limit_rate": {"429"}}
    for knob, seen in injected.items():
        if faults.get(knob):
            assert seen & set(statuses), f"the emulator injected no {knob} fault: {statuses}"


def test_kahuna_tap_survives_random_cursor_expiry(clean_kahuna: EmulatorProcess, tmp_path: Path) -> None:
    clean_kahuna.control("kahuna/cursors", {"expire_rate": 0.15, "seed": 3})
    clean_kahuna.set_faults(error_rate=0.05, seed=11)
    config = kahuna_config(clean_kahuna.url, days=2, categories=["push", "email"])

    run = run_plugin(TAP_KAHUNA, config, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert_exactly_once(run.record_messages, expected_kahuna_keys(days=2, categories=("push", "email")))
    assert clean_kahuna.control("kahuna/cursors")["expired_answers"] > 0


# --- target -------------------------------------------------------------------------------------------------

TARGET_FAULTS = {
    "errors_10pct_drops_5pct": ({"error_rate": 0.10, "drop_rate": 0.05}, {}),
    "rate_limited_retry_after_1s": ({"rate_limit_rate": 0.05, "retry_after_seconds": 1}, {}),
    "slow_bodies_below_timeout": ({"slow_body_ms": 1200}, {"request_timeout": 2, "max_concurrency": 32}),
}


@pytest.fixture(scope="module")
def kissmetrics() -> Iterator[EmulatorProcess]:
    """One Kissmetrics emulator for the module."""
    emulator = EmulatorProcess("kissmetrics", "--now", "2026-11-18T15:30:00+00:00")
    yield emulator
    emulator.stop()


@pytest.mark.parametrize("case", list(TARGET_FAULTS.values()), ids=list(TARGET_FAULTS))
def test_target_delivers_every_beacon_under_faults(
    kissmetrics: EmulatorProcess, tmp_path: Path, case: tuple[dict, dict]
) -> None:
    faults, overrides = case
    kissmetrics.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, slow_body_ms=0.0)
    kissmetrics.reset()
    kissmetrics.set_faults(**faults, seed=5)
    messages = event_messages(150)

    config = km_config(kissmetrics.url, tmp_path, **overrides)
    run = run_plugin(TARGET_KM, config, tmp_path, stdin=singer_text(messages))

    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected_events(messages)
    assert dedup_events(kissmetrics) == expected
    assert set(raw_event_beacons(kissmetrics)) >= expected
    assert run.target_states[-1] == {"bookmarks": {"events": {"sent_up_to": 150}}}
    assert not (tmp_path / "dead-letters.jsonl").exists()
