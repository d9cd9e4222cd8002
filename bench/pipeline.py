"""The demo volume scaled up through the real ``meltano run tap-kaon-insights target-duckdb``.

Two scenarios, each against its own Kaon emulator started at 2026-11-18T15:30Z:

- clicks: ``external_id_hits`` of 10 external IDs (default 1,000,000 rows; the emulator's clock is
  then moved a year on, so every click is visible);
- devices: ``devices`` of one full week (week 775) with 2,000,000 devices.

Each scenario runs this repository's Meltano project (``dev`` environment) in isolation: its own
state directory, DuckDB file and ``.meltano`` run directory (installed plugins linked in), settings
and stream selection from environment variables. The process tree is sampled every 0.2 s: peak RSS
is the kernel's high-water mark (VmHWM) of each process, CPU seconds the last sample before it
exited. The DuckDB row count must equal the emulator's data exactly. Then the tap alone (the CLI,
output to a file) runs with singer-sdk's default writer and with its msgspec writer, alternating,
best of ``--repeats``; their records and final state are compared by digest.

    .venv/bin/python bench/pipeline.py                                 # full volume (~6 min)
    .venv/bin/python bench/pipeline.py --clicks 20000 --devices 50000  # smoke run (~20 s)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psutil

from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MELTANO = str(VENV_BIN / "meltano")
NOW = "2026-11-18T15:30:00+00:00"
#: Clicks run up to the end of the week after NOW; the clock moves past that so every click is visible.
CLICKS_VISIBLE_AT = datetime.fromisoformat(NOW) + timedelta(days=365)
DEVICES_WEEK = 775  # the last full week before NOW's week 776 (which is still filling)
EXTERNAL_IDS = 10
SAMPLE_SECONDS = 0.2
RUN_TIMEOUT_SECONDS = 900
WRITERS = ("default", "msgspec")
MB = 1024 * 1024
ROW_COUNT_QUERIES = {
    "external_id_hits": "SELECT count(*) FROM kaon.external_id_hits",
    "devices": "SELECT count(*) FROM kaon.devices",
}


@dataclass
class Scenario:
    """One data set: emulator knobs, tap settings, the stream and the rows expected in DuckDB."""

    name: str
    stream: str
    emulator_args: list[str]
    settings: dict[str, Any]
    expected_rows: int
    visible_at: datetime | None = None


def clicks_scenario(total: int) -> Scenario:
    """``total`` clickstream rows over 10 external IDs (``total`` must be a multiple of 10)."""
    if total <= 0 or total % EXTERNAL_IDS:
        raise SystemExit(f"--clicks must be a positive multiple of {EXTERNAL_IDS}, not {total}")
    per_id = total // EXTERNAL_IDS
    dataset = KaonDataset(now=datetime.fromisoformat(NOW), external_ids=EXTERNAL_IDS, clicks_per_id=per_id)
    visible = dataset.at(CLICKS_VISIBLE_AT)
    ids = visible.external_id_names
    expected = sum(len(visible.clickstream(external_id)) for external_id in ids)
    return Scenario(
        name=f"clicks ({total:,} rows)",
        stream="external_id_hits",
        emulator_args=["--external-ids", str(EXTERNAL_IDS), "--clicks-per-id", str(per_id)],
        settings={"external_ids": ids, "start_week": DEVICES_WEEK, "end_week": DEVICES_WEEK},
        expected_rows=expected,
        visible_at=CLICKS_VISIBLE_AT,
    )


def devices_scenario(devices: int) -> Scenario:
    """One full week with ``devices`` devices."""
    dataset = KaonDataset(now=datetime.fromisoformat(NOW), weeks_before_now=1, devices_per_week=devices)
    return Scenario(
        name=f"devices ({devices:,} in one week)",
        stream="devices",
        emulator_args=["--weeks-before-now", "1", "--devices-per-week", str(devices), "--paths", "2"],
        settings={"external_ids": [], "start_week": DEVICES_WEEK, "end_week": DEVICES_WEEK},
        expected_rows=dataset.device_count(DEVICES_WEEK),
    )


def start_emulator(scenario: Scenario) -> EmulatorProcess:
    """The scenario's Kaon emulator, its clock where all the scenario's data is visible."""
    emulator = EmulatorProcess("kaon", "--now", NOW, *scenario.emulator_args)
    if scenario.visible_at:
        emulator.set_clock(now=scenario.visible_at.isoformat())
    return emulator


# --- process sampling ------------------------------------------------------------------------


@dataclass
class ProcessFigures:
    """Peak RSS and CPU seconds of one role (meltano, tap, target, ...) over its processes."""

    peak_rss: int = 0
    cpu_seconds: float = 0.0
    first_seen: float = 0.0
    last_seen: float = 0.0


@dataclass
class TreeSampler:
    """Samples a process tree: per pid the peak RSS and the last CPU times seen before it exited."""

    root_pid: int
    root_role: str = "meltano"
    extra: dict[int, str] = field(default_factory=dict)
    samples: dict[int, dict[str, Any]] = field(default_factory=dict)

    def role(self, process: psutil.Process, cmdline: list[str]) -> str:
        """What a process is, from its command line."""
        if process.pid in self.extra:
            return self.extra[process.pid]
        if process.pid == self.root_pid:
            return self.root_role
        names = " ".join(Path(part).name for part in cmdline)
        if "target-duckdb" in names:
            return "target-duckdb"
        if "tap-kaon-insights" in names:
            return "tap (discovery)" if "--discover" in cmdline else "tap-kaon-insights"
        return f"other: {names[:40]}"

    def sample(self) -> None:
        """One look at every process of the tree."""
        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            processes = []
        processes += [psutil.Process(pid) for pid in self.extra if psutil.pid_exists(pid)]
        now = time.monotonic()
        for process in processes:
            try:
                with process.oneshot():
                    cmdline, rss, cpu = process.cmdline(), peak_rss(process), process.cpu_times()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError):
                continue
            seen = self.samples.setdefault(process.pid, {"role": self.role(process, cmdline), "peak": 0, "first": now})
            seen.update(peak=max(seen["peak"], rss), cpu=cpu.user + cpu.system, last=now)
            seen.setdefault("cpu_start", cpu.user + cpu.system)

    def by_role(self) -> dict[str, ProcessFigures]:
        """Figures per role; an extra (already running) process counts only CPU used while sampled."""
        roles: dict[str, ProcessFigures] = {}
        for pid, seen in self.samples.items():
            figures = roles.setdefault(seen["role"], ProcessFigures(first_seen=seen["first"]))
            figures.peak_rss = max(figures.peak_rss, seen["peak"])
            figures.cpu_seconds += seen["cpu"] - (seen["cpu_start"] if pid in self.extra else 0.0)
            figures.first_seen = min(figures.first_seen, seen["first"])
            figures.last_seen = max(figures.last_seen, seen["last"])
        return roles


def peak_rss(process: psutil.Process) -> int:
    """The kernel's high-water mark of the process's RSS (VmHWM), so no short peak between samples is missed."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return process.memory_info().rss


# --- the meltano run ---------------------------------------------------------------------------


def meltano_env(work: Path, scenario: Scenario, emulator_url: str) -> dict[str, str]:
    """Environment of an isolated ``meltano run`` of the project's dev environment."""
    sys_dir = work / "meltano-sys"
    sys_dir.mkdir()
    for plugin_type in ("extractors", "loaders", "utilities"):
        (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
    settings = {"api_url": f"{emulator_url}/api", **scenario.settings}
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_STATE_BACKEND_URI": (work / "state").as_uri(),
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_CLI_LOG_LEVEL": "info",
        "TARGET_DUCKDB_FILEPATH": str(work / "warehouse.duckdb"),
        "TAP_KAON_INSIGHTS__SELECT": json.dumps([f"{scenario.stream}.*"]),
        **{
            f"TAP_KAON_INSIGHTS_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in settings.items()
        },
    }


def sampled_run(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    sampler_for: Callable[[int], TreeSampler],
    timeout: float = RUN_TIMEOUT_SECONDS,
) -> tuple[subprocess.Popen[bytes], float, TreeSampler]:
    """Run a command in the project (output in ``log_path``), sampling its process tree; killed past ``timeout``."""
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = sampler_for(process.pid)
        while process.poll() is None:
            sampler.sample()
            if time.monotonic() - started > timeout:
                process.kill()
            time.sleep(SAMPLE_SECONDS)
        return process, time.monotonic() - started, sampler


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
    if len(sys.argv) > 2 and sys.argv[1] == "tap":
        tap_with_writer(sys.argv[2], sys.argv[3:])
    else:
        main()
