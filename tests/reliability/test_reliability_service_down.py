"""A service that stays down: the run ends (no hang) with one clear line, and no STATE covers undelivered data.

"Bounded" is checked only as "the process exited before the generous subprocess timeout" (no timing assertion).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import (
    closed_port,
    dedup_events,
    event_messages,
    expected_events,
    expected_kahuna_keys,
    kahuna_config,
    kahuna_keys_by_stream,
    km_config,
    singer_text,
    wait_until,
)
from tests.support.cli import PROCESS_TIMEOUT, TAP_KAHUNA, TAP_KAON, TARGET_KM, parse_messages, run_plugin, write_json
from tests.support.datasets import FIXED_NOW_TEXT
from tests.support.emulators import start_kahuna
from tests.tap_kaon_insights.kaon_tap_helpers import SMALL_ARGS, dataset, expected_weekly, listed_weeks


def assert_one_clear_error(stderr: str, *phrases: str) -> None:
    """The run says what happened in an ERROR line containing every phrase, and prints no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if "ERROR" in line or "CRITICAL" in line]
    assert errors, f"no ERROR line:\n{stderr[-3000:]}"
    assert any(all(phrase.lower() in line.lower() for phrase in phrases) for line in errors), (
        f"no ERROR line names {phrases}: {errors}"
    )


def test_kaon_tap_with_connection_refused_stops_with_a_clear_message(tmp_path: Path) -> None:
    config = {
        "api_key": "kaon-demo-key",
        "client": "demo-client",
        "api_url": f"http://127.0.0.1:{closed_port()}/api",
        "max_retries": 2,
        "backoff_base_seconds": 0.05,
        "start_week": 770,
    }

    run = run_plugin(TAP_KAON, config, tmp_path, timeout=PROCESS_TIMEOUT)

    assert run.returncode != 0
    assert_one_clear_error(run.stderr, "connect")
    assert not run.record_messages
    assert not [state for state in run.states if state.get("bookmarks")], run.states


def test_target_with_connection_refused_stops_and_emits_no_state(tmp_path: Path) -> None:
    config = km_config(f"http://127.0.0.1:{closed_port()}", tmp_path, max_retries=2)

    run = run_plugin(TARGET_KM, config, tmp_path, stdin=singer_text(event_messages(10, state_every=5)))

    assert run.returncode != 0
    assert_one_clear_error(run.stderr, "not delivered", "tracking_url")
    assert run.messages == [], "a STATE was emitted although nothing was delivered"


@pytest.fixture(scope="module")
def kahuna() -> Iterator[EmulatorProcess]:
    """One Kahuna emulator for the module, answering slowly enough to switch faults on mid-run."""
    emulator = start_kahuna("--latency-ms", "40")
    yield emulator
    emulator.stop()


def covered_keys(state: dict, start: date, expected: dict[str, dict]) -> dict[str, set]:
    """The keys a tap-kahuna-logs STATE claims as done: days before ``day`` and the first ``day_records_emitted``."""
    covered: dict[str, set] = {}
    for stream, bookmark in state.get("bookmarks", {}).items():
        day, emitted = bookmark.get("day"), bookmark.get("day_records_emitted", 0)
        if day is None:
            continue
        covered[stream] = {
            (log_date, position)
            for (log_date, position) in expected.get(stream, {})
            if start.isoformat() <= log_date < day or (log_date == day and position < emitted)
        }
    return covered


def run_tap_into_outage(
    tap: str, config: dict, emulator: EmulatorProcess, workdir: Path, *, after_lines: int, status: int
) -> tuple[int, list[dict], str]:
    """PluginRun a tap; once it has written ``after_lines`` lines the service answers only ``status``.

    Returns the exit code, the messages written and stderr; the emulator's faults are off again afterwards.
    """
    emulator.set_faults(error_rate=0.0)
    config_path = write_json(workdir / "config.json", config)
    out_path = workdir / "out.jsonl"
    with out_path.open("w") as out, (workdir / "err.txt").open("w") as err:
        process = subprocess.Popen([tap, "--config", str(config_path)], stdout=out, stderr=err)
        wait_until(lambda: process.poll() is not None or len(out_path.read_text().splitlines()) > after_lines)
        emulator.set_faults(error_rate=1.0, error_statuses=[status])
        returncode = process.wait(timeout=PROCESS_TIMEOUT)
    emulator.set_faults(error_rate=0.0, error_statuses=[500, 503])
    return returncode, parse_messages(out_path.read_text()), (workdir / "err.txt").read_text()


def test_kahuna_tap_going_down_mid_run_keeps_state_within_what_was_emitted(
    kahuna: EmulatorProcess, tmp_path: Path
) -> None:
    config = kahuna_config(kahuna.url, days=3, categories=["inapp"], page_size=10, max_concurrency=1, max_retries=3)
    # The first day and part of the second go through, then the service answers only 500s.
    returncode, messages, stderr = run_tap_into_outage(
        TAP_KAHUNA, config, kahuna, tmp_path, after_lines=200, status=500
    )

    assert returncode != 0, "the tap finished before the service went down: make the data bigger"
    assert_one_clear_error(stderr, "500")
    emitted = set(kahuna_keys_by_stream([m for m in messages if m["type"] == "RECORD"]).get("inapp_logs", []))
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states, "no STATE before the outage"
    expected = expected_kahuna_keys(days=3, categories=("inapp",))
    start = date.fromisoformat(config["start_date"])
    for state in states:
        claimed = covered_keys(state, start, expected).get("inapp_logs", set())
        assert claimed <= emitted, f"STATE claims {len(claimed - emitted)} records that were never emitted"
    assert emitted < set(expected["inapp_logs"])


@pytest.fixture(scope="module")
def kissmetrics() -> Iterator[EmulatorProcess]:
    """One Kissmetrics emulator for the module, with latency so the outage starts mid-run."""
    emulator = EmulatorProcess("kissmetrics", "--now", "2026-11-18T15:30:00+00:00", "--latency-ms", "20")
    yield emulator
    emulator.stop()


def test_target_going_down_mid_run_emits_no_state_past_delivered_beacons(
    kissmetrics: EmulatorProcess, tmp_path: Path
) -> None:
    kissmetrics.reset()
    kissmetrics.set_faults(error_rate=0.0)
    messages = event_messages(200, state_every=10)
    config = km_config(kissmetrics.url, tmp_path, max_concurrency=2, max_retries=3)
    (tmp_path / "in.jsonl").write_text(singer_text(messages))
    config_path = write_json(tmp_path / "config.json", config)
    with (tmp_path / "in.jsonl").open() as stdin, (tmp_path / "out.jsonl").open("w") as out:
        process = subprocess.Popen(
            [TARGET_KM, "--config", str(config_path)], stdin=stdin, stdout=out, stderr=subprocess.PIPE, text=True
        )
        wait_until(lambda: process.poll() is not None or kissmetrics.control("stats")["raw"]["total"] >= 60)
        kissmetrics.set_faults(error_rate=1.0)
        _, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
    kissmetrics.set_faults(error_rate=0.0)

    assert process.returncode != 0, "the target finished before the outage"
    assert_one_clear_error(stderr, "not delivered")
    states = parse_messages((tmp_path / "out.jsonl").read_text())
    assert states, "no STATE before the outage"
    delivered = dedup_events(kissmetrics)
    for state in states:
        done = state["bookmarks"]["events"]["sent_up_to"]
        claimed = expected_events([m for m in messages if m["type"] == "RECORD" and m["record"]["id"] < done])
        assert claimed <= delivered, f"STATE {done} claims {len(claimed - delivered)} undelivered events"
    assert states[-1]["bookmarks"]["events"]["sent_up_to"] < 200


@pytest.fixture(scope="module")
def slow_kaon() -> Iterator[EmulatorProcess]:
    """A Kaon emulator with the small data set, answering slowly enough to switch faults on mid-run."""
    emulator = EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_ARGS, "--latency-ms", "40")
    yield emulator
    emulator.stop()


def kaon_expected_keys(stream: str, weeks: list[int]) -> set[tuple]:
    """(week, code) of countries or (week, device_uid) of devices: every row the emulator serves for ``weeks``."""
    field = "code" if stream == "countries" else "device_uid"
    return {(row["week"], row[field]) for row in expected_weekly(dataset(), stream, weeks)}


def test_kaon_tap_going_down_mid_run_keeps_state_within_what_was_emitted(
    slow_kaon: EmulatorProcess, tmp_path: Path
) -> None:
    config = {
        "api_key": "kaon-demo-key",
        "client": "demo-client",
        "api_url": f"{slow_kaon.url}/api",
        "max_concurrency": 1,
        "max_retries": 2,
        "backoff_base_seconds": 0.05,
    }
    # streams run in name order: countries done, devices part-way (40 rows a week), then only 503s
    returncode, messages, stderr = run_tap_into_outage(
        TAP_KAON, config, slow_kaon, tmp_path, after_lines=250, status=503
    )

    assert returncode != 0, "the tap finished before the service went down: make the data bigger"
    assert_one_clear_error(stderr, "503", "endpoint 'uid'", "week")
    records = [m for m in messages if m["type"] == "RECORD"]
    emitted = {
        "countries": {(r["record"]["week"], r["record"]["code"]) for r in records if r["stream"] == "countries"},
        "devices": {(r["record"]["week"], r["record"]["device_uid"]) for r in records if r["stream"] == "devices"},
    }
    all_weeks = listed_weeks(dataset())
    assert emitted["countries"] == kaon_expected_keys("countries", all_weeks)
    assert emitted["devices"] < kaon_expected_keys("devices", all_weeks), "devices was cut short"
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    for state in states:
        for stream in ("countries", "devices"):
            week = state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")
            if week is not None:
                claimed = kaon_expected_keys(stream, [w for w in all_weeks if w <= week])
                assert claimed <= emitted[stream], f"STATE claims {stream} week {week}, not all of it was emitted"
