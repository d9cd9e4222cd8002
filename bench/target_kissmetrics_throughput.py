"""target-kissmetrics throughput, CPU per beacon and memory, side by side in one run against one emulator.

1. Senders at ``--latency-ms 50`` (default 512 in flight), one emulator, in turns (each twice, best kept):
   - the target's real CLI (Singer messages piped in, a STATE every 1,000 records);
   - the ceiling: a bare aiohttp sender with the same number in flight, pre-built URLs and the target's session
     options (keep-alive pool, no cookie jar), nothing else: no parsing, no validation, no retries;
   - a second reference: a threaded urllib3 sender (one thread per beacon in flight, pre-built URLs);
   - py-KISSmetrics 1.1.0 in its normal loop (one synchronous call per event, fewer events: it is slow).
   Reported: beacons/s over the whole run, the CLI's *steady* beacons/s (between its first and its last STATE
   line: no start-up, no shut-down), and client CPU seconds per 1,000 beacons (user + system of the sending
   process; the CLI's includes its start-up, about 0.4 s, which is also reported alone).
2. The target against the bare aiohttp sender at 0 ms and 150 ms latency.
3. ``max_concurrency`` sweep of the target at 50 ms and 150 ms, levels in turns, best of ``--repeats`` (how the
   default was chosen).
4. Memory: peak RSS of the target process over a long run (default 1,000,000 records, no latency,
   ``--raw-log count``), at the default ``max_concurrency``.

Run: ``.venv/bin/python bench/target_kissmetrics_throughput.py [--events 20000] [--rss-records 1000000]``
(``--skip-sweep``, ``--rss-records 0`` shorten it). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psutil
import urllib3
import yarl
from KISSmetrics import Client as OfficialClient
from plays import SCHEMA, play, singer_lines

from emulators.testing import EmulatorProcess
from target_kissmetrics.beacons import build_beacons
from target_kissmetrics.settings import KissmetricsSettings
from target_kissmetrics.stream_mappings import mappings_for_stream

API_KEY = "km-demo-key"
TARGET_CLI = str(Path(sys.executable).with_name("target-kissmetrics"))
DEFAULT_CONCURRENCY = KissmetricsSettings.from_config({"api_key": API_KEY}).max_concurrency


@dataclass
class Run:
    """One sender's run: beacons, wall seconds, CPU seconds of the sending process."""

    sender: str
    beacons: int
    seconds: float
    cpu_seconds: float
    steady_rate: float | None = None  # the CLI's rate from its first to its last STATE line

    @property
    def rate(self) -> float:
        return self.beacons / self.seconds

    @property
    def rate_after_start_up(self) -> float:
        return self.rate if self.steady_rate is None else self.steady_rate

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / self.beacons * 1000


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_input(path: Path, count: int, state_every: int) -> Path:
    with path.open("w") as out:
        out.writelines(singer_lines(count, state_every))
    return path


def write_config(directory: Path, url: str, concurrency: int) -> Path:
    path = directory / f"config-{concurrency}.json"
    config = {
        "api_key": API_KEY,
        "tracking_url": url,
        "max_concurrency": concurrency,
        "dead_letter_path": str(directory / "dead.jsonl"),
    }
    path.write_text(json.dumps(config))
    return path


def run_target(
    config: Path, input_path: Path, beacons: int, label: str, sample_rss: bool = False
) -> tuple[Run, list[tuple[float, int]]]:
    """The CLI with ``input_path`` on stdin: the run (CPU from the reaped child) and [(elapsed, rss bytes)]."""
    samples: list[tuple[float, int]] = []
    states: list[tuple[float, int]] = []
    cpu_before = children_cpu()
    started = time.perf_counter()
    with input_path.open() as stdin:
        process = subprocess.Popen(
            [TARGET_CLI, "--config", str(config)], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stderr_chunks: list[bytes] = []
        assert process.stderr is not None
        assert process.stdout is not None
        stderr, stdout = process.stderr, process.stdout
        reader = threading.Thread(target=lambda: stderr_chunks.append(stderr.read()), daemon=True)
        reader.start()

        def read_states() -> None:
            for line in stdout:
                states.append((time.perf_counter(), json.loads(line)["sent"]))

        state_reader = threading.Thread(target=read_states, daemon=True)
        state_reader.start()
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            if sample_rss:
                try:
                    samples.append((time.perf_counter() - started, watched.memory_info().rss))
                except psutil.NoSuchProcess:
                    break
            time.sleep(0.2 if sample_rss else 0.02)
        reader.join()
        state_reader.join()
    ended = time.perf_counter()
    if process.returncode != 0:
        raise SystemExit(f"target failed: {b''.join(stderr_chunks).decode()[-2000:]}")
    steady = None  # between the first and the last STATE line: no start-up, no shut-down
    if len(states) >= 2 and states[-1][1] > states[0][1] and states[-1][0] > states[0][0]:
        steady = (states[-1][1] - states[0][1]) / (states[-1][0] - states[0][0])
    return Run(label, beacons, ended - started, children_cpu() - cpu_before, steady), samples


def prebuilt_urls(url: str, count: int) -> list[str]:
    mappings = mappings_for_stream("plays", None, list(SCHEMA["schema"]["properties"]))
    return [build_beacons(play(n), mappings)[0].url(url, API_KEY) for n in range(count)]


def run_bare_aiohttp(urls: list[str], in_flight: int) -> Run:
    """The ceiling: ``in_flight`` coroutines over one session, pre-built URLs, nothing else."""
    targets = [yarl.URL(url, encoded=True) for url in urls]

    async def send_all() -> None:
        connector = aiohttp.TCPConnector(limit=in_flight, limit_per_host=0)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
        ) as session:
            pending = iter(targets)

            async def worker() -> None:
                for target in pending:
                    async with session.get(target) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"HTTP {response.status}")

            await asyncio.gather(*(worker() for _ in range(in_flight)))

    cpu_before, started = own_cpu(), time.perf_counter()
    asyncio.run(send_all())
    return Run(
        f"bare aiohttp sender, {in_flight} in flight", len(urls), time.perf_counter() - started, own_cpu() - cpu_before
    )


def run_threaded_urllib3(urls: list[str], in_flight: int) -> Run:
    """The second reference: ``in_flight`` threads sharing one urllib3 keep-alive pool, pre-built URLs."""
    pool = urllib3.PoolManager(maxsize=in_flight, block=True, retries=False)

    def send(beacon_url: str) -> None:
        response = pool.request("GET", beacon_url)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")

    cpu_before, started = own_cpu(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as executor:
        for _ in executor.map(send, urls):
            pass
    elapsed = time.perf_counter() - started
    pool.clear()
    return Run(f"threaded urllib3 sender, {in_flight} threads", len(urls), elapsed, own_cpu() - cpu_before)


def run_official_client(url: str, count: int) -> Run:
    """py-KISSmetrics in its normal loop: one synchronous record() per event."""
    client = OfficialClient(API_KEY, trk_host=urlsplit(url).netloc, trk_scheme="http")
    cpu_before, started = own_cpu(), time.perf_counter()
    for n in range(count):
        row = play(n)
        client.record(row["person"], row["event"], {"n": row["n"], "plan": row["plan"]}, timestamp=row["timestamp"])
    return Run(
        "py-KISSmetrics 1.1.0, one sync call per event", count, time.perf_counter() - started, own_cpu() - cpu_before
    )


def delivered(emulator: EmulatorProcess) -> int:
    return emulator.control("stats")["raw"]["total"]


def best(runs: Iterable[Run]) -> Run:
    """The fastest of repeated runs (the machine is shared: the slower ones met more contention)."""
    return max(runs, key=lambda run: run.rate)


def measured(emulator: EmulatorProcess, expected: int, sender: Callable[[], Run]) -> Run:
    """One run, checked: the emulator got exactly the beacons sent; then its counters are reset."""
    emulator.reset()
    run = sender()
    got = delivered(emulator)
    assert got == expected, f"{run.sender}: the emulator got {got} beacons, not {expected}"
    emulator.reset()
    return run


def target_vs_bare(
    directory: Path, latency_ms: int, events: int, in_flight: int, repeats: int, references: bool, official: int
) -> list[Run]:
    """Part 1 (with the references) or 2: the target and the bare sender at one latency, in turns."""
    runs: dict[str, list[Run]] = {}
    with EmulatorProcess("kissmetrics", "--latency-ms", str(latency_ms), "--raw-log", "count") as emulator:
        input_path = write_input(directory / f"events-{events}.singer", events, state_every=1000)
        config = write_config(directory, emulator.url, in_flight)
        urls = prebuilt_urls(emulator.url, events)
        label = f"target-kissmetrics CLI, max_concurrency {in_flight}"
        for _ in range(repeats):
            runs.setdefault("target", []).append(
                measured(emulator, events, lambda: run_target(config, input_path, events, label)[0])
            )
            runs.setdefault("bare", []).append(measured(emulator, events, lambda: run_bare_aiohttp(urls, in_flight)))
            if references:
                runs.setdefault("threads", []).append(
                    measured(emulator, events, lambda: run_threaded_urllib3(urls, in_flight))
                )
        if references and official:
            runs["official"] = [measured(emulator, official, lambda: run_official_client(emulator.url, official))]
    return [best(group) for group in runs.values()]


def print_runs(title: str, runs: list[Run]) -> None:
    bare = next(run for run in runs if run.sender.startswith("bare"))
    print(f"\n## {title} (load average {os.getloadavg()[0]:.1f} after)\n")
    print(
        "| sender | beacons | beacons/s | steady beacons/s | CPU s per 1,000 beacons "
        "| beacons/s vs bare (steady) | CPU per beacon vs bare |"
    )
    print("|:--|--:|--:|--:|--:|--:|--:|")
    for run in runs:
        print(
            f"| {run.sender} | {run.beacons:,} | {run.rate:,.0f} | {run.rate_after_start_up:,.0f} "
            f"| {run.cpu_per_1000:.3f} | {run.rate / bare.rate:.0%} ({run.rate_after_start_up / bare.rate:.0%}) "
            f"| {run.cpu_per_1000 / bare.cpu_per_1000:.2f}x |"
        )


def start_up_cpu(directory: Path) -> float:
    """CPU seconds of the CLI with no input (imports, settings, the event loop thread)."""
    empty = directory / "empty.singer"
    empty.write_text("")
    config = write_config(directory, "http://127.0.0.1:9", DEFAULT_CONCURRENCY)
    return run_target(config, empty, 1, "start-up")[0].cpu_seconds


def concurrency_sweep(
    directory: Path, events: int, latencies: tuple[int, ...], levels: tuple[int, ...], repeats: int
) -> None:
    """Part 3: the target's beacons/s and CPU per beacon by max_concurrency (best of ``repeats``)."""
    print(f"\n## max_concurrency sweep (target CLI, load average {os.getloadavg()[0]:.1f} before)\n")
    print(
        "| latency | max_concurrency | beacons/s | steady beacons/s | CPU s per 1,000 beacons "
        "| ideal (in flight / latency) |"
    )
    print("|--:|--:|--:|--:|--:|--:|")
    input_path = write_input(directory / f"events-{events}.singer", events, state_every=1000)
    for latency_ms in latencies:
        with EmulatorProcess("kissmetrics", "--latency-ms", str(latency_ms), "--raw-log", "count") as emulator:
            runs: dict[int, list[Run]] = {}
            for _ in range(repeats):  # the levels in turns, so a burst of load elsewhere hits them all alike
                for level in levels:
                    config = write_config(directory, emulator.url, level)
                    runs.setdefault(level, []).append(
                        measured(
                            emulator,
                            events,
                            lambda config=config, level=level: run_target(config, input_path, events, f"{level}")[0],
                        )
                    )
            for level in levels:
                run = best(runs[level])
                print(
                    f"| {latency_ms} ms | {level} | {run.rate:,.0f} | {run.rate_after_start_up:,.0f} "
                    f"| {run.cpu_per_1000:.3f} "
                    f"| {level / (latency_ms / 1000):,.0f} |"
                )


def print_memory_run(directory: Path, records: int) -> None:
    """Part 4: peak RSS of the target process and RSS at a few points of the run."""
    with EmulatorProcess("kissmetrics", "--raw-log", "count") as emulator:
        input_path = write_input(directory / "memory.singer", records, state_every=10_000)
        config = write_config(directory, emulator.url, DEFAULT_CONCURRENCY)
        run, samples = run_target(config, input_path, records, "memory", sample_rss=True)
        assert delivered(emulator) == records
    samples = [sample for sample in samples if sample[1] > 0]  # an exiting process reports 0
    peak = max(rss for _, rss in samples)
    marks = [samples[int(len(samples) * share) - 1] for share in (0.1, 0.5, 1.0)]
    print(
        f"\n## Memory ({records:,} records, no latency, max_concurrency {DEFAULT_CONCURRENCY}, "
        f"{run.rate:,.0f} beacons/s, {run.cpu_per_1000:.3f} CPU s per 1,000)\n"
    )
    print("| peak RSS | RSS at 10% | RSS at 50% | RSS at 100% |")
    print("|--:|--:|--:|--:|")
    print(f"| {peak / 2**20:.0f} MB | " + " | ".join(f"{rss / 2**20:.0f} MB" for _, rss in marks) + " |")


def main() -> None:
    """Run every part and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000, help="beacons per run of the target and the senders")
    parser.add_argument("--in-flight", type=int, default=512, help="max_concurrency / in-flight count of part 1")
    parser.add_argument("--repeats", type=int, default=2, help="runs per sender and latency (best kept)")
    parser.add_argument("--official-events", type=int, default=200, help="events for py-KISSmetrics")
    parser.add_argument("--skip-sweep", action="store_true", help="leave out the max_concurrency sweep")
    parser.add_argument("--rss-records", type=int, default=1_000_000, help="records of the memory run (0: skip)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        print(f"CLI start-up alone: {start_up_cpu(directory):.2f} CPU s (part of each CLI row's CPU)")
        part1 = target_vs_bare(
            directory, 50, options.events, options.in_flight, options.repeats, True, options.official_events
        )
        print_runs(f"Throughput and CPU, emulator latency 50 ms, {options.in_flight} in flight", part1)
        for latency_ms in (0, 150):
            runs = target_vs_bare(directory, latency_ms, options.events, options.in_flight, options.repeats, False, 0)
            print_runs(f"Emulator latency {latency_ms} ms, {options.in_flight} in flight", runs)
        if not options.skip_sweep:
            concurrency_sweep(directory, options.events, (50, 150), (64, 128, 256, 512, 1024), options.repeats)
        if options.rss_records:
            print_memory_run(directory, options.rss_records)


if __name__ == "__main__":
    main()
