"""tap-kahuna-logs: a 90-day backfill with 50 ms latency at max_concurrency 4 vs 1, records/s without latency, and
what each reading of ``number_of_records`` costs in requests.

Run: ``.venv/bin/python bench/tap_kahuna_concurrency.py`` (a few minutes). Prints Markdown tables.
Both latency runs go against the same emulator process, side by side, so the ratio is what matters; so do the two
readings (``/_emulator/kahuna/paging`` switches the one emulator between them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from emulators.__main__ import build_parser
from emulators.kahuna_data import CATEGORIES, dataset_from_options
from emulators.testing import EmulatorProcess

NOW = "2026-11-18T15:30:00+00:00"
DAYS = 90
READINGS_DAYS = 30
READINGS_ARGS = [
    "--days",
    str(READINGS_DAYS),
    "--logs-per-day",
    "2000",
    "--burst-minute",
    "10:15",
    "--burst-records",
    "400",
]
PAGE_SIZE = 1000
TAP = str(Path(sys.executable).with_name("tap-kahuna-logs"))


@dataclass
class Measurement:
    """One tap run."""

    label: str
    seconds: float
    records: int
    requests: int

    @property
    def records_per_second(self) -> float:
        """Throughput of the whole run, process start included."""
        return self.records / self.seconds if self.seconds else 0.0


def run_tap(emulator: EmulatorProcess, label: str, days: int = DAYS, **settings: object) -> Measurement:
    """Run the real CLI over the last ``days`` days and count what it emitted."""
    today = date.fromisoformat(NOW[:10])
    config = {
        "secret_key": "kahuna-demo-secret",
        "api_key": "kahuna-demo-key",
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": (today - timedelta(days=days - 1)).isoformat(),
        "end_date": today.isoformat(),
        **settings,
    }
    emulator.reset()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config_file:
        json.dump(config, config_file)
    started = time.perf_counter()
    process = subprocess.Popen(
        [TAP, "--config", config_file.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    records = sum(1 for line in process.stdout if line.startswith('{"type":"RECORD"'))
    if process.wait() != 0:
        raise SystemExit(f"{label}: tap-kahuna-logs failed")
    seconds = time.perf_counter() - started
    Path(config_file.name).unlink()
    return Measurement(label, seconds, records, len(emulator.requests()))


def one_chain_per_day_requests() -> tuple[int, int]:
    """(requests of a reader that trusts one chain per day: ceil(records / PAGE_SIZE) per category and day,
    the category-days) for the readings data set."""
    options = build_parser().parse_args(["kahuna", "--now", NOW, *READINGS_ARGS])
    data = dataset_from_options(options, datetime.fromisoformat(NOW))
    counts = [len(data.records(category, day)) for category in CATEGORIES for day in data.days]
    return sum(max(1, -(-count // PAGE_SIZE)) for count in counts), len(counts)


def measure_readings() -> None:
    """The two readings of number_of_records side by side: requests, and time with 20 ms of latency."""
    trusting, category_days = one_chain_per_day_requests()
    with EmulatorProcess("kahuna", "--now", NOW, *READINGS_ARGS, "--latency-ms", "20") as emulator:
        run_tap(emulator, "warm-up", days=READINGS_DAYS, max_concurrency=4)
        page = run_tap(emulator, "page-size reading", days=READINGS_DAYS, max_concurrency=4, page_size=PAGE_SIZE)
        emulator.control("kahuna/paging", {"records_cap": "chain", "chain_page_size": 250})
        chain = run_tap(emulator, "capped reading (pages of 250)", days=READINGS_DAYS, max_concurrency=4)
    if page.records != chain.records:
        raise SystemExit("the two readings emitted different record counts")
    print(
        f"\n{READINGS_DAYS} days x 4 categories ({category_days} category-days, {page.records} records), "
        f"page_size {PAGE_SIZE}, 20 ms latency; one chain per day would take {trusting} requests "
        "(and lose records under the capped reading):\n"
    )
    print("| reading | records | requests | extra over one chain per day | per category-day | seconds |")
    print("|:--|--:|--:|--:|--:|--:|")
    for row in (page, chain):
        extra = row.requests - trusting
        print(
            f"| {row.label} | {row.records} | {row.requests} | {extra} | {extra / category_days:.2f} "
            f"| {row.seconds:.1f} |"
        )


def main() -> None:
    """Measure and print the tables."""
    with EmulatorProcess("kahuna", "--now", NOW, "--days", str(DAYS), "--logs-per-day", "200") as emulator:
        run_tap(emulator, "warm-up: the emulator generates and caches the 90 days", max_concurrency=4)
        emulator.set_faults(latency_ms=50.0)
        parallel = run_tap(emulator, "90 days, 50 ms latency, max_concurrency 4", max_concurrency=4)
        serial = run_tap(emulator, "90 days, 50 ms latency, max_concurrency 1", max_concurrency=1)
    with EmulatorProcess("kahuna", "--now", NOW, "--days", str(DAYS), "--logs-per-day", "2000") as emulator:
        run_tap(emulator, "warm-up", max_concurrency=4)
        throughput = run_tap(emulator, "90 days, no latency, max_concurrency 4", max_concurrency=4)
    rows = [parallel, serial, throughput]
    print("| run | records | requests | seconds | records/s |")
    print("|:----|------:|------:|------:|------:|")
    for row in rows:
        print(f"| {row.label} | {row.records} | {row.requests} | {row.seconds:.1f} | {row.records_per_second:,.0f} |")
    speedup = serial.seconds / parallel.seconds
    print(f"\nSpeed-up of max_concurrency 4 over 1 with 50 ms latency: **{speedup:.1f}x** (required: >= 3x)")
    if parallel.records != serial.records:
        raise SystemExit("max_concurrency 4 and 1 emitted different record counts")
    measure_readings()


if __name__ == "__main__":
    main()
