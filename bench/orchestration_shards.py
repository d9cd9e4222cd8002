"""Sharded on Dagster: a Kahuna 90-day backfill at 50 ms latency into PostgreSQL, 1 shard vs 4 vs 8 at once,
and what one shard costs to start (Meltano, the launcher, Dagster).

Every variant runs the real thing against one Kahuna emulator (``--days 90``, frozen at 2026-11-18T15:30Z)
and the local PostgreSQL (``make postgres``; ``KK_PG_PORT``), side by side in one run:

- 1 shard: ``scripts/isolated_meltano.py run tap-kahuna-logs target-postgres`` over the 90 days, all four
  categories (the tap's own ``max_concurrency`` 4 days at a time per category, categories one after the
  other): the load of ``kahuna-to-postgres`` without its dbt build, the work the shards do;
- 1 shard on Dagster: the same ``load_shards`` job as the sharded variants with all 360 partitions in one
  shard (``periods_per_shard`` 90, ``across_series``): one shard paying the same Dagster run as 4 or 8 do;
- 4 shards one at a time, 4 at once, 8 at once: ``dagster job execute -j load_shards`` with the 360
  (category, day) partitions, ``periods_per_shard`` 90 (a shard per category) or 45 (per category and
  half), ``max_concurrent`` 1, 4 or 8 (each shard's tap still reads 4 days at a time);
- 4 balanced shards at once: ``periods_per_shard`` 23 with ``across_series`` (a quarter of the days, all
  four categories each), ``max_concurrent`` 4;
- for comparison, 1 shard whose tap reads 16 days at a time (``max_concurrency`` 16).

Each variant starts from an empty table set and its own Meltano system database (a schema in kk_meltano),
and must load exactly the emulator's rows. Two data profiles: ``page_size`` 20 (a latency-bound backfill:
many small pages) and the default 1000 (few pages; the records' CPU dominates on this machine).

    .venv/bin/python bench/orchestration_shards.py                    # both profiles (~6 min on 2 cores)
    .venv/bin/python bench/orchestration_shards.py --profiles 20      # the latency-bound one only
    .venv/bin/python bench/orchestration_shards.py --days 4 --profiles 1000   # a smoke run (a minute or two)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
import yaml

from emulators.kahuna_data import CATEGORIES, KahunaDataset
from emulators.testing import EmulatorProcess
from kk_orchestration.jobs import shards_run_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LAUNCHER = str(PROJECT_ROOT / "scripts" / "isolated_meltano.py")
NOW = "2026-11-18T15:30:00+00:00"
DAYS = 90
LOGS_PER_DAY = 200
LATENCY_MS = 50.0
SAMPLE_SECONDS = 0.1
# One machine's other way to overlap latency: the tap's own concurrency (default 4 days at a time per category).
WIDE_TAP = {"TAP_KAHUNA_LOGS_MAX_CONCURRENCY": "16"}
SCHEMA = "bench_kahuna"  # never the dev environment's `kahuna`
# What a shard runs (kk_orchestration.partitions): the load alone; meltano.yml's kahuna-to-postgres adds dbt build.
KAHUNA_LOAD = ("tap-kahuna-logs", "target-postgres")
TABLES = ("inapp_logs", "push_logs", "email_logs", "user_merge_logs")
PG = {
    "host": "127.0.0.1",
    "port": os.environ.get("KK_PG_PORT", "55432"),
    "user": os.environ.get("KK_PG_USER", "kk"),
    "password": os.environ.get("KK_PG_PASSWORD", "kk-dev-password"),
}
SERVER = "{user}:{password}@{host}:{port}".format(**PG)
WAREHOUSE_URL = f"postgresql://{SERVER}/{os.environ.get('KK_PG_DATABASE', 'kk_warehouse')}"
SYSTEM_URL = f"postgresql://{SERVER}/{os.environ.get('KK_PG_SYSTEM_DATABASE', 'kk_meltano')}"
_SHARD_SECONDS = re.compile(r"shard \S+: \d+ records loaded \(\d+ read\) in ([\d.]+) s")


@dataclass
class Variant:
    """One measured way of running the backfill."""

    label: str
    shards: int
    at_once: int
    seconds: float
    cpu_seconds: float
    rows: int


def days(count: int) -> list[date]:
    """The ``count`` UTC days the emulator serves (90 in the bench)."""
    today = date.fromisoformat(NOW[:10])
    return [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def expected_rows(count: int) -> int:
    """Every log the emulator serves over its ``count`` days (all categories)."""
    dataset = KahunaDataset(seed=42, now=datetime.fromisoformat(NOW), days=count, logs_per_day=LOGS_PER_DAY, env="p")
    return sum(len(dataset.records(category, day)) for category in CATEGORIES for day in dataset.days)


@contextmanager
def system_database() -> Iterator[str]:
    """A fresh Meltano system database (a schema of its own), dropped afterwards."""
    schema = f"meltano_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SYSTEM_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"postgresql+psycopg://{SERVER}/{SYSTEM_URL.rsplit('/', 1)[1]}?options=-csearch_path%3D{schema}"
        finally:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def empty_tables() -> None:
    """Empty the bench tables (kept, so no variant pays for or races on creating them)."""
    with psycopg.connect(WAREHOUSE_URL, autocommit=True) as connection:
        for table in TABLES:
            connection.execute(f"TRUNCATE {SCHEMA}.{table}")


def loaded_rows() -> int:
    """Rows in the bench tables; fails on a duplicate key."""
    total = 0
    with psycopg.connect(WAREHOUSE_URL) as connection:
        for table in TABLES:
            rows, keys = connection.execute(
                f"SELECT count(*), count(DISTINCT (log_date, log_position)) FROM {SCHEMA}.{table}"  # noqa: S608
            ).fetchone() or (0, 0)
            if rows != keys:
                raise SystemExit(f"{table}: {rows - keys} duplicate keys")
            total += rows
    return total


def environment(
    kahuna: EmulatorProcess, system_uri: str, dagster_home: Path, page_size: int, backfill: list[date]
) -> dict[str, str]:
    """The dev environment pointed at the emulator, the bench schema and this variant's system database."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_DATABASE_URI": system_uri,
        "MELTANO_STATE_BACKEND_URI": "systemdb",
        "DAGSTER_HOME": str(dagster_home),
        "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
        "TAP_KAHUNA_LOGS_START_DATE": backfill[0].isoformat(),
        "TAP_KAHUNA_LOGS_END_DATE": backfill[-1].isoformat(),
        "TAP_KAHUNA_LOGS_PAGE_SIZE": str(page_size),
        "TARGET_POSTGRES_PORT": PG["port"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
    }


@dataclass
class Measured:
    """A finished command: wall seconds, CPU seconds of its whole process tree, its output."""

    seconds: float
    cpu_seconds: float
    output: str


def run(command: list[str], env: dict[str, str], label: str) -> Measured:
    """Run a command, sampling its process tree's CPU; exits naming the variant on failure.

    Dagster's steps are forked by a forkserver and meltano's tap and target are its grandchildren: none is
    this process's child to wait for, so CPU is summed from samples of every process in the tree (the
    last sample of each, taken every SAMPLE_SECONDS; a process's final fraction of a sample is missed).
    """
    cpu_by_process: dict[tuple[int, float], float] = {}
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )
        root = psutil.Process(process.pid)
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                for member in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        times = member.cpu_times()
                        cpu_by_process[(member.pid, member.create_time())] = times.user + times.system
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if process.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise SystemExit(f"{label} failed:\n{tail}")
    return Measured(seconds, sum(cpu_by_process.values()), text)


def dagster_shards(
    env: dict[str, str],
    workdir: Path,
    label: str,
    *,
    keys: list[str],
    periods: int,
    concurrent: int,
    across: bool = False,
) -> Measured:
    """``dagster job execute -j load_shards`` of these Kahuna partitions (loads only, no dbt build)."""
    config = workdir / f"{uuid.uuid4().hex[:8]}.yaml"
    run_config = shards_run_config({"kahuna_logs": keys}, concurrent, periods, across_series=across)
    config.write_text(yaml.safe_dump(run_config))
    command = [str(VENV_BIN / "dagster"), "job", "execute", "-m", "kk_orchestration.definitions"]
    return run([*command, "-j", "load_shards", "-c", str(config)], env, label)


def one_shard(env: dict[str, str], label: str) -> Measured:
    """The unsharded backfill: one ``meltano run`` of the load through the launcher."""
    return run([sys.executable, LAUNCHER, "run", *KAHUNA_LOAD], env, label)


def measure_profile(
    kahuna: EmulatorProcess, workdir: Path, page_size: int, expected: int, backfill: list[date]
) -> list[Variant]:
    """The unsharded run, then 4 shards one at a time, 4 at once (per category, then balanced) and 8 at once."""
    variants = []
    every_key = [f"{category}|{day.isoformat()}" for category in CATEGORIES for day in backfill]
    span = len(backfill)
    quarter = -(-span // 4)  # days per shard of 4 balanced shards (90 days: 23, 23, 23, 21)
    plans: list[tuple[str, int, int, int | None, bool, dict[str, str]]] = [
        ("1 shard: one `meltano run`, no Dagster", 1, 1, None, False, {}),
        ("1 shard on Dagster (the same job, every partition in one shard)", 1, 1, span, True, {}),
        ("4 shards (a category each), one at a time", 4, 1, span, False, {}),
        ("4 shards (a category each), all at once", 4, 4, span, False, {}),
        ("4 shards (a quarter of the days, all categories each), all at once", 4, 4, quarter, True, {}),
        ("8 shards (a category and half each), all at once", 8, 8, (span + 1) // 2, False, {}),
        ("for comparison: 1 shard, the tap reading 16 days at a time", 1, 1, None, False, WIDE_TAP),
    ]
    for label, shards, at_once, periods, across_series, settings in plans:
        empty_tables()
        with system_database() as system_uri:
            home = Path(tempfile.mkdtemp(dir=workdir))
            env = {**environment(kahuna, system_uri, home, page_size, backfill), **settings}
            if periods is None:
                measured = one_shard(env, label)
            else:
                measured = dagster_shards(
                    env, workdir, label, keys=every_key, periods=periods, concurrent=at_once, across=across_series
                )
                if len(shard_seconds(measured.output)) != shards:
                    raise SystemExit(f"{label}: {len(shard_seconds(measured.output))} shards ran, not {shards}")
        rows = loaded_rows()
        if rows != expected:
            raise SystemExit(f"{label}: {rows} rows loaded, the emulator serves {expected}")
        variants.append(Variant(label, shards, at_once, measured.seconds, measured.cpu_seconds, rows))
    return variants


def shard_seconds(log: str) -> list[float]:
    """The seconds each shard's ``meltano run`` took, from the code location's log lines."""
    return [float(seconds) for seconds in _SHARD_SECONDS.findall(log)]


def measure_overheads(kahuna: EmulatorProcess, workdir: Path, backfill: list[date]) -> dict[str, float]:
    """Start-up costs: the launcher, a Meltano shard with nothing to read, a Dagster run and step."""
    # Days before the emulator's first one have no logs: a shard of such a day is all start-up.
    empty_days = [(backfill[0] - timedelta(days=30 + offset)).isoformat() for offset in range(8)]
    versions = {}
    for name, command in (
        ("plain", [str(VENV_BIN / "meltano"), "--version"]),
        ("launcher", [sys.executable, LAUNCHER, "--version"]),
    ):
        versions[name] = statistics.median(run(command, dict(os.environ), name).seconds for _ in range(5))
    with system_database() as system_uri:
        home = Path(tempfile.mkdtemp(dir=workdir))
        env = {**environment(kahuna, system_uri, home, 1000, backfill), "TAP_KAHUNA_LOGS_START_DATE": min(empty_days)}
        direct = {**env, "TAP_KAHUNA_LOGS_END_DATE": min(empty_days), "TAP_KAHUNA_LOGS_CATEGORIES": '["inapp"]'}
        empty_run = [sys.executable, LAUNCHER, "run", "--state-id-suffix", "empty", *KAHUNA_LOAD]
        meltano_runs = [run(empty_run, direct, "empty shard") for _ in range(3)]
        keys = [f"inapp|{day}" for day in empty_days]
        single = dagster_shards(env, workdir, "one empty shard", periods=1, concurrent=1, keys=keys[:1])
        eight = dagster_shards(env, workdir, "eight empty shards", periods=1, concurrent=1, keys=keys)
    single_wall, single_log, eight_wall, eight_log = single.seconds, single.output, eight.seconds, eight.output
    (single_shard,) = shard_seconds(single_log)
    eight_shards = shard_seconds(eight_log)
    run_overhead = single_wall - single_shard
    return {
        "launcher": versions["launcher"] - versions["plain"],
        "meltano_shard": statistics.median(measured.seconds for measured in meltano_runs),
        "meltano_shard_cpu": statistics.median(measured.cpu_seconds for measured in meltano_runs),
        "dagster_run_cpu": single.cpu_seconds - statistics.median(measured.cpu_seconds for measured in meltano_runs),
        "dagster_run": run_overhead,
        "dagster_step": (eight_wall - run_overhead - sum(eight_shards)) / len(eight_shards),
        "meltano_shard_in_dagster": statistics.median(eight_shards),
    }


def main() -> None:
    """Measure and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[5, 1000], help="page sizes to measure")
    parser.add_argument(
        "--days", type=int, default=DAYS, help=f"days of the backfill (default {DAYS}; 2 or more: a smoke run)"
    )
    arguments = parser.parse_args()
    if arguments.days < 2:
        parser.error("--days: 2 or more (the 8-shard variant splits every category's days in two)")
    backfill = days(arguments.days)
    expected = expected_rows(arguments.days)
    load_before = os.getloadavg()[0]
    emulator_args = ("--now", NOW, "--days", str(arguments.days), "--logs-per-day", str(LOGS_PER_DAY))
    with tempfile.TemporaryDirectory() as workdir, EmulatorProcess("kahuna", *emulator_args) as kahuna:
        # Warm-up: the emulator generates and caches its days; the bench tables get created once.
        with psycopg.connect(WAREHOUSE_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        with system_database() as system_uri:
            one_shard(environment(kahuna, system_uri, Path(workdir), 1000, backfill), "warm-up")
        overheads = measure_overheads(kahuna, Path(workdir), backfill)
        kahuna.set_faults(latency_ms=LATENCY_MS)
        results = {
            page_size: measure_profile(kahuna, Path(workdir), page_size, expected, backfill)
            for page_size in arguments.profiles
        }
    print(f"Kahuna backfill: {arguments.days} days x 4 categories, {expected:,} rows, {LATENCY_MS:.0f} ms per request")
    print(f"load average (1 min) before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs\n")
    print(
        "| page_size | variant | shards | at once | seconds | CPU seconds | rows | vs 1 shard | vs 1 shard on Dagster"
        " | vs one at a time |"
    )
    print("|---:|:--|---:|---:|---:|---:|---:|---:|---:|---:|")
    for page_size, variants in results.items():
        # The plain run, the one Dagster shard, the 4 shards one at a time (measure_profile's first three plans).
        base, dagster_base, sequential = (variant.seconds for variant in variants[:3])
        for variant in variants:
            print(
                f"| {page_size} | {variant.label} | {variant.shards} | {variant.at_once} | {variant.seconds:.1f} |"
                f" {variant.cpu_seconds:.1f} | {variant.rows:,} | {base / variant.seconds:.2f}x |"
                f" {dagster_base / variant.seconds:.2f}x | {sequential / variant.seconds:.2f}x |"
            )
    print("\n| start-up cost | seconds |")
    print("|:--|---:|")
    costs = {
        "the launcher (a private system directory) on top of `meltano --version`": "launcher",
        "one Meltano shard with nothing to read (launcher + meltano + tap + target), wall": "meltano_shard",
        "the same, CPU seconds of its processes": "meltano_shard_cpu",
        "the same shard as a Dagster step, wall": "meltano_shard_in_dagster",
        "one Dagster run (CLI, code location load, forkserver) besides its shard, wall": "dagster_run",
        "the same, CPU seconds": "dagster_run_cpu",
        "each further Dagster step (fork, events) besides its shard, wall": "dagster_step",
    }
    for description, name in costs.items():
        print(f"| {description} | {overheads[name]:.2f} |")


if __name__ == "__main__":
    main()
