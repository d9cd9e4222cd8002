"""tap-kahuna-logs: the requests each reading of the seed costs (counted requests, not timings).

Starts one Kahuna emulator (frozen at 2026-11-18T15:30Z; 3 UTC days of 3,801 in-app records each with a run of
300 records sharing one timestamp and a burst of 600 in 10:15; the last day partial), switches its readings at run
time (``/_emulator/kahuna/paging`` and ``/_emulator/kahuna/readings``) and runs the real CLI once per reading on
the ``inapp`` stream with ``page_size`` 700. Every reading a client can be exact under must emit the same records
(a stored order serves today's late-arriving records only once they arrived, so those runs are compared among
themselves); the
table counts the requests, the extra ones over the contract's reading, and the readings that stop with one line.
Prints a Markdown table.

    .venv/bin/python bench/tap_kahuna_readings.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from emulators.kahuna_readings import CONTRACT_READINGS
from emulators.testing import EmulatorProcess

TAP = str(Path(sys.executable).with_name("tap-kahuna-logs"))
NOW = "2026-11-18T15:30:00+00:00"
DATA_ARGS = (
    *("--days", "3", "--logs-per-day", "3200", "--day-size-jitter", "0", "--same-timestamp-run", "300"),
    *("--burst-minute", "10:15", "--burst-records", "600"),
)
#: (label, number_of_records reading, readings, share of cursor uses that find the cursor expired)
READINGS: list[tuple[str, str, dict[str, Any], float]] = [
    ("the contract's readings", "page", {}, 0.0),
    ("more_records left out of the last page", "page", {"last_page_more_records": "absent"}, 0.0),
    ("pages overlap by one record", "page", {"page_overlap": True}, 0.0),
    ("restarts answered from 00:00", "page", {"restart_from": "day_start"}, 0.0),
    ("records in a stored order", "page", {"order": "stored"}, 0.0),
    ("one record stored six hours late", "page", {"order": "one_late"}, 0.0),
    ("cursors expire (a fifth of uses)", "page", {}, 0.2),
    ("cursors expire, one record stored late", "page", {"order": "one_late"}, 0.2),
    ("a chain that never ends (empty pages)", "page", {"day_end": "empty_pages"}, 0.0),
    ("number_of_records caps each chain", "chain", {}, 0.0),
    ("capped, more_records left out", "chain", {"last_page_more_records": "absent"}, 0.0),
    ("capped, pages overlap by one record", "chain", {"page_overlap": True}, 0.0),
    ("capped, restarts answered from 00:00", "chain", {"restart_from": "day_start"}, 0.0),
    ("capped, records in a stored order", "chain", {"order": "stored"}, 0.0),
    ("capped, cursors expire (a fifth of uses)", "chain", {}, 0.2),
]


def run_reading(
    emulator: EmulatorProcess, work: Path, records_cap: str, readings: dict[str, Any], expire_rate: float
) -> tuple[list[str], int, int, str]:
    """Run the tap under the readings: its records (sorted), the requests it made, its exit code and stderr."""
    emulator.control("kahuna/paging", {"records_cap": records_cap, "chain_page_size": 250})
    emulator.control("kahuna/readings", {**CONTRACT_READINGS, **readings})
    emulator.control("kahuna/cursors", {"expire_rate": expire_rate, "seed": 7})
    emulator.reset()
    config = {
        "secret_key": "kahuna-demo-secret",
        "api_key": "kahuna-demo-key",
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": "2026-11-16",
        "end_date": "2026-11-18",
        "categories": ["inapp"],
        "page_size": 700,
        "max_concurrency": 2,
    }
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    result = subprocess.run([TAP, "--config", str(config_path)], capture_output=True, text=True, check=False)
    messages = (json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"type":"RECORD"'))
    records = sorted(
        json.dumps({name: value for name, value in message["record"].items() if name != "log_position"}, sort_keys=True)
        for message in messages
    )
    requests = [entry for entry in emulator.requests() if entry["path"].endswith("/api/kahunalogs")]
    return records, len(requests), result.returncode, result.stderr


def main() -> None:
    """Measure and print the table."""
    rows = []
    with EmulatorProcess("kahuna", "--now", NOW, *DATA_ARGS) as emulator, tempfile.TemporaryDirectory() as tmp:
        references: dict[str, list[str]] = {}  # per order: a stored order serves today's late records later
        for label, records_cap, readings, expire_rate in READINGS:
            records, requests, returncode, stderr = run_reading(emulator, Path(tmp), records_cap, readings, expire_rate)
            outcome = "exact" if returncode == 0 else "stops with one line"
            if returncode == 0:
                order = "stored" if readings.get("order") == "stored" else "timestamp"  # one_late: all arrived
                reference = references.setdefault(order, records)
                if records != reference:
                    short = len(reference) - len(records)
                    if short <= 0 or not set(records) <= set(reference) or "would not be read" not in stderr:
                        raise SystemExit(f"{label}: exit 0 with other records than the other readings")
                    outcome = f"{short} short, said by a WARNING (known limit)"
            rows.append((label, records_cap, len(records), requests, outcome))
    base = rows[0][3]
    print("| reading | number_of_records | records | requests | extra | outcome |")
    print("|:--|:--|--:|--:|--:|:--|")
    for label, records_cap, count, requests, outcome in rows:
        print(f"| {label} | {records_cap} | {count} | {requests} | {requests - base:+d} | {outcome} |")


if __name__ == "__main__":
    main()
