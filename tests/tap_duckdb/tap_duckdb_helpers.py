"""DuckDB files for tap-duckdb's tests, and running the real ``tap-duckdb`` CLI on them."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from tests.support.cli import TAP_DUCKDB, PluginRun, run_plugin

TAP = TAP_DUCKDB
EVENTS = 300
# Every kind of DuckDB type a file can hold, one column each.
TYPES_TABLE = """
create table main.every_type (
    id integer primary key,
    tiny tinyint, huge hugeint, unsigned ubigint, amount decimal(12, 2), ratio double, flag boolean,
    day date, naive timestamp, instant timestamptz, clock time, span interval, key uuid, bytes blob,
    doc json, labels varchar[], matrix integer[][], pair struct(a integer, "b c" varchar), counts map(varchar, integer),
    mood enum_mood, bits bit
)
"""


@cache
def shop_file() -> Path:
    """The shop file of this test session (made once, before collection: the SDK's test factory discovers
    streams when the standard test class is built). ``conftest.py`` removes its directory at the end."""
    path = Path(tempfile.mkdtemp(prefix="tap-duckdb-tests-")) / "shop.duckdb"
    make_shop(path)
    return path


def make_shop(path: Path) -> None:
    """A file with tables and a view in three schemas: ``marts.events`` (key id, bookmark seq), ``main.every_type``."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts; create schema other; create type enum_mood as enum ('sad', 'ok')")
        connection.execute(
            "create table marts.events (id bigint primary key, seq bigint not null, person varchar,"
            " happened timestamptz, amount decimal(12, 2), tags varchar[])"
        )
        add_events(connection, 1, EVENTS)
        connection.execute("create view marts.recent_events as select id, person from marts.events where id > 250")
        connection.execute("create table other.notes (note varchar)")
        connection.execute("insert into other.notes values ('not replayed')")
        connection.execute(TYPES_TABLE)
        connection.execute(
            "insert into main.every_type values (1, -5, 170141183460469231731687303715884105727,"
            " 18446744073709551615, 1234.50, 0.25, true, '2026-11-18', '2026-11-18 15:30:00',"
            " '2026-11-18 15:30:00.123456+00', '15:30:00', interval '1 day 2 hours 3.5 seconds',"
            " '8d2a3b5e-0f6c-4a1e-9a55-2f0c3d4e5f60', '\\x00\\xFFab'::blob, '{\"a\": [1, 2], \"b\": null}',"
            " ['x', 'y'], [[1, 2], [3]], {'a': 7, 'b c': 'z'}, map {'k': 1}, 'ok', '0101')"
        )


def add_events(connection: duckdb.DuckDBPyConnection, first: int, last: int) -> None:
    """Events ``first..last`` (inclusive): seq = id, one person per ten events."""
    connection.execute(
        "insert into marts.events select range, range, 'person-' || (range // 10),"
        " timestamptz '2026-11-01 00:00:00+00' + to_seconds(range), range / 100, ['t' || (range % 3)]"
        " from range($1, $2)",
        (first, last + 1),
    )


def run_tap(config: dict[str, Any] | None, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> PluginRun:
    """Run ``tap-duckdb --config <config> <args>`` (``config=None``: ``--config ENV``) and parse its Singer output."""
    return run_plugin(TAP, config, tmp_path, args=args, env=env, parse="--discover" not in args)


def discover(config: dict[str, Any] | None, tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The catalog ``--discover`` prints."""
    run = run_tap(config, tmp_path, "--discover", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def select(catalog: dict[str, Any], streams: dict[str, str | None]) -> dict[str, Any]:
    """The catalog with these streams selected, each incremental on the named key (None: full table)."""
    for entry in catalog["streams"]:
        root = next(item["metadata"] for item in entry["metadata"] if item["breadcrumb"] == [])
        root["selected"] = entry["tap_stream_id"] in streams
        key = streams.get(entry["tap_stream_id"])
        if key:
            root.update({"replication-method": "INCREMENTAL", "replication-key": key})
            entry.update({"replication_method": "INCREMENTAL", "replication_key": key})
    return catalog
