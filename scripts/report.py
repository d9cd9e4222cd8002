"""A one-page HTML picture of a DuckDB warehouse after a run: what was loaded, where the bookmarks stand.

``make demo`` writes it to ``output/demo/report.html``; on any warehouse file::

    .venv/bin/python scripts/report.py output/warehouse.duckdb --state-dir state --out output/report.html

The page has no script and loads nothing: tables (raw, staging, marts) with their row counts, the last
bookmark of each stream of each state ID, Kaon's weekly engagement and hits as bar charts (each bar labelled
with its week's first day, Sunday, UTC; the current week, still filling up, drawn pale and marked partial), and
the Kissmetrics beacons by kind (sent, and what Kissmetrics kept after deduplication) when the caller knows them.
Opens the file read-only.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from kk_orchestration.states import condensed_bookmark
from tap_kaon_insights.week_numbers import week_of, week_start

BAR_WIDTH, CHART_HEIGHT = 40, 180
PROPERTIES_NOTE = (
    "One set beacon (/s) carries several properties, and Kissmetrics keeps each property of each person on its "
    "own (deduplicated by person, name and timestamp), so more properties are kept than set beacons were sent."
)


def current_week(today: date) -> int:
    """The Kaon week ``today`` falls in (the one still filling up)."""
    return week_of(today)


@dataclass
class Warehouse:
    """What the report shows of one DuckDB file."""

    tables: list[tuple[str, str, str, int]]  # schema, name, kind, rows
    engagement: list[tuple[int, int]]  # week, engagement count (all buckets)
    hits: list[tuple[int, int]]  # week, hits (all paths)


@dataclass
class Beacons:
    """Kissmetrics beacons by kind: sent, and kept after Kissmetrics' deduplication."""

    sent: Mapping[str, int] = field(default_factory=dict)  # "events", "properties", "aliases"
    kept: Mapping[str, int] = field(default_factory=dict)


def read_warehouse(path: Path) -> Warehouse:
    """Tables with row counts, and Kaon's weekly totals when the Kaon tables are there."""
    with duckdb.connect(str(path), read_only=True) as connection:
        listed = connection.execute(
            "select table_schema, table_name, table_type from information_schema.tables order by 1, 2"
        ).fetchall()
        tables = [
            (schema, name, "view" if kind == "VIEW" else "table", _count(connection, schema, name))
            for schema, name, kind in listed
        ]
        names = {(schema, name) for schema, name, _, _ in tables}
        engagement = _weekly(connection, "engagement") if ("kaon", "engagement") in names else []
        hits = _weekly(connection, "hits") if ("kaon", "hits") in names else []
    return Warehouse(tables=tables, engagement=engagement, hits=hits)


def _count(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> int:
    row = connection.execute(f'select count(*) from "{schema}"."{name}"').fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _weekly(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, int]]:
    rows = connection.execute(f'select week, sum("count") from kaon."{table}" group by week order by week').fetchall()  # noqa: S608
    return [(int(week), int(total or 0)) for week, total in rows]


def read_bookmarks(state_dir: Path) -> list[tuple[str, str, str]]:
    """``(state ID, stream, bookmark)`` from a file state backend's ``<id>/state.json`` files."""
    found = []
    for path in sorted(state_dir.glob("*/state.json")):
        singer_state = json.loads(path.read_text()).get("completed", {}).get("singer_state", {})
        for stream, bookmark in sorted(singer_state.get("bookmarks", {}).items()):
            found.append((path.parent.name, stream, condensed_bookmark(bookmark)))
    return found


def bar_chart(title: str, points: Sequence[tuple[int, int]], label: str, *, today: date) -> str:
    """An inline SVG bar chart of ``(week, value)``: the value over each bar, the week's first day and number
    under it; the current week (still filling up) pale and marked partial."""
    if not points:
        return f"<h3>{html.escape(title)}</h3><p>No rows.</p>"
    top = max(value for _, value in points) or 1
    width = BAR_WIDTH * len(points) + 20
    filling = current_week(today)
    bars = []
    for index, (week, value) in enumerate(points):
        height = round(value / top * (CHART_HEIGHT - 56))
        x, y = 10 + index * BAR_WIDTH, CHART_HEIGHT - 34 - height
        middle = x + (BAR_WIDTH - 6) / 2
        first_day = week_start(week)
        partial = week == filling
        state = ", still filling up: partial" if partial else ""
        bars.append(
            f'<rect class="bar{" partial" if partial else ""}" x="{x}" y="{y}" width="{BAR_WIDTH - 6}" '
            f'height="{height}" fill="{"#a9c2de" if partial else "#3b6ea8"}">'
            f"<title>week {week} (from {first_day.isoformat()}{state}): {value} {html.escape(label)}</title></rect>"
            f'<text x="{middle}" y="{y - 3}" font-size="9" text-anchor="middle">{value}{"*" if partial else ""}</text>'
            f'<text class="week-start" x="{middle}" y="{CHART_HEIGHT - 20}" font-size="9" text-anchor="middle">'
            f"{first_day:%b} {first_day.day}</text>"
            f'<text class="week-number" x="{middle}" y="{CHART_HEIGHT - 8}" font-size="8" fill="#666" '
            f'text-anchor="middle">w{week}</text>'
        )
    note = "Each bar is one week, labelled with its first day (Sunday, UTC) and its number."
    if any(week == filling for week, _ in points):
        note += " * The current week (pale) is still filling up: partial, not a drop."
    legend = f'<p class="chart-note">{note}</p>'
    return (
        f"<h3>{html.escape(title)}</h3>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {width} {CHART_HEIGHT}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>{legend}'
    )


def render(
    warehouse: Warehouse,
    bookmarks: Sequence[tuple[str, str, str]],
    beacons: Beacons | None,
    source: str,
    *,
    moment: datetime | None = None,
) -> str:
    """The page, as of ``moment`` (now by default: it decides which Kaon week is still filling up)."""
    moment = moment or datetime.now(timezone.utc)
    now = moment.strftime("%Y-%m-%d %H:%M UTC")
    table_rows = "".join(
        f'<tr class="warehouse-table"><td>{html.escape(schema)}.{html.escape(name)}</td><td>{kind}</td>'
        f'<td class="rows">{rows}</td></tr>'
        for schema, name, kind, rows in warehouse.tables
    )
    bookmark_rows = "".join(
        f'<tr class="bookmark"><td>{html.escape(state_id)}</td><td>{html.escape(stream)}</td>'
        f"<td><code>{html.escape(bookmark)}</code></td></tr>"
        for state_id, stream, bookmark in bookmarks
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Warehouse report</title>',
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}td.rows{text-align:right}"
        "code{font-size:85%}</style></head><body>",
        f"<h1>Warehouse report</h1><p>{html.escape(source)}, {now}.</p>",
        "<h2>Tables</h2>",
        f"<table><tr><th>table</th><th>kind</th><th>rows</th></tr>{table_rows}</table>",
        "<h2>Bookmarks</h2>",
        (
            f"<table><tr><th>state ID</th><th>stream</th><th>last bookmark</th></tr>{bookmark_rows}</table>"
            if bookmarks
            else "<p>No state yet.</p>"
        ),
        "<h2>Kaon, by week</h2>",
        bar_chart("Weekly engagement (all buckets)", warehouse.engagement, "engagements", today=moment.date()),
        bar_chart("Weekly hits (all paths)", warehouse.hits, "hits", today=moment.date()),
    ]
    if beacons is not None:
        kinds = ("events", "properties", "aliases")
        beacon_rows = "".join(
            f'<tr class="beacons"><td>{kind}</td><td class="rows">{beacons.sent.get(kind, 0)}</td>'
            f'<td class="rows">{beacons.kept.get(kind, 0)}</td></tr>'
            for kind in kinds
        )
        parts += [
            "<h2>Kissmetrics beacons</h2>",
            f"<table><tr><th>kind</th><th>sent</th><th>kept (deduplicated)</th></tr>{beacon_rows}</table>",
            f'<p class="beacons-note">{html.escape(PROPERTIES_NOTE)}</p>',
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    warehouse_path: Path, out: Path, *, state_dir: Path | None = None, beacons: Beacons | None = None
) -> Path:
    """Read the warehouse (and the state files), write the page to ``out``."""
    warehouse = read_warehouse(warehouse_path)
    bookmarks = read_bookmarks(state_dir) if state_dir is not None and state_dir.is_dir() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(warehouse, bookmarks, beacons, str(warehouse_path)), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse", type=Path, help="the DuckDB file (opened read-only)")
    parser.add_argument("--state-dir", type=Path, help="a file state backend's directory (e.g. state)")
    parser.add_argument("--out", type=Path, default=Path("output/report.html"), help="where to write the page")
    parser.add_argument(
        "--kissmetrics-stats",
        type=Path,
        help="the Kissmetrics emulator's GET /_emulator/stats answer, saved as JSON: adds the beacons by kind",
    )
    options = parser.parse_args(argv)
    if not options.warehouse.is_file():
        print(f"report: no DuckDB file at {options.warehouse}: run a load first (make demo)", file=sys.stderr)
        return 1
    beacons = None
    if options.kissmetrics_stats is not None:
        stats = json.loads(options.kissmetrics_stats.read_text())
        raw = stats["raw"]
        beacons = Beacons(
            sent={"events": raw["e"], "properties": raw["s"], "aliases": raw["a"]},
            kept={kind: stats["dedup"][kind] for kind in ("events", "properties", "aliases")},
        )
    try:
        path = write_report(options.warehouse, options.out, state_dir=options.state_dir, beacons=beacons)
    except duckdb.Error as error:
        print(f"report: cannot read {options.warehouse}: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
