"""The tap alone, singer-sdk's default message writer against its msgspec writer (``bench/pipeline.py`` runs it).

Each writer's run is the tap's CLI with output to a file, alternating, best of ``repeats``; the records and the
final state of both are compared by digest. ``python bench/tap_writers.py tap default|msgspec <tap args>`` runs
the tap with one writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kaon_scenarios import (
    Scenario,
    start_emulator,
)
from sampling import MB, SAMPLE_SECONDS, TreeSampler

WRITERS = ("default", "msgspec")


def tap_with_writer(writer: str, argv: list[str]) -> None:
    """Run tap-kaon-insights' CLI with singer-sdk's default or msgspec message writer."""
    from singer_sdk.io_base import SingerWriter

    from tap_kaon_insights.tap import TapKaonInsights

    if writer == "msgspec":
        from singer_sdk.contrib.msgspec import MsgSpecWriter

        writer_class: type = MsgSpecWriter
    else:
        writer_class = SingerWriter

    class BenchTap(TapKaonInsights):
        message_writer_class = writer_class

    BenchTap.cli(args=argv, prog_name="tap-kaon-insights")


@dataclass
class TapResult:
    """One tap-alone run: seconds, CPU seconds, peak RSS and a digest of what it emitted."""

    writer: str
    seconds: float
    cpu_seconds: float
    peak_rss: int
    records: int
    digest: str
    output_bytes: int


def tap_config(work: Path, scenario: Scenario, emulator_url: str) -> tuple[Path, Path]:
    """A config file and a catalog selecting only the scenario's stream."""
    config = {"api_key": "kaon-demo-key", "client": "demo-client", "api_url": f"{emulator_url}/api"}
    config_path = work / "tap-config.json"
    config_path.write_text(json.dumps({**config, **scenario.settings}))
    tap = [sys.executable, __file__, "tap", "default", "--config", str(config_path)]
    catalog = json.loads(subprocess.run([*tap, "--discover"], capture_output=True, check=True).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == scenario.stream
    catalog_path = work / "tap-catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    return config_path, catalog_path


def run_tap(writer: str, config_path: Path, catalog_path: Path, output: Path) -> TapResult:
    """Run the tap alone once, its output into a file."""
    command = [sys.executable, __file__, "tap", writer, "--config", str(config_path), "--catalog", str(catalog_path)]
    with output.open("wb") as stdout:
        started = time.monotonic()
        quiet = {**os.environ, "LOGLEVEL": "WARNING"}
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, env=quiet)
        sampler = TreeSampler(process.pid, root_role="tap")
        while process.poll() is None:
            sampler.sample()
            time.sleep(SAMPLE_SECONDS)
        seconds = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"the tap with the {writer} writer failed (exit {process.returncode})")
    figures = sampler.by_role()["tap"]
    size = output.stat().st_size
    records, digest = record_digest(output)
    return TapResult(writer, seconds, figures.cpu_seconds, figures.peak_rss, records, digest, size)


def record_digest(output: Path) -> tuple[int, str]:
    """RECORD count and a digest of the records and the last STATE, key order and escaping normalised."""
    import msgspec

    digest, records, last_state = hashlib.sha256(), 0, None
    with output.open("rb") as lines:
        for line in lines:
            message = msgspec.json.decode(line)
            if message["type"] == "RECORD":
                records += 1
                digest.update(msgspec.json.encode([message["stream"], message["record"]], order="sorted") + b"\n")
            elif message["type"] == "STATE":
                last_state = message["value"]
    digest.update(msgspec.json.encode(last_state, order="sorted"))
    output.unlink()
    return records, digest.hexdigest()


def compare_writers(scenario: Scenario, work: Path, repeats: int) -> list[TapResult]:
    """The tap alone with each writer, alternating, ``repeats`` times each."""
    work.mkdir()
    results = []
    with start_emulator(scenario) as emulator:
        config_path, catalog_path = tap_config(work, scenario, emulator.url)
        for _ in range(repeats):
            for writer in WRITERS:
                results.append(run_tap(writer, config_path, catalog_path, work / f"{writer}.jsonl"))
    return results


def writers_table(comparisons: dict[str, list[TapResult]]) -> str:
    """Markdown: the tap alone per writer (best of the repeats) and the msgspec/default ratio."""
    lines = [
        "| scenario | writer | records | best wall s | CPU s | records/s | peak RSS MB | output MB | same records |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for name, results in comparisons.items():
        best = {writer: min((r for r in results if r.writer == writer), key=lambda r: r.seconds) for writer in WRITERS}
        digests = {r.digest for r in results}
        for writer in WRITERS:
            result = best[writer]
            lines.append(
                f"| {name} | {writer} | {result.records:,} | {result.seconds:.1f} | {result.cpu_seconds:.1f} | "
                f"{result.records / result.seconds:,.0f} | {result.peak_rss / MB:.0f} | "
                f"{result.output_bytes / MB:.0f} | {'yes' if len(digests) == 1 else 'NO'} |"
            )
        ratio = best["default"].seconds / best["msgspec"].seconds
        cpu_ratio = best["default"].cpu_seconds / best["msgspec"].cpu_seconds
        lines.append(f"| {name} | **default / msgspec** | | **{ratio:.2f}x** | **{cpu_ratio:.2f}x** | | | | |")
    return "\n".join(lines)


def installed_writer() -> str:
    """The message writer class the tap uses in the meltano runs."""
    from tap_kaon_insights.tap import TapKaonInsights

    return TapKaonInsights.message_writer_class.__name__


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "tap":
        tap_with_writer(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit("usage: tap_writers.py tap default|msgspec <tap-kaon-insights arguments>")
