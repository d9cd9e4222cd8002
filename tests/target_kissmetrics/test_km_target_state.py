"""STATE ordering and kill-and-resume, with the real CLI process and the emulator's raw log."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import parse_messages, start_plugin
from tests.target_kissmetrics.km_target_helpers import (
    TARGET_CLI,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    state_message,
    target_config,
)

StartEmulator = Callable[..., EmulatorProcess]
JAN_1_2010 = 1262304000
SCHEMA = {
    "person": {"type": "string"},
    "event": {"type": "string"},
    "timestamp": {"type": "integer"},
    "n": {"type": "integer"},
}


def play(n: int) -> dict:
    return {"person": f"user-{n % 7}", "event": "Played", "timestamp": JAN_1_2010 + n // 3, "n": n}


def messages_from(first: int, count: int, state_every: int) -> list[dict]:
    """Records ``first .. count-1``, with a STATE naming the last record after every ``state_every``."""
    messages = [schema_message("plays", SCHEMA, ["n"])]
    for n in range(first, count):
        messages.append(record_message("plays", play(n)))
        if (n + 1) % state_every == 0:
            messages.append(state_message({"bookmarks": {"plays": {"last_n": n}}}))
    return messages


def start_target(tmp_path: Path, config: dict, messages: list[dict]) -> subprocess.Popen:
    process = start_plugin(TARGET_CLI, config, tmp_path, stdin=subprocess.PIPE)

    def feed() -> None:
        try:
            assert process.stdin is not None
            process.stdin.write(singer_lines(messages))
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the process was killed mid-way

    threading.Thread(target=feed, daemon=True).start()
    return process


def expected_events(count: int) -> list[dict]:
    events = [
        {"person": p["person"], "event": "Played", "time": p["timestamp"], "properties": {"n": str(p["n"])}}
        for p in map(play, range(count))
    ]
    return sorted(events, key=lambda e: (e["person"], e["time"], e["properties"]["n"]))


def dedup_events(emulator: EmulatorProcess) -> list[dict]:
    return sorted(emulator.control("dedup")["events"], key=lambda e: (e["person"], e["time"], e["properties"]["n"]))


def test_a_state_line_follows_the_delivery_of_every_beacon_before_it(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("kissmetrics", "--latency-ms", "30")
    config = target_config(tmp_path, emulator, state_flush_seconds=0, max_concurrency=8)
    process = start_target(tmp_path, config, messages_from(0, 240, state_every=20))
    assert process.stdout is not None
    checked: list[int] = []
    with process.stdout:
        for line in process.stdout:
            (state,) = parse_messages(line)
            last_n = state["bookmarks"]["plays"]["last_n"]
            delivered = {int(beacon["params"]["n"]) for beacon in received_beacons(emulator)}
            assert set(range(last_n + 1)) <= delivered, f"STATE after record {last_n} came before its beacons"
            checked.append(last_n)
    assert process.wait(timeout=120) == 0
    # singer-sdk repeats the last STATE at the end of the input.
    assert sorted(set(checked)) == list(range(19, 240, 20))


@pytest.mark.parametrize("kill_after_states", [3, 9])
def test_kill_and_resume_from_the_last_state_loses_and_doubles_nothing(
    start_emulator: StartEmulator, tmp_path: Path, kill_after_states: int
) -> None:
    total = 600
    emulator = start_emulator("kissmetrics", "--latency-ms", "20")
    config = target_config(tmp_path, emulator, state_flush_seconds=0, max_concurrency=16)
    process = start_target(tmp_path, config, messages_from(0, total, state_every=25))
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if len(lines) == kill_after_states:
            os.kill(process.pid, signal.SIGKILL)
            break
    lines.append(process.stdout.read())  # STATE lines written before the kill landed
    process.stdout.close()
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    resume_after = parse_messages("".join(lines), strict=False)[-1]["bookmarks"]["plays"]["last_n"]
    assert resume_after < total - 1, "the run finished before the kill; nothing was tested"
    delivered_before = {int(beacon["params"]["n"]) for beacon in received_beacons(emulator)}
    assert set(range(resume_after + 1)) <= delivered_before

    resumed = run_target(tmp_path, config, messages_from(resume_after + 1, total, state_every=25))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.target_states[-1] == {"bookmarks": {"plays": {"last_n": total - 1}}}
    assert dedup_events(emulator) == expected_events(total)
    assert emulator.control("stats")["raw"]["total"] >= total
