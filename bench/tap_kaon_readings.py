"""tap-kaon-insights: the requests each reading of the vendor document costs (counted requests, not timings).

Starts one Kaon emulator (frozen at 2026-11-18T15:30Z, 13 listed weeks, hits from 20 weeks before them, two
external IDs of 2,700 clicks each with a run of 300 clicks in one second), switches its readings at run time
(``/_emulator/kaon/readings``) and runs the real CLI once per reading with the default settings (``limit`` 1000)
plus ``start_week`` 0, four paths and both external IDs. Every reading must emit the same records; the table
counts the requests per endpoint and the extra ones over the contract's reading. Prints a Markdown table.

    .venv/bin/python bench/tap_kaon_readings.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from emulators.testing import EmulatorProcess

TAP = str(Path(sys.executable).with_name("tap-kaon-insights"))
NOW = "2026-11-18T15:30:00+00:00"
DATA_ARGS = (
    *("--weeks-before-now", "12", "--devices-per-week", "40", "--paths", "12"),
    *("--external-ids", "2", "--clicks-per-id", "2700", "--same-second-run", "300"),
)
STREAMS = ("weeks", "engagement", "hits", "path_hits", "external_id_hits")
PATHS = ["tours/Main%20Lobby", "Caf%C3%A9%20Men%C3%BC/Gr%C3%B6%C3%9Fe", "products/shoes%20%26%20socks", "home"]
CONTRACT = {"extid_cap": None, "extid_start": "inclusive", "extid_param": "id", "weeks_list": "with_filling"}
READINGS: list[tuple[str, dict[str, Any]]] = [
    ("the contract's readings", {}),
    ("extid silently capped at 500", {"extid_cap": 500}),
    ("extid start exclusive", {"extid_start": "exclusive"}),
    ("extid capped at 500 and exclusive", {"extid_cap": 500, "extid_start": "exclusive"}),
    ("extid parameter external_id", {"extid_param": "external_id"}),
    ("weeks leaves out the filling week", {"weeks_list": "complete_only"}),
    ("hits?path=P knows decoded paths", {"path_form": "decoded"}),
    (
        "all of them at once",
        {"extid_cap": 500, "extid_start": "exclusive", "extid_param": "external_id", "weeks_list": "complete_only"}
        | {"path_form": "decoded"},
    ),
]


def selected_catalog(work: Path, config_path: Path) -> Path:
    """The discovered catalog with only STREAMS selected."""
    discovered = json.loads(
        subprocess.run([TAP, "--config", str(config_path), "--discover"], capture_output=True, check=True).stdout
    )
    for entry in discovered["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in STREAMS
    path = work / "catalog.json"
    path.write_text(json.dumps(discovered))
    return path


def call_kind(entry: dict[str, Any]) -> str:
    """The kind of one logged request: its endpoint, hits split by what it asks."""
    endpoint = entry["path"].rsplit("/", 1)[-1]
    if endpoint != "hits":
        return endpoint
    query = entry["query"]
    if "path" in query:
        return "hits?path"
    return "hits?week" if "week" in query else "hits (current week)"


def run_reading(emulator: EmulatorProcess, work: Path, readings: dict[str, Any]) -> tuple[list[str], Counter[str]]:
    """Run the tap under ``readings``: its RECORD lines and the requests it made, by kind."""
    emulator.control("kaon/readings", {**CONTRACT, "path_form": "as_listed", **readings})
    emulator.reset()
    config = {
        "api_key": "kaon-demo-key",
        "client": "demo-client",
        "api_url": f"{emulator.url}/api",
        "start_week": 0,
        "paths": PATHS,
        "external_ids": ["EXT-0000", "user 42+test@example.com"],
    }
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    result = subprocess.run(
        [TAP, "--config", str(config_path), "--catalog", str(selected_catalog(work, config_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{readings}: tap-kaon-insights failed: {result.stderr[-500:]}")
    messages = (json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"type":"RECORD"'))
    records = sorted(json.dumps([message["stream"], message["record"]], sort_keys=True) for message in messages)
    return records, Counter(call_kind(entry) for entry in emulator.requests())


def main() -> None:
    """Measure and print the table."""
    kinds = ["weeks", "hits (current week)", "hits?week", "engagement", "hits?path", "extid"]
    rows = []
    with EmulatorProcess("kaon", "--now", NOW, *DATA_ARGS) as emulator, tempfile.TemporaryDirectory() as tmp:
        reference: list[str] | None = None
        for label, readings in READINGS:
            records, calls = run_reading(emulator, Path(tmp), readings)
            if reference is None:
                reference = records
            elif records != reference:
                raise SystemExit(f"{label}: different records than under the contract's readings")
            rows.append((label, len(records), calls))
    base = sum(rows[0][2].values())
    print("| reading | records | " + " | ".join(kinds) + " | requests | extra |")
    print("|:--|--:|" + "--:|" * len(kinds) + "--:|--:|")
    for label, count, calls in rows:
        total = sum(calls.values())
        cells = " | ".join(str(calls.get(kind, 0)) for kind in kinds)
        print(f"| {label} | {count} | {cells} | {total} | {total - base:+d} |")


if __name__ == "__main__":
    main()
