"""tap-duckdb through its CLI: discovery, stream selection, incremental replication, every DuckDB type,
a file that is never written and never held while records leave, and one-line errors."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from scripts.readme_settings import about_table, readme_table
from tap_duckdb.types import column_schema, iso_duration
from tests.support.cli import PluginRun
from tests.tap_duckdb.tap_duckdb_helpers import EVENTS, TAP, add_events, discover, run_tap, select

README = Path(__file__).resolve().parents[2] / "tap-duckdb" / "README.md"


def streams_of(catalog: dict) -> dict[str, dict]:
    return {entry["tap_stream_id"]: entry for entry in catalog["streams"]}


def test_discovery_lists_every_table_and_view_with_types_and_keys(shop: Path, tmp_path: Path) -> None:
    streams = streams_of(discover({"path": str(shop)}, tmp_path))

    assert set(streams) == {"marts-events", "marts-recent_events", "main-every_type", "other-notes"}
    events = streams["marts-events"]
    assert events["key_properties"] == ["id"]
    assert not events.get("is_view")
    assert streams["marts-recent_events"]["is_view"]
    properties = events["schema"]["properties"]
    assert properties["id"] == {"type": "integer"}
    assert properties["seq"] == {"type": "integer"}, "NOT NULL columns are not nullable"
    assert properties["happened"] == {"type": ["string", "null"], "format": "date-time"}
    assert properties["tags"] == {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
    every = streams["main-every_type"]["schema"]["properties"]
    assert every["pair"]["properties"]["b c"] == {"type": ["string", "null"]}
    assert every["mood"]["enum"] == ["sad", "ok"]
    assert every["doc"]["type"] == ["object", "array", "string", "number", "boolean", "null"]


def test_filter_schemas_and_filter_tables_choose_the_streams(shop: Path, tmp_path: Path) -> None:
    by_schema = streams_of(discover({"path": str(shop), "filter_schemas": ["marts"]}, tmp_path))
    assert set(by_schema) == {"marts-events", "marts-recent_events"}
    by_pattern = streams_of(discover({"path": str(shop), "filter_tables": ["marts.rec*", "other.notes"]}, tmp_path))
    assert set(by_pattern) == {"marts-recent_events", "other-notes"}


def test_only_the_selected_streams_are_read(shop: Path, tmp_path: Path) -> None:
    catalog = select(discover({"path": str(shop)}, tmp_path), {"marts-recent_events": None})
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    run = run_tap({"path": str(shop)}, tmp_path, "--catalog", str(tmp_path / "catalog.json"))

    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.records) == {"marts-recent_events"}
    assert [r["id"] for r in run.records["marts-recent_events"]] == list(range(251, EVENTS + 1))


def test_incremental_replication_reads_from_the_bookmark_on(shop: Path, tmp_path: Path) -> None:
    config = {"path": str(shop), "filter_schemas": ["marts"]}
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(discover(config, tmp_path), {"marts-events": "seq"})))

    first = run_tap(config, tmp_path, "--catalog", str(catalog_path))

    assert first.returncode == 0, first.stderr[-2000:]
    assert [r["seq"] for r in first.records["marts-events"]] == list(range(1, EVENTS + 1))
    bookmark = first.states[-1]["bookmarks"]["marts-events"]
    assert (bookmark["replication_key"], bookmark["replication_key_value"]) == ("seq", EVENTS)

    with duckdb.connect(str(shop)) as connection:
        add_events(connection, EVENTS + 1, EVENTS + 25)
    (tmp_path / "state.json").write_text(json.dumps(first.states[-1]))
    second = run_tap(config, tmp_path, "--catalog", str(catalog_path), "--state", str(tmp_path / "state.json"))

    assert second.returncode == 0, second.stderr[-2000:]
    # inclusive: the row at the bookmark comes again (a key shared by several rows loses none of them)
    assert [r["seq"] for r in second.records["marts-events"]] == list(range(EVENTS, EVENTS + 26))
    assert second.states[-1]["bookmarks"]["marts-events"]["replication_key_value"] == EVENTS + 25


def test_every_duckdb_type_arrives_as_a_json_value(shop: Path, tmp_path: Path) -> None:
    config = {"path": str(shop), "filter_tables": ["main.every_type"]}
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(discover(config, tmp_path), {"main-every_type": None})))

    run = run_tap(config, tmp_path, "--catalog", str(catalog_path))

    assert run.returncode == 0, run.stderr[-2000:]
    (record,) = run.records["main-every_type"]
    assert record["huge"] == 170141183460469231731687303715884105727
    assert record["unsigned"] == 18446744073709551615
    assert record["amount"] == 1234.5
    assert (record["day"], record["clock"]) == ("2026-11-18", "15:30:00")
    assert record["instant"] == "2026-11-18T15:30:00.123456+00:00"
    assert record["naive"] == "2026-11-18T15:30:00.000000+00:00"  # a naive timestamp is taken as UTC
    assert record["span"] == "P1DT2H3.5S"
    assert record["key"] == "8d2a3b5e-0f6c-4a1e-9a55-2f0c3d4e5f60"
    assert base64.b64decode(record["bytes"]) == b"\x00\xffab"
    assert record["doc"] == {"a": [1, 2], "b": None}
    assert (record["labels"], record["matrix"]) == (["x", "y"], [[1, 2], [3]])
    assert (record["pair"], record["counts"]) == ({"a": 7, "b c": "z"}, {"k": 1})
    assert (record["mood"], record["bits"]) == ("ok", "0101")


@pytest.mark.parametrize(
    ("duckdb_type", "schema"),
    [
        ("DECIMAL(38,9)", {"type": ["number", "null"]}),
        ('STRUCT("a, b" INTEGER[], c MAP(VARCHAR, STRUCT(d DATE)))[]', None),
        ("INTEGER[3]", {"type": ["array", "null"], "items": {"type": ["integer", "null"]}}),
        ("GEOMETRY", {"type": ["string", "null"]}),
    ],
)
def test_type_names_map_to_schemas(duckdb_type: str, schema: dict | None) -> None:
    mapped = column_schema(duckdb_type)
    if schema is not None:
        assert mapped == schema
    else:
        struct = mapped["items"]["properties"]
        assert struct["a, b"]["items"] == {"type": ["integer", "null"]}
        assert struct["c"]["additionalProperties"]["properties"]["d"]["format"] == "date"
    assert iso_duration(__import__("datetime").timedelta(seconds=-90)) == "-PT1M30S"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_file_is_never_written_not_even_an_older_format(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    # a file in DuckDB 0.10's storage format, which a read-write open by a newer DuckDB may upgrade
    with duckdb.connect(str(old), config={"storage_compatibility_version": "v0.10.0"}) as connection:
        connection.execute("create table t as select range as id from range(1000)")
    before = (digest(old), old.stat().st_mtime_ns)

    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(discover({"path": str(old)}, tmp_path), {"main-t": None})))
    run = run_tap({"path": str(old)}, tmp_path, "--catalog", str(catalog_path))

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["main-t"]) == 1000
    assert (digest(old), old.stat().st_mtime_ns) == before
    assert not Path(f"{old}.wal").exists()


def test_a_writer_can_open_the_file_while_the_records_are_still_leaving(shop: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(shop)) as connection:
        add_events(connection, EVENTS + 1, 200_000)  # more than a pipe holds: the tap waits for its reader
    config = {"path": str(shop), "filter_schemas": ["marts"]}
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(discover(config, tmp_path), {"marts-events": "seq"})))
    (tmp_path / "config.json").write_text(json.dumps(config))

    command = [TAP, "--config", str(tmp_path / "config.json"), "--catalog", str(catalog_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as tap:
        assert tap.stdout is not None
        records = 0
        while records < 10:
            records += json.loads(tap.stdout.readline())["type"] == "RECORD"
        # the tap is blocked on its output with most rows still to send; the file is free for a loader
        with duckdb.connect(str(shop)) as writer:
            writer.execute("insert into marts.events values (999999, 999999, 'late', now(), 1, [])")
        assert tap.poll() is None
        remaining = sum(json.loads(line)["type"] == "RECORD" for line in tap.stdout)
    assert records + remaining == 200_000, "the copy was taken before the writer's row"


def one_line_error(run_result: PluginRun) -> str:
    lines = run_result.error_lines
    assert len(lines) == 1, run_result.stderr
    assert "Traceback" not in run_result.stderr
    return lines[0]


def test_a_missing_file_is_one_clear_line_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "warehouse.duckdb"
    run = run_tap({"path": str(missing)}, tmp_path, "--discover")
    assert run.returncode == 1
    assert f"{missing} does not exist: set `path` to a DuckDB database file" in one_line_error(run)
    assert not missing.exists()
    assert not missing.parent.exists()


def test_a_file_that_is_not_duckdb_is_one_clear_line(tmp_path: Path) -> None:
    other = tmp_path / "notes.duckdb"
    other.write_text("just text\n" * 1000)
    run = run_tap({"path": str(other)}, tmp_path, "--discover")
    assert run.returncode == 1
    assert f"{other} is not a DuckDB database file" in one_line_error(run)


def hold_for_writing(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the file for writing and keeps it ``seconds``; returns once it is open."""
    script = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('open', flush=True); time.sleep({seconds})"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "open"
    return holder


def test_a_file_held_by_a_writer_waits_then_names_the_writer(shop: Path, tmp_path: Path) -> None:
    with hold_for_writing(shop, 30) as holder:
        started = time.monotonic()
        run = run_tap({"path": str(shop), "lock_wait_seconds": 2}, tmp_path, "--discover")
        waited = time.monotonic() - started
        holder.kill()
    assert run.returncode == 1
    line = one_line_error(run)
    assert f"is open for writing by {sys.executable}" in line or f"(PID {holder.pid})" in line
    assert "still locked after 2 s" in line
    assert waited >= 2


def test_settings_from_environment_variables_are_read_as_their_types(shop: Path, tmp_path: Path) -> None:
    env = {"TAP_DUCKDB_PATH": str(shop), "TAP_DUCKDB_FILTER_SCHEMAS": '["marts"]', "TAP_DUCKDB_LOCK_WAIT_SECONDS": "1"}
    assert set(streams_of(discover(None, tmp_path, env=env))) == {"marts-events", "marts-recent_events"}
    with hold_for_writing(shop, 30) as holder:
        run = run_tap(None, tmp_path, "--discover", env=env)
        holder.kill()
    assert run.returncode == 1
    assert "still locked after 1 s" in one_line_error(run), "the wait given as the string '1' is 1 second"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lock_wait_seconds": -1}, "lock_wait_seconds must be 0 or more (got -1)"),
        ({"lock_wait_seconds": "soon"}, "lock_wait_seconds must be a whole number (got 'soon')"),
        ({"memory_limit": "lots"}, f"memory_limit must be a size DuckDB {duckdb.__version__} accepts"),
        ({"filter_schemas": "marts"}, "filter_schemas must be a list of strings"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_before_the_file_is_opened(
    shop: Path, tmp_path: Path, settings: dict, message: str
) -> None:
    with hold_for_writing(shop, 30) as holder:  # the file is not even waited for
        started = time.monotonic()
        run = run_tap({"path": str(shop), **settings}, tmp_path, "--discover")
        holder.kill()
    assert run.returncode == 1
    assert message in one_line_error(run)
    assert time.monotonic() - started < 30


def test_a_writer_that_finishes_within_lock_wait_seconds_is_waited_for(shop: Path, tmp_path: Path) -> None:
    with hold_for_writing(shop, 1.5):
        streams = streams_of(discover({"path": str(shop), "lock_wait_seconds": 20}, tmp_path))
    assert "marts-events" in streams


def test_a_missing_path_setting_is_a_config_error(tmp_path: Path) -> None:
    run = run_tap({}, tmp_path, "--discover")
    assert run.returncode == 1
    assert "path is required: Path of the DuckDB database file." in one_line_error(run)


def test_readme_settings_table_is_the_abouts_own_settings() -> None:
    readme = README.read_text().splitlines()
    start, end = readme_table(readme)
    table = about_table("tap-duckdb")
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "path",
        "filter_schemas",
        "filter_tables",
        "lock_wait_seconds",
        "memory_limit",
        "use_singer_decimal",
    ]
    assert readme[start:end] == table, "run python scripts/readme_settings.py write"
    assert "Plus the SDK's standard settings" in README.read_text()


def test_a_file_written_by_a_newer_duckdb_is_one_clear_line(tmp_path: Path) -> None:
    # DuckDB 2 (the venv of the offline Snowflake checks, which fakesnow needs) writes a newer storage format.
    newer_python = Path(__file__).resolve().parents[2] / ".venv-snowflake-check" / "bin" / "python"
    if not newer_python.exists():
        pytest.fail("the venv with DuckDB 2 is missing: run `make snowflake-check-venv` (make test does it)")
    newer = tmp_path / "newer.duckdb"
    script = (
        "import duckdb; c = duckdb.connect();"
        f" c.execute(\"attach '{newer}' as n (storage_version 'v1.4.0')\"); c.execute('create table n.t (a int)')"
    )
    subprocess.run([str(newer_python), "-c", script], check=True)
    before = digest(newer)

    run = run_tap({"path": str(newer)}, tmp_path, "--discover")

    assert run.returncode == 1
    line = one_line_error(run)
    assert f"{newer} was written by a newer DuckDB than this tap's duckdb {duckdb.__version__}" in line
    assert digest(newer) == before
