"""``kill -9`` of a tap or the target at random points, then resume from the last STATE it emitted: nothing lost.

The "warehouse" commits records only together with the STATE that follows them (as a target does),
so whatever a killed run emitted after its last STATE is thrown away and must come again.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.kahuna_readings import CONTRACT_READINGS
from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import (
    dedup_events,
    event_messages,
    expected_events,
    expected_kahuna_keys,
    kahuna_config,
    km_config,
    messages_after,
    raw_event_beacons,
    singer_text,
    upsert,
    wait_until,
)
from tests.support.cli import PROCESS_TIMEOUT, TAP_KAHUNA, TARGET_KM, json_lines, run_plugin_killed, write_json
from tests.support.datasets import StoredOrder, kahuna_emulator_dataset
from tests.support.emulators import start_kahuna

SEEDS = (1, 2, 3)
KILLS_PER_SEED = 3


def committed_part(messages: list[dict]) -> tuple[list[dict], dict | None]:
    """The RECORD messages up to the last STATE, and that STATE (what a target would have committed)."""
    last_state_at = max((i for i, m in enumerate(messages) if m.get("type") == "STATE"), default=-1)
    committed = messages[: last_state_at + 1]
    state = committed[-1]["value"] if committed else None
    return [m for m in committed if m.get("type") == "RECORD"], state


#: Days of 3,801 records per category: a run of 300 equal timestamps and a burst of 600 records in 10:15.
KAHUNA_HARD_DAYS = [
    *("--days", "3", "--logs-per-day", "3200", "--day-size-jitter", "0", "--same-timestamp-run", "300"),
    *("--burst-minute", "10:15", "--burst-records", "600"),
]


@pytest.fixture(scope="module")
def kahuna() -> Iterator[EmulatorProcess]:
    """One Kahuna emulator with the hard days for the module (read only; each test picks the reading)."""
    emulator = start_kahuna(*KAHUNA_HARD_DAYS)
    yield emulator
    emulator.stop()


#: The contract's readings of the rest of the seed (tests/tap_kahuna_logs/test_readings.py), and two hard mixes of
#: the others a client can be exact under: under the page-size reading, and under the capped one.
PAGE_MIX = {"last_page_more_records": "absent", "restart_from": "day_start", "page_overlap": True, "order": "stored"}
CHAIN_MIX = {"last_page_more_records": "absent", "cursor_error": "generic", "page_overlap": True}


@pytest.mark.parametrize(
    ("records_cap", "seed", "readings"),
    [
        ("page", 1, {}),
        ("page", 2, {}),
        ("chain", 3, {}),
        ("chain", 4, {}),
        ("page", 5, PAGE_MIX),
        ("chain", 6, CHAIN_MIX),
    ],
    ids=["page-1", "page-2", "chain-3", "chain-4", "page-5-hard-readings", "chain-6-hard-readings"],
)
def test_kahuna_tap_killed_at_random_points_resumes_without_loss(
    kahuna: EmulatorProcess, tmp_path: Path, records_cap: str, seed: int, readings: dict
) -> None:
    """Under both readings of number_of_records (page size, or the cap of one chain paged by 250), and under the
    other readings of the seed at once."""
    kahuna.control("kahuna/paging", {"records_cap": records_cap, "chain_page_size": 250})
    kahuna.control("kahuna/readings", {**CONTRACT_READINGS, **readings})
    rng = random.Random(seed)
    categories = ("inapp", "user_merge")
    data: Any = kahuna_emulator_dataset(*KAHUNA_HARD_DAYS)
    if readings.get("order") == "stored":  # keys are positions in the server's order
        data = StoredOrder(data)
    expected = expected_kahuna_keys(days=3, categories=categories, data=data)
    total_records = sum(len(rows) for rows in expected.values())
    # A STATE every 1,000 records and at each day's end: kills land between and inside days (and minutes).
    config = kahuna_config(kahuna.url, days=3, categories=list(categories), page_size=700, max_concurrency=2)
    warehouse: dict[str, dict[tuple, dict]] = {}
    state: dict | None = None
    kills = 0
    resumed_inside_a_day = False
    for attempt in range(KILLS_PER_SEED + 1):
        kill_after = rng.randint(2, total_records) if attempt < KILLS_PER_SEED else 10**9
        run = run_plugin_killed(
            TAP_KAHUNA, config, tmp_path / f"run-{attempt}", state=state, kill_after_lines=kill_after
        )
        if run.returncode == -signal.SIGKILL:
            kills += 1
            records, committed_state = committed_part(run.messages)
        else:
            assert run.returncode == 0, run.stderr[-3000:]
            records, committed_state = run.record_messages, run.last_state
        upsert(warehouse, records, ("log_date", "log_position"))
        state = committed_state or state
        bookmarks = (state or {}).get("bookmarks", {}).values()
        resumed_inside_a_day |= any(
            0 < b.get("minute_records_emitted", 0) < b["day_records_emitted"] for b in bookmarks
        )
    kahuna.control("kahuna/readings", CONTRACT_READINGS)
    assert kills >= 1, "no run was killed: the kill points are too late for this data"
    assert resumed_inside_a_day, "some run resumed from a bookmark inside a day"
    for stream, rows in expected.items():
        assert set(warehouse.get(stream, {})) == set(rows), f"{stream}: {set(rows) ^ set(warehouse.get(stream, {}))}"
        for key, record in warehouse[stream].items():
            assert record["timestamp"].startswith(rows[key]["timestamp"].replace(" ", "T"))


@pytest.fixture(scope="module")
def kissmetrics() -> Iterator[EmulatorProcess]:
    """One Kissmetrics emulator for the module, a little latency so that a kill lands mid-run."""
    emulator = EmulatorProcess("kissmetrics", "--now", "2026-11-18T15:30:00+00:00", "--latency-ms", "15")
    yield emulator
    emulator.stop()


def run_target_killed(
    config: dict, messages: list[dict], workdir: Path, emulator: EmulatorProcess, kill_at: int
) -> tuple[dict, bool]:
    """Feed the target, ``kill -9`` it once the emulator holds ``kill_at`` more beacons.

    Returns its last STATE (or {}) and whether it was killed.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    input_path = workdir / "input.jsonl"
    input_path.write_text(singer_text(messages))
    config_path = write_json(workdir / "config.json", config)
    before = emulator.control("stats")["raw"]["total"]
    with input_path.open() as stdin, (workdir / "out.jsonl").open("w") as stdout:
        process = subprocess.Popen(
            [TARGET_KM, "--config", str(config_path)], stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: process.poll() is not None or emulator.control("stats")["raw"]["total"] - before >= kill_at)
        killed = process.poll() is None
        if killed:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=PROCESS_TIMEOUT)
    lines = json_lines((workdir / "out.jsonl").read_text())
    states = []
    for line in lines:
        try:
            states.append(json.loads(line))
        except ValueError:
            break  # a half-written last line of a killed process
    return (states[-1] if states else {}), killed


@pytest.mark.parametrize("seed", SEEDS)
def test_target_killed_at_random_points_resumes_without_loss(
    kissmetrics: EmulatorProcess, tmp_path: Path, seed: int
) -> None:
    kissmetrics.reset()
    kissmetrics.set_faults(error_rate=0.05, seed=seed)
    rng = random.Random(seed)
    messages = event_messages(240, state_every=20, seed=seed)
    config = km_config(kissmetrics.url, tmp_path, max_concurrency=4)
    state: dict | None = None
    kills = 0
    for attempt in range(KILLS_PER_SEED):
        pending = messages_after(messages, state)
        kill_at = rng.randint(1, max(1, sum(m["type"] == "RECORD" for m in pending) - 1))
        emitted, killed = run_target_killed(config, pending, tmp_path / f"run-{attempt}", kissmetrics, kill_at)
        state, kills = emitted or state, kills + killed
    final = subprocess.run(
        [TARGET_KM, "--config", str(write_json(tmp_path / "final-config.json", config))],
        input=singer_text(messages_after(messages, state)),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )

    assert final.returncode == 0, final.stderr[-3000:]
    assert kills >= 1, "no run was killed"
    expected = expected_events(messages)
    assert dedup_events(kissmetrics) == expected
    assert set(raw_event_beacons(kissmetrics)) >= expected
