"""Delivery on the event loop: thousands of beacons in flight, keep-alive connections, the request-rate cap."""

from __future__ import annotations

import select
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psutil

from emulators.testing import EmulatorProcess
from target_kissmetrics.delivery import RateLimiter
from tests.support.cli import parse_messages, start_plugin
from tests.target_kissmetrics.km_target_helpers import (
    JAN_1_2010,
    PLAYS_SCHEMA,
    TARGET_CLI,
    play,
    received_beacons,
    record_message,
    run_target,
    schema_message,
    singer_lines,
    start_fed_target,
    state_message,
    states_checked_against_the_log,
    target_config,
)

DEBUG = {"TARGET_KISSMETRICS_LOGLEVEL": "DEBUG"}


def event_messages(count: int, state_every: int = 0) -> list[dict]:
    """``count`` events (``_t`` = 2010-01-01 + n s), with a STATE naming the last one after every ``state_every``."""
    messages = [schema_message("plays", PLAYS_SCHEMA)]
    for n in range(count):
        messages.append(record_message("plays", play(n)))
        if state_every and (n + 1) % state_every == 0:
            messages.append(state_message({"bookmarks": {"plays": n}}))
    return messages


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` on 127.0.0.1 (0 once it has exited)."""
    try:
        return sum(
            1
            for connection in psutil.Process(pid).net_connections(kind="tcp")
            if connection.raddr and connection.raddr.port == port and connection.status == psutil.CONN_ESTABLISHED
        )
    except psutil.Error:
        return 0


def test_2000_beacons_in_flight_arrive_once_each_and_state_follows_them(tmp_path: Path) -> None:
    total, in_flight = 6000, 2000
    state_every = in_flight  # a STATE drains what is in flight: rarer ones let all 2,000 fly
    with EmulatorProcess("kissmetrics", "--latency-ms", "2000") as emulator:
        port = int(emulator.url.rsplit(":", 1)[1])
        config = target_config(tmp_path, emulator, max_concurrency=in_flight, state_flush_seconds=0)
        process = start_fed_target(tmp_path, config, event_messages(total, state_every))
        peak = [0]

        def sample_connections() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], connections_to(process.pid, port))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample_connections, daemon=True)
        sampler.start()
        states = states_checked_against_the_log(process, emulator)
        sampler.join()
        arrivals = Counter(int(beacon["params"]["_t"]) - JAN_1_2010 for beacon in received_beacons(emulator))
    assert sorted(set(states)) == list(range(state_every - 1, total, state_every))
    assert states == sorted(states), "STATE lines left out of order"
    assert set(arrivals) == set(range(total)), "a beacon was lost"
    assert set(arrivals.values()) == {1}, "a beacon was sent twice"
    # 2,000 requests of 2 s each were open at once: one connection per beacon in flight, never more.
    assert peak[0] == in_flight, peak[0]


def test_connections_are_kept_alive_and_reused(tmp_path: Path) -> None:
    with EmulatorProcess("kissmetrics") as emulator:
        result = run_target(
            tmp_path, target_config(tmp_path, emulator, max_concurrency=4), event_messages(300), env=DEBUG
        )
        assert result.returncode == 0, result.stderr
        assert emulator.control("stats")["raw"]["total"] == 300
    opened = result.stderr.count("Opening a new connection to the tracking host")
    assert 1 <= opened <= 4, opened
    assert result.stderr.count("-> HTTP 200") == 300


def test_max_requests_per_second_spreads_the_requests(tmp_path: Path) -> None:
    rate, count = 20, 40  # a burst of 20, then one request every 1/20 s: the last at least 1 s after the first
    with EmulatorProcess("kissmetrics", "--request-log") as emulator:
        config = target_config(tmp_path, emulator, max_concurrency=8, max_requests_per_second=rate)
        result = run_target(tmp_path, config, event_messages(count))
        assert result.returncode == 0, result.stderr
        times = sorted(datetime.fromisoformat(entry["time"]) for entry in emulator.requests())
    assert len(times) == count
    spread = (times[-1] - times[0]).total_seconds()
    assert spread >= 0.8 * (count - rate) / rate, spread


def test_rate_limiter_allows_a_burst_then_one_request_per_interval() -> None:
    now = [100.0]
    limiter = RateLimiter(4, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]  # the burst
    assert [limiter.reserve() for _ in range(3)] == [0.25, 0.5, 0.75]  # each booked its own later slot
    now[0] += 10  # idle: the bucket refills to one burst, not more
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 0.0, 0.25]
    slow = RateLimiter(0.5, clock=lambda: now[0])  # under one request per second: bursts of 1
    assert [slow.reserve(), slow.reserve()] == [0.0, 2.0]


def test_a_state_is_written_once_delivered_while_the_input_waits(tmp_path: Path) -> None:
    with EmulatorProcess("kissmetrics", "--latency-ms", "300") as emulator:
        config = target_config(tmp_path, emulator, max_concurrency=64, state_flush_seconds=0)
        process = start_plugin(TARGET_CLI, config, tmp_path, stdin=subprocess.PIPE)
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(singer_lines(event_messages(200, state_every=200)))
        process.stdin.flush()  # the tap now goes quiet with its pipe open, as a slow source does
        readable, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if readable else ""
        delivered = emulator.control("stats")["raw"]["total"]
        process.stdin.close()
        rest = process.stdout.read()
        process.stdout.close()
        assert process.wait(timeout=60) == 0
    assert parse_messages(line) == [{"bookmarks": {"plays": 199}}], "no STATE while the input was open"
    assert delivered == 200, "the STATE came before its beacons were delivered"
    assert parse_messages(rest) == [{"bookmarks": {"plays": 199}}]  # the SDK repeats it at the end


def test_no_state_passes_a_beacon_still_being_retried(tmp_path: Path) -> None:
    # 30 % of requests fail and are retried after up to 0.5 s while later beacons succeed at once: beacons are
    # answered far out of order, and each STATE line must still wait for every beacon before it.
    with EmulatorProcess("kissmetrics", "--error-rate", "0.3", "--fault-seed", "11") as emulator:
        config = target_config(tmp_path, emulator, max_concurrency=32, max_retries=30, state_flush_seconds=0)
        process = start_fed_target(tmp_path, config, event_messages(400, state_every=10))
        checked = states_checked_against_the_log(process, emulator)
    assert sorted(set(checked)) == list(range(9, 400, 10))
