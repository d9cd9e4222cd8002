"""target-kissmetrics throughput and memory, against the Kissmetrics emulator (one run, side by side).

1. Throughput with ``--latency-ms 50``: the target's real CLI (Singer messages piped in) vs. the official
   py-KISSmetrics client in its normal loop (one synchronous call per event) vs. the ceiling, a plain
   concurrent urllib3 sender with the same concurrency as the target.
2. Memory: peak RSS of the target process (psutil sampling) over a long run (default 1,000,000 records,
   no latency, ``--raw-log count``).

Run: ``.venv/bin/python bench/target_kissmetrics_throughput.py [--events 20000] [--rss-records 1000000]``
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import urllib3
from KISSmetrics import Client as OfficialClient
from plays import SCHEMA, play, singer_lines

from emulators.testing import EmulatorProcess
from target_kissmetrics.beacons import build_beacons, mappings_for_stream

API_KEY = "km-demo-key"
CONCURRENCY = 128
TARGET_CLI = str(Path(sys.executable).with_name("target-kissmetrics"))


def write_input(path: Path, count: int, state_every: int) -> Path:
    with path.open("w") as out:
        out.writelines(singer_lines(count, state_every))
    return path


def write_config(directory: Path, url: str) -> Path:
    path = directory / "config.json"
    config = {
        "api_key": API_KEY,
        "tracking_url": url,
        "max_concurrency": CONCURRENCY,
        "dead_letter_path": str(directory / "dead.jsonl"),
    }
    path.write_text(json.dumps(config))
    return path


def run_target(config: Path, input_path: Path, sample_rss: bool = False) -> tuple[float, list[tuple[float, int]]]:
    """Run the CLI with ``input_path`` on stdin; returns (seconds, [(elapsed, rss bytes)])."""
    samples: list[tuple[float, int]] = []
    started = time.perf_counter()
    with input_path.open() as stdin:
        process = subprocess.Popen(
            [TARGET_CLI, "--config", str(config)], stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        stderr_chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
        reader.start()
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            if sample_rss:
                try:
                    samples.append((time.perf_counter() - started, watched.memory_info().rss))
                except psutil.NoSuchProcess:
                    break
            time.sleep(0.2)
        reader.join()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"target failed: {b''.join(stderr_chunks).decode()[-2000:]}")
    return elapsed, samples


def run_official_client(url: str, count: int) -> float:
    """py-KISSmetrics in its normal loop: one synchronous record() per event."""
    client = OfficialClient(API_KEY, trk_host=urlsplit(url).netloc, trk_scheme="http")
    started = time.perf_counter()
    for n in range(count):
        row = play(n)
        client.record(row["person"], row["event"], {"n": row["n"], "plan": row["plan"]}, timestamp=row["timestamp"])
    return time.perf_counter() - started


def run_ceiling(url: str, count: int) -> float:
    """A plain concurrent urllib3 sender: pre-built URLs, same concurrency, no parsing, no retries."""
    mappings = mappings_for_stream("plays", None, list(SCHEMA["schema"]["properties"]))
    urls = [build_beacons(play(n), mappings)[0].url(url, API_KEY) for n in range(count)]
    pool = urllib3.PoolManager(maxsize=CONCURRENCY, block=True, retries=False)

    def send(beacon_url: str) -> None:
        response = pool.request("GET", beacon_url)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as executor:
        for _ in executor.map(send, urls):
            pass
    return time.perf_counter() - started


def delivered(emulator: EmulatorProcess) -> int:
    return emulator.control("stats")["raw"]["total"]


def main() -> None:
    """Run both parts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000, help="events for the target and the ceiling")
    parser.add_argument("--official-events", type=int, default=200, help="events for py-KISSmetrics")
    parser.add_argument("--rss-records", type=int, default=1_000_000, help="records of the memory run (0: skip)")
    options = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        with EmulatorProcess("kissmetrics", "--latency-ms", "50", "--raw-log", "count") as emulator:
            input_path = write_input(directory / "events.singer", options.events, state_every=1000)
            config = write_config(directory, emulator.url)
            target_seconds, _ = run_target(config, input_path)
            assert delivered(emulator) == options.events
            emulator.reset()
            official_seconds = run_official_client(emulator.url, options.official_events)
            assert delivered(emulator) == options.official_events
            emulator.reset()
            ceiling_seconds = run_ceiling(emulator.url, options.events)
            assert delivered(emulator) == options.events
        target_rate = options.events / target_seconds
        official_rate = options.official_events / official_seconds
        ceiling_rate = options.events / ceiling_seconds
        rows += [
            (
                "py-KISSmetrics 1.1.0 (one sync call per event)",
                f"{options.official_events}",
                f"{official_rate:,.0f}",
                "1.0x",
            ),
            (
                f"target-kissmetrics CLI (max_concurrency {CONCURRENCY})",
                f"{options.events}",
                f"{target_rate:,.0f}",
                f"{target_rate / official_rate:,.0f}x; {target_rate / ceiling_rate:.0%} of ceiling",
            ),
            (
                f"ceiling: plain urllib3, {CONCURRENCY} threads",
                f"{options.events}",
                f"{ceiling_rate:,.0f}",
                f"{ceiling_rate / official_rate:,.0f}x",
            ),
        ]
        print("## Throughput (emulator latency 50 ms)\n")
        print("| sender | beacons | beacons/s | vs. py-KISSmetrics |")
        print("|:--|--:|--:|:--|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        if options.rss_records:
            print_memory_run(directory, options.rss_records)


def print_memory_run(directory: Path, records: int) -> None:
    """The long run: peak RSS of the target process and RSS at a few points of the run."""
    with EmulatorProcess("kissmetrics", "--raw-log", "count") as emulator:
        input_path = write_input(directory / "memory.singer", records, state_every=10_000)
        seconds, samples = run_target(write_config(directory, emulator.url), input_path, sample_rss=True)
        assert delivered(emulator) == records
    samples = [sample for sample in samples if sample[1] > 0]  # an exiting process reports 0
    peak = max(rss for _, rss in samples)
    marks = [samples[int(len(samples) * share) - 1] for share in (0.1, 0.5, 1.0)]
    print(f"\n## Memory ({records:,} records, no latency, {records / seconds:,.0f} beacons/s)\n")
    print("| peak RSS | RSS at 10% | RSS at 50% | RSS at 100% |")
    print("|--:|--:|--:|--:|")
    print(f"| {peak / 2**20:.0f} MB | " + " | ".join(f"{rss / 2**20:.0f} MB" for _, rss in marks) + " |")


if __name__ == "__main__":
    main()
