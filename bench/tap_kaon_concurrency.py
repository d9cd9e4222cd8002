"""tap-kaon-insights: backfill from week 417 with max_concurrency 8 vs 1, side by side in one run.

Runs the real CLI against one Kaon emulator with 50 ms latency per request and small weeks, so
the time is the requests' waiting, which bounded concurrency overlaps. Prints a Markdown table.

    .venv/bin/python bench/tap_kaon_concurrency.py [--latency-ms 50] [--streams engagement,hits,...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulators.testing import EmulatorProcess

TAP = str(Path(sys.executable).with_name("tap-kaon-insights"))
NOW = "2026-11-18T15:30:00+00:00"
WEEKLY = ("engagement", "devices", "countries", "languages", "hits")


def catalog(work: Path, config_path: Path, streams: list[str]) -> Path:
    """The discovered catalog with only ``streams`` selected."""
    discovered = json.loads(
        subprocess.run([TAP, "--config", str(config_path), "--discover"], capture_output=True, check=True).stdout
    )
    for entry in discovered["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    path = work / "catalog.json"
    path.write_text(json.dumps(discovered))
    return path


def run(work: Path, config: dict, streams: list[str], name: str) -> tuple[float, int, str]:
    """Run the tap once; return seconds, RECORD count and a digest of its output."""
    config_path = work / f"{name}.json"
    config_path.write_text(json.dumps(config))
    catalog_path = catalog(work, config_path, streams)
    started = time.perf_counter()
    result = subprocess.run(
        [TAP, "--config", str(config_path), "--catalog", str(catalog_path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LOGLEVEL": "WARNING"},
    )
    seconds = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if '"type":"RECORD"' in line or '"type":"STATE"' in line]
    records = sum('"type":"RECORD"' in line for line in lines)
    messages = [json.loads(line) for line in lines]
    digest = repr([message.get("record", message.get("value")) for message in messages])
    return seconds, records, digest


def devices_rss(work: Path, devices: int) -> tuple[float, int]:
    """Peak RSS (MB) of a devices sync of one week with ``devices`` devices, and the rows emitted."""
    with EmulatorProcess(
        "kaon", "--now", NOW, "--weeks-before-now", "1", "--devices-per-week", str(devices), "--paths", "2"
    ) as emulator:
        config = {"api_key": "kaon-demo-key", "client": "demo-client", "api_url": f"{emulator.url}/api"}
        config.update(start_week=775, end_week=775)  # a full week (the current one is still filling)
        config_path = work / "devices.json"
        config_path.write_text(json.dumps(config))
        catalog_path = catalog(work, config_path, ["devices"])
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = subprocess.run(
            [TAP, "--config", str(config_path), "--catalog", str(catalog_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rows = result.stdout.count(b'"type":"RECORD"')
    return (peak if peak > before else before) / 1024, rows


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--streams", default=",".join(WEEKLY))
    parser.add_argument("--devices", type=int, default=2_000_000, help="devices in the one-week RSS probe (0 skips)")
    options = parser.parse_args()
    streams = options.streams.split(",")
    args = ["--now", NOW, "--first-week", "417", "--latency-ms", str(options.latency_ms)]
    args += ["--devices-per-week", "3", "--paths", "3", "--external-ids", "1", "--clicks-per-id", "10"]
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess("kaon", *args) as emulator:
        work = Path(tmp)
        base = {
            "api_key": "kaon-demo-key",
            "client": "demo-client",
            "api_url": f"{emulator.url}/api",
            "start_week": 417,
        }
        weeks = 776 - 417 + 1
        rows = []
        for concurrency in (1, 8):
            config = {**base, "max_concurrency": concurrency}
            seconds, records, digest = run(work, config, streams, f"c{concurrency}")
            rows.append((concurrency, seconds, records, digest))
        serial, parallel = rows[0][1], rows[1][1]
        print(f"Backfill of weeks 417-776 ({weeks} weeks) of {', '.join(streams)}, {options.latency_ms} ms latency\n")
        print("| max_concurrency | seconds | records | requests/s | same output as 1 |")
        print("|---:|---:|---:|---:|:---:|")
        for concurrency, seconds, records, digest in rows:
            same = "yes" if digest == rows[0][3] else "NO"
            rate = weeks * len(streams) / seconds
            print(f"| {concurrency} | {seconds:.1f} | {records} | {rate:.0f} | {same} |")
        print(f"\nSpeed-up 8 vs 1: **{serial / parallel:.1f}x**")
        if options.devices:
            peak, device_rows = devices_rss(work, options.devices)
            print(f"\nDevices, one week of {options.devices:,} devices: {device_rows:,} rows, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
