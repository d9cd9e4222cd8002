"""A run that reads nothing because nothing is selected fails with one line instead of exiting 0.

The replay's usual cause: the marts do not exist yet (dbt has not run), so ``filter_schemas: [marts]`` discovers no
table and Meltano's ``select`` matches nothing; the run would then end with no record, no STATE and exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.tap_duckdb.tap_duckdb_helpers import discover, run_tap, select


def test_a_filter_matching_no_table_stops_the_run_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "before-dbt.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema kahuna; create table kahuna.inapp_logs (id integer)")
    run = run_tap({"path": str(path), "filter_schemas": ["marts"]}, tmp_path)
    assert run.returncode == 1
    assert run.messages == []
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, run.stderr[-2000:]
    assert f"nothing to read: no table or view of {path} is selected (0 discovered" in errors[0]
    assert "run dbt build first" in errors[0]
    assert "Traceback" not in run.stderr


def test_a_catalog_selecting_nothing_stops_the_run(shop: Path, tmp_path: Path) -> None:
    config = {"path": str(shop)}
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(discover(config, tmp_path), {})))
    run = run_tap(config, tmp_path, "--catalog", str(catalog_path))
    assert run.returncode == 1
    assert run.record_messages == []
    assert [m for m in run.messages if m.get("type") == "STATE"] == []
    assert "nothing to read: no table or view of" in run.stderr
    selected = select(discover(config, tmp_path), {"marts-events": None})
    catalog_path.write_text(json.dumps(selected))
    run = run_tap(config, tmp_path, "--catalog", str(catalog_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.rows("marts-events")) == 300
