"""The demo volume scaled up through the real ``meltano run tap-kaon-insights target-duckdb``.

Two scenarios, each against its own Kaon emulator started at 2026-11-18T15:30Z:

- clicks: ``external_id_hits`` of 10 external IDs (default 1,000,000 rows; the emulator's clock is
  then moved a year on, so every click is visible);
- devices: ``devices`` of one full week (week 775) with 2,000,000 devices.

Each scenario runs this repository's Meltano project in isolation, its process tree sampled
(``kaon_scenarios.py``, ``sampling.py``). The DuckDB row count must equal the emulator's data exactly.
Then the tap alone runs with singer-sdk's default writer and with its msgspec writer
(``tap_writers.py``), best of ``--repeats``.

    .venv/bin/python bench/pipeline.py                                 # full volume (~6 min)
    .venv/bin/python bench/pipeline.py --clicks 20000 --devices 50000  # smoke run (~20 s)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from kaon_scenarios import (
    MELTANO,
    ROW_COUNT_QUERIES,
    Scenario,
    clicks_scenario,
    devices_scenario,
    meltano_env,
    sampled_run,
    start_emulator,
)
from sampling import MB, ProcessFigures, TreeSampler
from tap_writers import compare_writers, installed_writer, writers_table

# --- process sampling ------------------------------------------------------------------------


# --- the meltano run ---------------------------------------------------------------------------


@dataclass
class PipelineResult:
    """Figures of one ``meltano run``."""

    scenario: Scenario
    seconds: float
    rows: int
    roles: dict[str, ProcessFigures]


def run_pipeline(scenario: Scenario, work: Path) -> PipelineResult:
    """Run ``meltano run tap-kaon-insights target-duckdb`` while sampling its process tree."""
    work.mkdir()
    with start_emulator(scenario) as emulator:
        env = meltano_env(work, scenario, emulator.url)
        log_path = work / "meltano.log"
        command = [MELTANO, "run", "tap-kaon-insights", "target-duckdb"]
        process, seconds, sampler = sampled_run(
            command, env, log_path, lambda pid: TreeSampler(pid, extra={emulator.process.pid: "emulator"})
        )
    if process.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"meltano run failed ({scenario.name}), see {log_path}:\n{tail}")
    rows = warehouse_rows(work / "warehouse.duckdb", scenario.stream)
    if rows != scenario.expected_rows:
        raise SystemExit(f"{scenario.name}: DuckDB holds {rows} rows of {scenario.stream}, expected exactly "
                         f"{scenario.expected_rows} (log: {log_path})")  # fmt: skip
    return PipelineResult(scenario, seconds, rows, sampler.by_role())


def warehouse_rows(path: Path, stream: str) -> int:
    """Rows of the stream's table (schema ``kaon``, the tap's load_schema) in the DuckDB file."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(ROW_COUNT_QUERIES[stream]).fetchone()[0]


# --- the tap alone, default writer vs msgspec writer ----------------------------------------------


# --- report --------------------------------------------------------------------------------------


def pipeline_table(results: list[PipelineResult]) -> str:
    """Markdown: wall time, throughput, per-process peak RSS and CPU, tap vs target share."""
    lines = [
        "| scenario | rows in DuckDB | wall s | records/s | peak RSS MB meltano / tap / target / emulator "
        "| CPU s meltano / tap / target / emulator | tap : target CPU |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for result in results:
        roles = result.roles
        order = ("meltano", "tap-kaon-insights", "target-duckdb", "emulator")
        rss = " / ".join(f"{roles[name].peak_rss / MB:.0f}" if name in roles else "-" for name in order)
        cpu = " / ".join(f"{roles[name].cpu_seconds:.1f}" if name in roles else "-" for name in order)
        tap, target = roles["tap-kaon-insights"].cpu_seconds, roles["target-duckdb"].cpu_seconds
        share = f"{100 * tap / (tap + target):.0f}% : {100 * target / (tap + target):.0f}%"
        lines.append(
            f"| {result.scenario.name} | {result.rows:,} | {result.seconds:.1f} | "
            f"{result.rows / result.seconds:,.0f} | {rss} | {cpu} | {share} |"
        )
    return "\n".join(lines)


def lifetimes_table(results: list[PipelineResult]) -> str:
    """Markdown: how long each process of the run lived."""
    lines = ["| scenario | process | lived s | CPU s | peak RSS MB |", "|---|---|---:|---:|---:|"]
    for result in results:
        for name, figures in sorted(result.roles.items()):
            lived = figures.last_seen - figures.first_seen
            lines.append(
                f"| {result.scenario.name} | {name} | {lived:.1f} | {figures.cpu_seconds:.1f} | "
                f"{figures.peak_rss / MB:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Run both scenarios through meltano, then the writer comparison; print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=1_000_000, help="clickstream rows (multiple of 10)")
    parser.add_argument("--devices", type=int, default=2_000_000, help="devices in the one week")
    parser.add_argument("--repeats", type=int, default=2, help="tap-alone runs per writer (best is reported)")
    parser.add_argument("--skip-writers", action="store_true", help="only the meltano runs")
    options = parser.parse_args()
    scenarios = [clicks_scenario(options.clicks), devices_scenario(options.devices)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        results = [run_pipeline(scenario, Path(tmp) / f"run-{n}") for n, scenario in enumerate(scenarios)]
        comparisons = {}
        if not options.skip_writers:
            comparisons = {
                scenario.name: compare_writers(scenario, Path(tmp) / f"tap-{n}", options.repeats)
                for n, scenario in enumerate(scenarios)
            }
    print(f"## meltano run tap-kaon-insights target-duckdb (tap writer: {installed_writer()})\n")
    print(pipeline_table(results))
    print("\n### Processes\n")
    print(lifetimes_table(results))
    if comparisons:
        print("\n## The tap alone: default writer vs msgspec writer\n")
        print(writers_table(comparisons))
    print(f"\nTotal bench time: {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
