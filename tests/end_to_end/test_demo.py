"""``make demo``'s script, as the README's first command runs it: the loop closes and the report renders.

The demo runs once (about a minute and a half) in its own directory (``KK_DEMO_DIR``) with its emulators on
free ports (``KK_*_PORT=0``), so it never meets a demo or another checkout running on this machine. Its HTML
report is then opened in headless Chromium (Debian's package, ``make chromium``): the DOM Chromium built must
show every table of the DuckDB file with its row count, every bookmark of the state files and one bar per
Kaon week, and the screenshot must be a page-sized PNG.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tests.support.chromium import chromium, png_size

pytestmark = pytest.mark.meltano

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, str(PROJECT_ROOT / "scripts" / "demo.py")]
FREE_PORTS = {"KK_KAON_PORT": "0", "KK_KAHUNA_PORT": "0", "KK_KISSMETRICS_PORT": "0"}


def run_demo(demo_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KK_DEMO_DIR": str(demo_dir), **variables}
    return subprocess.run(DEMO, env=env, capture_output=True, text=True, timeout=1200, check=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    demo_dir = tmp_path_factory.mktemp("demo")
    return demo_dir, run_demo(demo_dir, **FREE_PORTS)


def test_the_demo_closes_the_loop_twice_and_kissmetrics_holds_what_the_marts_hold(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    demo_dir, result = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # The emulators listened where the demo was told (free ports), and the plugins found them there.
    assert not re.search(r"emulator on http://127\.0\.0\.1:800[123]\b", out), out[:600]
    for name in ("events", "properties", "aliases"):
        assert re.search(rf"^    {name}\s+(\d+)\s+\1  same$", out, re.M), f"{name}:\n{out[-2500:]}"
    assert "(UNEXPECTED)" not in out
    assert re.findall(r"dbt build: \d+ models, (\d+) tests \(\1 pass\)", out), out
    with duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True) as connection:
        (events,) = connection.execute("select count(*) from marts.kissmetrics_events").fetchone()
    assert events > 0
    assert f"marts.kissmetrics_events          {events} rows" in out


def test_the_demo_report_renders_in_headless_chromium_with_the_warehouse_and_its_bookmarks(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    demo_dir, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    report = demo_dir / "report.html"
    assert "report.html" in result.stdout
    dom = chromium("--dump-dom", report.as_uri(), cwd=demo_dir).stdout
    assert "<h1>Warehouse report</h1>" in dom

    shown_tables = dict(
        re.findall(r'<tr class="warehouse-table"><td>([\w.]+)</td><td>\w+</td><td class="rows">(\d+)</td>', dom)
    )
    with duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True) as connection:
        tables = connection.execute("select table_schema, table_name from information_schema.tables").fetchall()
        counts = {
            f"{schema}.{name}": str(connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0])  # noqa: S608
            for schema, name in tables
        }
        # engagement has the listed weeks; hits go back to the app's launch (the hits backfill), before them
        chart_weeks = []
        for table in ("engagement", "hits"):
            rows = connection.execute(f"select distinct week from kaon.{table} order by 1").fetchall()  # noqa: S608
            chart_weeks.append([int(week) for (week,) in rows])
    week_numbers = chart_weeks[0]
    assert shown_tables == counts
    assert {"kaon.engagement", "kahuna.inapp_logs", "marts.kissmetrics_events"} <= set(shown_tables)

    shown_bookmarks = re.findall(r'<tr class="bookmark"><td>([^<]+)</td><td>([^<]+)</td>', dom)
    expected = []
    for path in sorted((demo_dir / "state").glob("*/state.json")):
        streams = json.loads(path.read_text())["completed"]["singer_state"]["bookmarks"]
        expected += [(path.parent.name, stream) for stream in sorted(streams)]
    assert [(html.unescape(a), html.unescape(b)) for a, b in shown_bookmarks] == expected
    assert ("dev:tap-duckdb-to-target-kissmetrics--warehouse", "marts-kissmetrics_events") in expected

    charts = re.findall(r'<svg role="img" aria-label="([^"]+)"(.*?)</svg>', dom, re.S)
    assert [label for label, _ in charts] == ["Weekly engagement (all buckets)", "Weekly hits (all paths)"]
    assert [body.count('class="bar') for _, body in charts] == [len(weeks) for weeks in chart_weeks]
    assert chart_weeks[1][-len(week_numbers) :] == week_numbers, "hits cover every listed week"
    assert len(chart_weeks[1]) > len(week_numbers), "and the weeks before them"
    # Each bar names its week's first day (Sunday, UTC) and number; the week still filling up is marked partial.
    today = datetime.now(timezone.utc).date()
    filling = (today - date(2012, 1, 1)).days // 7
    for (_, body), weeks in zip(charts, chart_weeks, strict=True):
        starts = [date(2012, 1, 1) + timedelta(days=7 * week) for week in weeks]
        assert re.findall(r'<text class="week-start"[^>]*>([^<]+)</text>', body) == [
            f"{start:%b} {start.day}" for start in starts
        ]
        assert re.findall(r'<text class="week-number"[^>]*>w(\d+)</text>', body) == [str(w) for w in weeks]
        partial = re.findall(r'<rect class="bar partial"[^>]*><title>week (\d+) \(from ([\d-]+), still filling', body)
        assert partial == ([(str(filling), (date(2012, 1, 1) + timedelta(days=7 * filling)).isoformat())]
                           if filling in week_numbers else [])  # fmt: skip
    assert filling in week_numbers, "the demo's emulator serves the current week"
    assert "The current week (pale) is still filling up: partial, not a drop." in dom
    assert "so more properties are kept than set beacons were sent" in dom
    assert re.search(r'<tr class="beacons"><td>events</td><td class="rows">[1-9]\d*</td>', dom)

    chromium("--screenshot=report.png", "--window-size=1200,1600", report.as_uri(), cwd=demo_dir)
    png = (demo_dir / "report.png").read_bytes()
    assert png_size(png) == (1200, 1600)
    assert len(png) > 20_000  # text, tables and bars; a blank page compresses to a few kilobytes


def test_a_port_in_use_stops_the_demo_with_one_line_naming_its_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(tmp_path / "demo", **{**FREE_PORTS, "KK_KAHUNA_PORT": str(port)})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"port in use on 127.0.0.1: {port} (kahuna)" in line
    assert "set KK_KAHUNA_PORT to a free port" in line
    assert "meltano" not in result.stdout  # stopped before any run


def test_a_port_that_is_no_number_names_its_variable(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", **{**FREE_PORTS, "KK_KISSMETRICS_PORT": "80O3"})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    expected = "KK_KISSMETRICS_PORT='80O3' is not a port: set it to a number from 1 to 65535 (0: any free port)"
    assert line == f"demo failed: {expected}"
