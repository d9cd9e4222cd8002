"""tap-kahuna-logs: a 90-day backfill with 50 ms latency at max_concurrency 4 vs 1, and records/s without latency.

Run: ``.venv/bin/python bench/tap_kahuna_concurrency.py`` (a couple of minutes). Prints a Markdown table.
Both latency runs go against the same emulator process, side by side, so the ratio is what matters.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from emulators.testing import EmulatorProcess

NOW = "2026-11-18T15:30:00+00:00"
DAYS = 90
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


def run_tap(emulator: EmulatorProcess, label: str, **settings: object) -> Measurement:
    """Run the real CLI over the last DAYS days and count what it emitted."""
    today = date.fromisoformat(NOW[:10])
    config = {
        "secret_key": "kahuna-demo-secret",
        "api_key": "kahuna-demo-key",
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": (today - timedelta(days=DAYS - 1)).isoformat(),
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


def main() -> None:
    """Measure and print the table."""
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


if __name__ == "__main__":
    main()
