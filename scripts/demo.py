"""The main job, end to end on this machine: ``make demo``.

Starts the three emulators on the dev ports (real time: the current week and today are still
filling up), runs the Kaon and Kahuna jobs into DuckDB with ``meltano run``, moves the emulators'
clocks an hour on and runs them again (incremental: only what changed is read and upserted),
replays the rows into the Kissmetrics emulator (the direct tap -> target-kissmetrics path, twice:
re-sending is harmless), then prints the warehouse's tables, the state bookmarks and the beacons
received and deduplicated. Stops the emulators it started, also on errors and Ctrl-C.

Everything lands under ``output/demo/`` (its own DuckDB file and state files), so the demo never
touches the dev environment's ``output/warehouse.duckdb`` or ``state/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from emulators.testing import EmulatorProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEMO_DIR = PROJECT_ROOT / "output" / "demo"
DEV_PORTS = {"kaon": 8001, "kahuna": 8002, "kissmetrics": 8003}
KAHUNA_DAYS = 3
# Small on purpose: the demo shows the flow in well under three minutes.
EMULATOR_DATA = {
    "kaon": [
        "--weeks-before-now",
        "4",
        "--devices-per-week",
        "200",
        "--paths",
        "8",
        "--external-ids",
        "3",
        "--clicks-per-id",
        "300",
    ],
    "kahuna": ["--days", str(KAHUNA_DAYS), "--logs-per-day", "150"],
    "kissmetrics": [],
}
CLOCK_STEP_SECONDS = 3600
# Only the taps' metrics: singer-sdk targets report record_count too.
_TAP_METRIC = re.compile(r" tap-[\w-]+ METRIC: (\{.*\})")


class DemoError(RuntimeError):
    """A step failed: the message says which and what to do."""


def say(text: str) -> None:
    """Print one line of the demo's story."""
    print(text, flush=True)


# --- emulators ------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_emulators(stack: ExitStack) -> dict[str, EmulatorProcess]:
    """Start the three emulators on the dev ports (meltano.yml's dev environment points there)."""
    busy = [f"{service} ({port})" for service, port in DEV_PORTS.items() if not port_is_free(port)]
    if busy:
        raise DemoError(
            f"ports in use on 127.0.0.1: {', '.join(busy)}; stop what listens there (an earlier demo?) and retry"
        )
    started = {}
    for service, port in DEV_PORTS.items():
        try:
            emulator = EmulatorProcess(service, "--port", str(port), *EMULATOR_DATA[service])
        except RuntimeError as error:
            last_line = (str(error).strip().splitlines() or ["no output"])[-1]
            raise DemoError(f"the {service} emulator did not start ({last_line}); run `make venv` and retry") from None
        stack.callback(emulator.stop)
        started[service] = emulator
        say(f"  {service:<12} emulator on {emulator.url}")
    return started


# --- meltano --------------------------------------------------------------------------


def meltano_env() -> dict[str, str]:
    """The dev environment, with the demo's own state, warehouse and Kahuna days."""
    today = datetime.now(timezone.utc).date()
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_STATE_BACKEND_URI": (DEMO_DIR / "state").as_uri(),
        "TARGET_DUCKDB_FILEPATH": str(DEMO_DIR / "warehouse.duckdb"),
        "TARGET_KISSMETRICS_DEAD_LETTER_PATH": str(DEMO_DIR / "kissmetrics-dead-letters.jsonl"),
        "TAP_KAHUNA_LOGS_START_DATE": (today - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
    }


def meltano(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``meltano <args>`` in the project (through the launcher, as cron would), keeping its log.

    Raises naming the log file on failure.
    """
    log_path = DEMO_DIR / f"meltano-{'-'.join(args[:3]).replace(':', '_')}.log"
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "isolated_meltano.py"), *args],
        cwd=PROJECT_ROOT,
        env=meltano_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        last_error = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "")
        raise DemoError(f"`meltano {' '.join(args)}` failed ({last_error.strip()}); full log: {log_path}")
    return result


def records_by_stream(log: str) -> Counter[str]:
    """Records per stream the taps reported in a run's log."""
    counts: Counter[str] = Counter()
    for match in _TAP_METRIC.finditer(log):
        metric = json.loads(match.group(1))
        if metric.get("metric") == "record_count" and metric.get("tags", {}).get("stream"):
            counts[metric["tags"]["stream"]] += int(metric["value"])
    return counts


def run_job(job: str) -> Counter[str]:
    """``meltano run <job>`` and a one-line account of what it read."""
    started = time.monotonic()
    counts = records_by_stream(meltano("run", job).stderr)
    detail = ", ".join(f"{stream} {count}" for stream, count in sorted(counts.items()))
    say(f"  {job:<28} {sum(counts.values()):>6} records in {time.monotonic() - started:4.1f} s  ({detail})")
    return counts


# --- summary --------------------------------------------------------------------------


def warehouse_summary() -> None:
    """Tables and row counts of the demo's DuckDB file."""
    path = DEMO_DIR / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables order by 1, 2"
        ).fetchall()
        say(f"\nDuckDB warehouse {path.relative_to(PROJECT_ROOT)}:")
        for schema, table in tables:
            rows = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # noqa: S608
            say(f"  {schema + '.' + table:<28} {rows:>7} rows")


def state_summary() -> None:
    """Each state ID and its bookmarks, condensed to one line per stream."""
    say("\nState (meltano state list / get; files under output/demo/state/):")
    for state_id in meltano("state", "list").stdout.split():
        state = json.loads(meltano("state", "get", state_id).stdout)
        bookmarks = state.get("singer_state", {}).get("bookmarks", {})
        say(f"  {state_id}")
        for stream, bookmark in sorted(bookmarks.items()):
            say(f"    {stream:<18} {condensed(bookmark)}")


def condensed(bookmark: dict) -> str:
    """A bookmark in one short line (partitions summarised)."""
    partitions = bookmark.get("partitions")
    own = {key: value for key, value in bookmark.items() if key != "partitions"}
    text = json.dumps(own, default=str)
    if partitions:
        text += f" + {len(partitions)} partitions, e.g. {json.dumps(partitions[0], default=str)}"
    return text if len(text) <= 150 else text[:147] + "..."


def kissmetrics_summary(kissmetrics: EmulatorProcess) -> None:
    """Beacons received and what Kissmetrics keeps after deduplication."""
    stats = kissmetrics.control("stats")
    raw, dedup = stats["raw"], stats["dedup"]
    say("\nKissmetrics emulator:")
    say(f"  beacons received     {raw['total']:>7}  (events {raw['e']}, properties {raw['s']}, aliases {raw['a']})")
    kept = f"events {dedup['events']}, properties {dedup['properties']}, aliases {dedup['aliases']}"
    say(f"  after deduplication  {kept}")
    if stats["ignored_total"]:
        say(f"  ignored              {stats['ignored_total']} {stats['ignored']}")
    dead_letters = DEMO_DIR / "kissmetrics-dead-letters.jsonl"
    if dead_letters.exists():
        letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
        reasons = Counter(reason for letter in letters for reason in letter.get("reasons", []))
        say(f"  dead letters         {len(letters)} invalid rows (in {dead_letters.relative_to(PROJECT_ROOT)}):")
        for reason, count in reasons.most_common(3):
            say(f"    {count:>5} x {reason}")


# --- the story ------------------------------------------------------------------------


@contextmanager
def fresh_demo_dir() -> Iterator[None]:
    """An empty output/demo/ for this run."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    yield


def demo() -> None:
    """The whole story."""
    started = time.monotonic()
    with ExitStack() as stack, fresh_demo_dir():
        say("1. Emulators (real time: this week and today are still filling up)")
        emulators = start_emulators(stack)

        say("\n2. First load into DuckDB (meltano run, dev environment)")
        first = run_job("kaon-to-warehouse") + run_job("kahuna-to-warehouse")

        say(f"\n3. An hour later (emulator clocks +{CLOCK_STEP_SECONDS // 60} min): incremental runs from state")
        for service in ("kaon", "kahuna"):
            emulators[service].set_clock(advance_seconds=CLOCK_STEP_SECONDS)
        second = run_job("kaon-to-warehouse") + run_job("kahuna-to-warehouse")
        say(f"  second run read {sum(second.values())} records (first: {sum(first.values())})")

        say("\n4. Replay into Kissmetrics: tap -> target-kissmetrics (the mapping is in meltano.yml)")
        run_job("kahuna-to-kissmetrics")
        run_job("kaon-clicks-to-kissmetrics")
        say("  again with --full-refresh: every beacon re-sent, Kissmetrics deduplicates them")
        meltano("run", "--full-refresh", "kahuna-to-kissmetrics")
        say("  (the warehouse path, tap-postgres -> target-kissmetrics, is `meltano run warehouse-to-kissmetrics`;")
        say("   it needs PostgreSQL: `make postgres`, then the kaon/kahuna-to-postgres jobs; see README)")

        warehouse_summary()
        state_summary()
        kissmetrics_summary(emulators["kissmetrics"])
        say(f"\nDone in {time.monotonic() - started:.0f} s; logs under {DEMO_DIR.relative_to(PROJECT_ROOT)}/.")


def main() -> int:
    """Run the demo; one clear line on failure."""
    try:
        demo()
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted: emulators stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
