"""The loop, end to end on this machine on the default warehouse (DuckDB): ``make demo``.

Starts the three emulators on the dev ports (real time: the current week and today are still
filling up), runs the Kaon and Kahuna load jobs into DuckDB with ``meltano run`` (each ends with
``dbt build``), then the replay job (dbt build, tap-duckdb reading the marts -> target-kissmetrics).
Then a second round: the emulators' clocks move an hour on, the load jobs read only what changed,
and the replay sends only the new mart rows. Prints the marts' row counts, the dbt tests passed,
the beacons sent per mart in each round, the state bookmarks, and the Kissmetrics deduplicated view
next to what the marts hold. Stops the emulators it started, also on errors and Ctrl-C.

Everything lands under ``output/demo/`` (its own DuckDB file, dbt artifacts and state files), so the
demo never touches the dev environment's ``output/warehouse.duckdb`` or ``state/``.
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
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from emulators.testing import EmulatorProcess
from kk_orchestration.meltano_logs import record_counts
from kk_orchestration.states import condensed_bookmark

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# KK_DEMO_DIR moves it (the demo's test runs it in a temporary directory).
DEMO_DIR = Path(os.environ.get("KK_DEMO_DIR") or PROJECT_ROOT / "output" / "demo").resolve()
# The dev environment's emulator ports; each can move with its variable (0: any free port), e.g. for a second
# checkout on the same machine. The demo points the plugins at the emulators it started, wherever they listen.
DEV_PORTS = {"kaon": 8001, "kahuna": 8002, "kissmetrics": 8003}
PORT_VARIABLES = {"kaon": "KK_KAON_PORT", "kahuna": "KK_KAHUNA_PORT", "kissmetrics": "KK_KISSMETRICS_PORT"}
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
WAREHOUSE = DEMO_DIR / "warehouse.duckdb"
DBT_TARGET = DEMO_DIR / "dbt" / "target"
MARTS = {"kissmetrics_events": "/e", "kissmetrics_people": "/s", "kissmetrics_aliases": "/a"}
REPLAY_JOB = "warehouse-to-kissmetrics"
# target-kissmetrics' summary line: "Kissmetrics summary: 12 beacons sent (/e 10, /s 1, /a 1), each answered 200, ..."
_BEACON_SUMMARY = re.compile(r"Kissmetrics summary: \d+ beacons \w+ \(([^)]*)\)")


class DemoError(RuntimeError):
    """A step failed: the message says which and what to do."""


def shown(path: Path) -> str:
    """A path as the demo prints it: relative to the checkout when inside it."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def say(text: str) -> None:
    """Print one line of the demo's story."""
    print(text, flush=True)


# --- emulators ------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def demo_ports(environ: Mapping[str, str]) -> dict[str, int]:
    """Each emulator's port: its variable's value, else the dev port. One line naming the variable on a bad value."""
    ports = {}
    for service, variable in PORT_VARIABLES.items():
        text = environ.get(variable, "").strip() or str(DEV_PORTS[service])
        if not text.isdigit() or int(text) > 65535:
            raise DemoError(f"{variable}={text!r} is not a port: set it to a number from 1 to 65535 (0: any free port)")
        ports[service] = int(text)
    return ports


def start_emulators(stack: ExitStack, ports: Mapping[str, int]) -> dict[str, EmulatorProcess]:
    """Start the three emulators on ``ports``; a port in use stops the demo before anything runs."""
    busy = [service for service, port in ports.items() if port and not port_is_free(port)]
    if busy:
        named = ", ".join(f"{ports[service]} ({service})" for service in busy)
        variables = " / ".join(PORT_VARIABLES[service] for service in busy)
        raise DemoError(
            f"port in use on 127.0.0.1: {named}; stop what listens there (an earlier demo?) or set {variables}"
            " to a free port (0: any free port)"
        )
    started = {}
    for service, port in ports.items():
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


EMULATOR_URLS: dict[str, str] = {}  # the started emulators' base URLs, set by demo()


def meltano_env() -> dict[str, str]:
    """The dev environment, with the demo's own state, warehouse, Kahuna days and emulator URLs."""
    today = datetime.now(timezone.utc).date()
    urls = (
        {
            "TAP_KAON_INSIGHTS_API_URL": f"{EMULATOR_URLS['kaon']}/api",
            "TAP_KAHUNA_LOGS_API_URL": f"{EMULATOR_URLS['kahuna']}/api/kahunalogs",
            "TARGET_KISSMETRICS_TRACKING_URL": EMULATOR_URLS["kissmetrics"],
        }
        if EMULATOR_URLS
        else {}
    )
    return {
        **os.environ,
        **urls,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_STATE_BACKEND_URI": (DEMO_DIR / "state").as_uri(),
        # every plugin that opens the DuckDB warehouse: the loader, dbt, the replay tap
        "TARGET_DUCKDB_FILEPATH": str(WAREHOUSE),
        "DBT_DUCKDB_PATH": str(WAREHOUSE),
        "TAP_DUCKDB_PATH": str(WAREHOUSE),
        "DBT_DUCKDB_TARGET_PATH": str(DBT_TARGET),
        "DBT_DUCKDB_LOG_PATH": str(DEMO_DIR / "dbt" / "logs"),
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
    """Records per stream the taps reported in a run's log (singer-sdk targets report record_count too)."""
    return record_counts(log.splitlines(), lambda plugin: plugin.startswith("tap-"))


def run_job(job: str) -> Counter[str]:
    """``meltano run <job>`` and a one-line account of what it read (and of its dbt build)."""
    started = time.monotonic()
    counts = records_by_stream(meltano("run", job).stderr)
    detail = ", ".join(f"{stream} {count}" for stream, count in sorted(counts.items()))
    say(f"  {job:<28} {sum(counts.values()):>6} records in {time.monotonic() - started:4.1f} s  ({detail})")
    say(f"  {'':<28} dbt build: {dbt_results()}")
    return counts


def mart_rows() -> dict[str, int]:
    """Rows per mart now (0 before the first dbt build)."""
    if not WAREHOUSE.exists():
        return dict.fromkeys(MARTS, 0)
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        tables = {row[0] for row in connection.execute("select table_name from information_schema.tables").fetchall()}
        return {
            mart: connection.execute(f"select count(*) from marts.{mart}").fetchone()[0] if mart in tables else 0  # noqa: S608
            for mart in MARTS
        }


def replay(replayed_before: dict[str, int]) -> dict[str, int]:
    """The replay job; prints the beacons sent per mart and how they relate to the mart rows.

    Returns the rows per mart it replayed up to.
    """
    started = time.monotonic()
    result = meltano("run", REPLAY_JOB)
    match = _BEACON_SUMMARY.search(result.stderr)
    if not match:
        raise DemoError(f"`meltano run {REPLAY_JOB}` printed no Kissmetrics summary; see its log under {DEMO_DIR}")
    by_kind = dict(part.split() for part in match.group(1).split(", "))
    sent = {mart: int(by_kind.get(kind, 0)) for mart, kind in MARTS.items()}
    detail = ", ".join(f"{mart} {count} ({MARTS[mart]})" for mart, count in sent.items())
    say(f"  {REPLAY_JOB:<28} {sum(sent.values()):>6} beacons in {time.monotonic() - started:4.1f} s  ({detail})")
    say(f"  {'':<28} dbt build: {dbt_results()}")
    rows = mart_rows()
    for mart, count in sent.items():
        new = rows[mart] - replayed_before[mart]
        at_bookmark = 1 if replayed_before[mart] else 0  # the replication filter is inclusive (>= bookmark)
        check = "" if count == new + at_bookmark else "  (UNEXPECTED)"
        say(f"    {mart:<22} {count:>5} sent = {new} new rows + {at_bookmark} at the bookmark{check}")
    return rows


def dbt_results() -> str:
    """What the last dbt build did: models built and tests by status (its run_results.json)."""
    path = DBT_TARGET / "run_results.json"
    if not path.exists():
        return "no run_results.json"
    results = json.loads(path.read_text())["results"]
    models = sum(result["unique_id"].startswith("model.") for result in results)
    tests = Counter(result["status"] for result in results if result["unique_id"].startswith("test."))
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(tests.items()))
    return f"{models} models, {sum(tests.values())} tests ({statuses})"


# --- summary --------------------------------------------------------------------------


def warehouse_summary() -> None:
    """Tables (raw and marts) and views (staging) with their row counts in the demo's DuckDB file."""
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables order by 1, 2"
        ).fetchall()
        say(f"\nDuckDB warehouse {shown(WAREHOUSE)} (raw: kaon, kahuna; dbt: staging, marts):")
        for schema, table, kind in tables:
            rows = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # noqa: S608
            label = " (view)" if kind == "VIEW" else ""
            say(f"  {schema + '.' + table:<36} {rows:>7} rows{label}")


# What Kissmetrics keeps of the marts' beacons, counted in SQL: distinct events (person, name ignoring case,
# second, properties), distinct property keys (person, name, second) and unordered alias pairs.
_MART_VIEW_SQL = {
    "events": """select count(*) from (select distinct person, lower(event), cast(floor(epoch(timestamp)) as bigint),
                 campaign, campaign_id, action_detail, os, sequence_in_second from marts.kissmetrics_events)""",
    "properties": """select count(*) from (select distinct person, name, second from (
        select person, cast(floor(epoch(timestamp)) as bigint) as second,
               unnest(['campaign', 'campaign_id', 'action_detail', 'os', 'sequence_in_second']) as name,
               unnest([campaign, campaign_id, action_detail, os, cast(sequence_in_second as varchar)]) as value
        from marts.kissmetrics_events
        union all
        select person, cast(floor(epoch(timestamp)) as bigint), unnest(['platform', 'email']), unnest([platform, email])
        from marts.kissmetrics_people) where value is not null)""",
    "aliases": """select count(*) from (select distinct least(person, alias), greatest(person, alias)
                  from marts.kissmetrics_aliases)""",
}


def marts_summary() -> dict[str, int]:
    """Rows per mart, and what Kissmetrics should keep of them."""
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        say("\nMarts (dbt, beacon-shaped; the replay bookmarks on replay_sequence):")
        for mart, kind in MARTS.items():
            rows, last = connection.execute(f"select count(*), max(replay_sequence) from marts.{mart}").fetchone()  # noqa: S608
            say(f"  marts.{mart:<24} {rows:>7} rows  -> {kind} beacons, replay_sequence 1..{last}")
        return {name: connection.execute(sql).fetchone()[0] for name, sql in _MART_VIEW_SQL.items()}


def state_summary() -> None:
    """Each state ID and its bookmarks, condensed to one line per stream."""
    say("\nState (meltano state list / get; files under output/demo/state/):")
    for state_id in meltano("state", "list").stdout.split():
        state = json.loads(meltano("state", "get", state_id).stdout)
        bookmarks = state.get("singer_state", {}).get("bookmarks", {})
        say(f"  {state_id}")
        for stream, bookmark in sorted(bookmarks.items()):
            say(f"    {stream:<18} {condensed_bookmark(bookmark, 150)}")


def kissmetrics_summary(stats: dict, expected: dict[str, int]) -> bool:
    """Beacons received and the deduplicated view next to what the marts hold; whether they match."""
    raw, dedup = stats["raw"], stats["dedup"]
    say("\nKissmetrics emulator:")
    say(f"  beacons received     {raw['total']:>7}  (events {raw['e']}, properties {raw['s']}, aliases {raw['a']})")
    say("  deduplicated view    (what Kissmetrics keeps)     what the marts hold")
    matches = True
    for name in ("events", "properties", "aliases"):
        same = dedup[name] == expected[name]
        matches = matches and same
        verdict = "same" if same else "DIFFERENT"
        say(f"    {name:<12} {dedup[name]:>12}{'':23}{expected[name]:>8}  {verdict}")
    if stats["ignored_total"]:
        say(f"  ignored              {stats['ignored_total']} {stats['ignored']}")
    dead_letters = DEMO_DIR / "kissmetrics-dead-letters.jsonl"
    if dead_letters.exists():
        letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
        reasons = Counter(reason for letter in letters for reason in letter.get("reasons", []))
        say(f"  dead letters         {len(letters)} invalid rows (in {shown(dead_letters)}):")
        for reason, count in reasons.most_common(3):
            say(f"    {count:>5} x {reason}")
    return matches


def write_report(kissmetrics_stats: dict) -> None:
    """``scripts/report.py``: the warehouse, the bookmarks and the beacons as one HTML page under output/demo/."""
    stats = DEMO_DIR / "kissmetrics-stats.json"
    stats.write_text(json.dumps(kissmetrics_stats))
    report = DEMO_DIR / "report.html"
    command = [sys.executable, str(PROJECT_ROOT / "scripts" / "report.py"), str(WAREHOUSE)]
    command += ["--state-dir", str(DEMO_DIR / "state"), "--kissmetrics-stats", str(stats), "--out", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoError(f"the report was not written: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    say(f"\nReport (tables, bookmarks, weekly charts, beacons): {shown(report)}")


# --- the story ------------------------------------------------------------------------


@contextmanager
def fresh_demo_dir() -> Iterator[None]:
    """An empty output/demo/ for this run."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    yield


def demo() -> bool:
    """The whole story; whether Kissmetrics ended up holding exactly what the marts hold."""
    started = time.monotonic()
    with ExitStack() as stack, fresh_demo_dir():
        say("1. Emulators (real time: this week and today are still filling up)")
        emulators = start_emulators(stack, demo_ports(os.environ))
        EMULATOR_URLS.update({service: emulator.url for service, emulator in emulators.items()})

        say("\n2. Load into DuckDB, then dbt build (the load jobs of meltano.yml, dev environment)")
        first = run_job("kaon-to-warehouse") + run_job("kahuna-to-warehouse")

        say("\n3. Replay the marts into Kissmetrics: dbt build, tap-duckdb -> target-kissmetrics--warehouse")
        replayed = replay(dict.fromkeys(MARTS, 0))

        say(f"\n4. An hour later (emulator clocks +{CLOCK_STEP_SECONDS // 60} min): incremental loads from state")
        for service in ("kaon", "kahuna"):
            emulators[service].set_clock(advance_seconds=CLOCK_STEP_SECONDS)
        second = run_job("kaon-to-warehouse") + run_job("kahuna-to-warehouse")
        say(f"  the second loads read {sum(second.values())} records (the first: {sum(first.values())})")

        say("\n5. Replay again: only the rows the marts gained (and the one row at each bookmark)")
        replay(replayed)

        warehouse_summary()
        expected = marts_summary()
        state_summary()
        stats = emulators["kissmetrics"].control("stats")  # once: the summary and the report show the same
        matches = kissmetrics_summary(stats, expected)
        write_report(stats)
        say(
            "\nThe other paths: the direct replays `meltano run kahuna-to-kissmetrics` and `kaon-clicks-to-kissmetrics`"
            " send the same beacons straight from the taps; PostgreSQL: `make postgres`, then the *-to-postgres jobs"
            " and `postgres-to-kissmetrics` (README)."
        )
        say(f"\nDone in {time.monotonic() - started:.0f} s; logs under {shown(DEMO_DIR)}/.")
        return matches


def main() -> int:
    """Run the demo; one clear line on failure."""
    try:
        if not demo():
            print("demo failed: the Kissmetrics deduplicated view differs from what the marts hold", file=sys.stderr)
            return 1
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted: emulators stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
