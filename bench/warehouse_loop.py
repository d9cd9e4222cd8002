"""The whole loop on DuckDB at the pipeline benchmark's volume: load -> dbt build -> replay into Kissmetrics.

One Kaon emulator serves the 1,000,000-click scenario of ``bench/kaon_scenarios.py`` (10 external IDs, the
clock a year on so every click is visible), one Kissmetrics emulator (``--raw-log count``) receives the
beacons. Through the repository's real Meltano project (``dev`` environment, isolated: its own state,
DuckDB file, dbt artifacts and ``.meltano`` run directory), stage by stage:

1. load: ``meltano run tap-kaon-insights target-duckdb`` (``external_id_hits`` selected);
2. dbt build: ``meltano invoke dbt-duckdb:build`` (staging views, the marts, every dbt test);
3. replay: ``meltano run tap-duckdb target-kissmetrics--warehouse`` (the marts, from no bookmark);
4. the incremental costs with nothing new: dbt build again, replay again (one row per mart at the bookmark).

Each stage's wall seconds, peak RSS and CPU seconds per process are measured (the process tree sampled
every 0.2 s, as in ``bench/pipeline.py``). The run fails unless DuckDB holds exactly the clicks, the events
mart one row per click, and the emulator received exactly one ``/e`` beacon per mart row.

    .venv/bin/python bench/warehouse_loop.py                  # 1,000,000 clicks (about 10 minutes)
    .venv/bin/python bench/warehouse_loop.py --clicks 20000   # smoke run (under a minute)
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil
from kaon_scenarios import (
    MELTANO,
    RUN_TIMEOUT_SECONDS,
    Scenario,
    clicks_scenario,
    meltano_env,
    sampled_run,
    start_emulator,
)
from sampling import MB, ProcessFigures, TreeSampler

from emulators.testing import EmulatorProcess

STAGE_TIMEOUT_SECONDS = 3 * RUN_TIMEOUT_SECONDS


class LoopSampler(TreeSampler):
    """The pipeline benchmark's sampler, naming the processes of the warehouse loop."""

    def role(self, process: psutil.Process, cmdline: list[str]) -> str:
        """What a process is, from its command line."""
        names = " ".join(Path(part).name for part in cmdline)
        if "multiprocessing" in names:
            return "dbt (helper)"  # dbt's multiprocessing resource tracker
        for role in ("tap-duckdb", "target-kissmetrics", "target-duckdb", "tap-kaon-insights", "dbt"):
            if role in names and process.pid != self.root_pid:
                return f"{role} (discovery)" if "--discover" in cmdline else role
        return super().role(process, cmdline)


# tap-duckdb's line per stream: how long it held the file while copying the rows it then emits.
_COPIED = re.compile(r"Copied (\d+) rows of (\S+) in ([\d.]+) s")


@dataclass
class Stage:
    """One stage's figures."""

    name: str
    command: str
    seconds: float
    roles: dict[str, ProcessFigures]
    log: str = ""

    def file_held_seconds(self) -> float:
        """Seconds tap-duckdb held the DuckDB file (the copies of every stream), from its log."""
        return sum(float(match.group(3)) for match in _COPIED.finditer(self.log))


def run_stage(name: str, args: list[str], env: dict[str, str], work: Path, emulators: list[int]) -> Stage:
    """``meltano <args>`` while sampling its process tree (and the emulators' CPU)."""
    log_path = work / f"{name.replace(' ', '-')}.log"
    process, seconds, sampler = sampled_run(
        [MELTANO, *args],
        env,
        log_path,
        lambda pid: LoopSampler(pid, extra=dict.fromkeys(emulators, "emulators")),
        STAGE_TIMEOUT_SECONDS,
    )
    if process.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"{name}: meltano {' '.join(args)} failed, see {log_path}:\n{tail}")
    return Stage(name, f"meltano {' '.join(args)}", seconds, sampler.by_role(), log_path.read_text(errors="replace"))


def loop_env(work: Path, scenario: Scenario, kaon: EmulatorProcess, kissmetrics: EmulatorProcess) -> dict[str, str]:
    """The pipeline benchmark's isolated environment, plus dbt, the replay tap and the Kissmetrics emulator."""
    warehouse = str(work / "warehouse.duckdb")
    return {
        **meltano_env(work, scenario, kaon.url),
        "DBT_DUCKDB_PATH": warehouse,
        "TAP_DUCKDB_PATH": warehouse,
        "DBT_DUCKDB_TARGET_PATH": str(work / "dbt" / "target"),
        "DBT_DUCKDB_LOG_PATH": str(work / "dbt" / "logs"),
        "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url,
        "TARGET_KISSMETRICS_DEAD_LETTER_PATH": str(work / "dead-letters.jsonl"),
    }


def count(path: Path, sql: str) -> int:
    """One number from the DuckDB file."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return int(connection.execute(sql).fetchone()[0])


def main() -> None:
    """Run the four stages and print their figures as Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000, help="clickstream rows (a multiple of 10)")
    options = parser.parse_args()
    scenario = clicks_scenario(options.clicks)
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-loop-") as tmp:
        work = Path(tmp) / "loop"
        work.mkdir()
        kissmetrics = EmulatorProcess("kissmetrics", "--raw-log", "count")
        with start_emulator(scenario) as kaon, kissmetrics:
            env = loop_env(work, scenario, kaon, kissmetrics)
            emulators = [kaon.process.pid, kissmetrics.process.pid]
            warehouse = work / "warehouse.duckdb"
            stages = [run_stage("load", ["run", "tap-kaon-insights", "target-duckdb"], env, work, emulators)]
            clicks = count(warehouse, "select count(*) from kaon.external_id_hits")
            if clicks != scenario.expected_rows:
                raise SystemExit(f"DuckDB holds {clicks} clicks, expected exactly {scenario.expected_rows}")
            stages.append(run_stage("dbt build", ["invoke", "dbt-duckdb:build"], env, work, emulators))
            events = count(warehouse, "select count(*) from marts.kissmetrics_events")
            if events != clicks:
                raise SystemExit(f"the events mart holds {events} rows for {clicks} clicks")
            replay = ["run", "tap-duckdb", "target-kissmetrics--warehouse"]
            stages.append(run_stage("replay", replay, env, work, emulators))
            first = kissmetrics.control("stats")
            if first["raw"]["e"] != events:
                raise SystemExit(f"the emulator received {first['raw']['e']} events for {events} mart rows")
            stages.append(run_stage("dbt build, nothing new", ["invoke", "dbt-duckdb:build"], env, work, emulators))
            stages.append(run_stage("replay, nothing new", replay, env, work, emulators))
            again = kissmetrics.control("stats")["raw"]["total"] - first["raw"]["total"]
    report(scenario, stages, events, first, again)


def report(scenario: Scenario, stages: list[Stage], events: int, first: dict, again: int) -> None:
    """The figures, as the Markdown bench/README.md shows."""
    print(f"\n{scenario.name}: {events:,} rows in marts.kissmetrics_events")
    print(f"dedup view after the replay: {first['dedup']['events']:,} events\n")
    print("| stage | command | wall s | rows or beacons | per second |")
    print("|---|---|---:|---:|---:|")
    volumes = {"load": events, "dbt build": events, "replay": first["raw"]["total"], "replay, nothing new": again}
    rated = ("load", "dbt build", "replay")
    for stage in stages:
        volume = volumes.get(stage.name)
        rate = f"{volume / stage.seconds:,.0f}" if volume and stage.name in rated else ""
        shown = f"{volume:,}" if volume is not None else ""
        print(f"| {stage.name} | `{stage.command}` | {stage.seconds:.1f} | {shown} | {rate} |")
    print("\n| stage | process | lived s | CPU s | peak RSS MB |")
    print("|---|---|---:|---:|---:|")
    for stage in stages:
        for role, figures in sorted(stage.roles.items()):
            lived = figures.last_seen - figures.first_seen
            print(f"| {stage.name} | {role} | {lived:.1f} | {figures.cpu_seconds:.1f} | {figures.peak_rss / MB:.0f} |")
    replay = next(stage for stage in stages if stage.name == "replay")
    print(
        f"\ntap-duckdb held the DuckDB file {replay.file_held_seconds():.1f} s of the replay's {replay.seconds:.1f} s"
    )
    print(f"Machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end.")


if __name__ == "__main__":
    main()
