"""``meltano run`` of the Kaon jobs: exact tables in DuckDB and PostgreSQL, upserts, clicks into Kissmetrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import psycopg
import pytest

from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import (
    KAON_STREAMS,
    MeltanoProject,
    kill_process_group,
    primary_key_columns,
    record_counts,
    wait_for,
)
from tests.support.datasets import FIXED_NOW

# The expected rows of the tap's own tests: the same emulator data set (tests/conftest.py's SMALL_DATA).
from tests.tap_kaon_insights.kaon_tap_helpers import (
    dataset,
    expected_clicks,
    expected_path_hits,
    expected_weekly,
    hit_weeks,
    listed_weeks,
)

KAON_STATE_ID = "dev:tap-kaon-insights-to-target-duckdb"
CLICKS_STATE_ID = "dev:tap-kaon-insights--clicks-to-target-kissmetrics--kaon-clicks"
WEEKLY_ENDPOINTS = ("engagement", "uid", "countries", "languages")
# Sunday 2026-11-22 started week 777: week 776 completes and a new week appears.
LATER = FIXED_NOW + timedelta(days=5)
# Per table: the key columns, then the value columns compared.
COLUMNS = {
    "weeks": (("client", "week"), ("weekname", "is_current")),
    "engagement": (("client", "week", "bucket"), ("count",)),
    "devices": (("client", "week", "device_uid"), ()),
    "countries": (("client", "week", "code"), ("count",)),
    "languages": (("client", "week", "code"), ("count",)),
    "hits": (("client", "week", "path"), ("count",)),
    "path_hits": (("client", "path", "week"), ("count",)),
    "external_id_hits": (("client", "external_id", "timestamp_unix", "sequence_in_second"), ("path",)),
}

pytestmark = pytest.mark.meltano

Table = dict[tuple[Any, ...], tuple[Any, ...]]


def kaon_paths(data: KaonDataset) -> list[str]:
    """The paths the tests configure: three hard cases (spaces, unicode, `+`, `%`) and a plain one."""
    return [*[path for path in data.path_names if "%" in path][:3], "home"]


def kaon_settings(kaon: EmulatorProcess, data: KaonDataset) -> dict[str, str]:
    """Point the dev environment's Kaon tap at this emulator, with the test paths and every external ID."""
    return {
        "TAP_KAON_INSIGHTS_API_URL": f"{kaon.url}/api",
        "TAP_KAON_INSIGHTS_PATHS": json.dumps(kaon_paths(data)),
        "TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps(data.external_id_names),
        "TAP_KAON_INSIGHTS_EXTERNAL_ID_PAGE_SIZE": "20",
        "TAP_KAON_INSIGHTS_MAX_CONCURRENCY": "3",
    }


def expected_tables(data: KaonDataset) -> dict[str, Table]:
    """Every Kaon table as {key: values}: what must land, from the tap tests' expected rows."""
    weekly = ("weeks", "engagement", "devices", "countries", "languages", "hits")
    rows = {stream: expected_weekly(data, stream, listed_weeks(data)) for stream in weekly}
    rows["hits"] = expected_weekly(data, "hits", hit_weeks(data, 417))  # hit counts go back to the launch
    rows["path_hits"] = [row for path in kaon_paths(data) for row in expected_path_hits(data, path)]
    rows["external_id_hits"] = [
        row for external_id in data.external_id_names for row in expected_clicks(data, external_id)
    ]
    tables: dict[str, Table] = {}
    for stream, stream_rows in rows.items():
        keys, values = COLUMNS[stream]
        tables[stream] = {tuple(row[k] for k in keys): tuple(row[v] for v in values) for row in stream_rows}
    return tables


def loaded_table(query: Callable[[str], list[tuple[Any, ...]]], schema: str, stream: str) -> Table:
    """One loaded table as {key: values}; fails on a duplicate key (an upsert that appended)."""
    keys, values = COLUMNS[stream]
    table: Table = {}
    for row in query(f"select {', '.join(keys + values)} from {schema}.{stream}"):  # noqa: S608 (our names)
        key = tuple(row[: len(keys)])
        assert key not in table, f"{stream}: duplicate key {key}"
        table[key] = tuple(row[len(keys) :])
    return table


def assert_tables(query: Callable[[str], list[tuple[Any, ...]]], expected: dict[str, Table], schema: str) -> None:
    """Each table holds exactly the expected keys and values."""
    for stream in KAON_STREAMS:
        loaded = loaded_table(query, schema, stream)
        assert set(loaded) == set(expected[stream]), f"{stream}: keys differ"
        assert loaded == expected[stream], f"{stream}: values differ"


def weeks_requested(kaon: EmulatorProcess) -> set[int]:
    """Weeks the weekly endpoints were asked for."""
    return {
        int(request["query"]["week"])
        for request in kaon.requests()
        if request["path"].rsplit("/", 1)[-1] in WEEKLY_ENDPOINTS and "week" in request["query"]
    }


def test_kaon_tables_land_exactly_then_the_current_week_is_upserted(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon")
    data = dataset()
    project.settings.update(kaon_settings(kaon, data))
    expected = expected_tables(data)

    first = project.run("run", "kaon-to-warehouse")

    assert_tables(project.query, expected, "kaon")
    assert dict(record_counts(first.stderr)) == {stream: len(expected[stream]) for stream in KAON_STREAMS}
    bookmarks = project.state(KAON_STATE_ID)["completed"]["singer_state"]["bookmarks"]
    assert bookmarks["engagement"]["replication_key_value"] == data.current_week
    clicks_state = {p["context"]["external_id"]: p for p in bookmarks["external_id_hits"]["partitions"]}
    assert set(clicks_state) == set(data.external_id_names)
    for external_id, partition in clicks_state.items():
        assert partition["replication_key_value"] == data.clickstream(external_id)[-1]["timestamp"]

    # Five days later: week 776 is complete, week 777 has begun, the clickstreams have grown.
    kaon.set_clock(now=LATER.isoformat())
    kaon.reset()
    second = project.run("run", "kaon-to-warehouse")

    later = data.at(LATER)
    assert later.current_week == data.current_week + 1
    assert weeks_requested(kaon) == {data.current_week, later.current_week}
    later_expected = expected_tables(later)
    assert_tables(project.query, later_expected, "kaon")
    counts = record_counts(second.stderr)
    assert counts["engagement"] == len(later.engagement(data.current_week)) + len(later.engagement(later.current_week))
    assert counts["devices"] == len(later.device_uids(data.current_week)) + len(later.device_uids(later.current_week))
    new_clicks = len(later_expected["external_id_hits"]) - len(expected["external_id_hits"])
    assert new_clicks > 0
    # the bookmarked second is re-read, its already-emitted records skipped: only the new clicks leave the tap
    assert counts["external_id_hits"] == new_clicks
    current = [key for key in expected["engagement"] if key[1] == data.current_week]
    assert any(later_expected["engagement"][key] > expected["engagement"][key] for key in current)


def expected_click_events(data: KaonDataset) -> set[tuple[str, str, int]]:
    """(person, event, time) of each click as meltano.yml's kaon-clicks mapping turns it into an event."""
    return {
        (external_id, f"Viewed {unquote(click['path'])}", click["timestamp"])
        for external_id in data.external_id_names
        for click in data.clickstream(external_id)
    }


def test_kaon_clicks_replayed_into_kissmetrics_once_then_only_new_ones(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon")
    kissmetrics = start_emulator("kissmetrics")
    data = dataset()
    project.settings.update({**kaon_settings(kaon, data), "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url})

    first = project.run("run", "kaon-clicks-to-kissmetrics")

    assert set(record_counts(first.stderr)) == {"external_id_hits"}, "the clicks job reads the clickstreams only"
    assert {request["path"].rsplit("/", 1)[-1] for request in kaon.requests()} == {"extid"}
    dedup = kissmetrics.control("dedup")
    assert {(e["person"], e["event"], e["time"]) for e in dedup["events"]} == expected_click_events(data)
    sent_first = kissmetrics.control("stats")["raw"]["e"]
    assert sent_first == sum(len(data.clickstream(i)) for i in data.external_id_names)
    assert project.state(CLICKS_STATE_ID)["completed"]["singer_state"]["bookmarks"]["external_id_hits"]

    kaon.set_clock(now=LATER.isoformat())
    project.run("run", "kaon-clicks-to-kissmetrics")

    later = data.at(LATER)
    dedup = kissmetrics.control("dedup")
    assert {(e["person"], e["event"], e["time"]) for e in dedup["events"]} == expected_click_events(later)
    sent_second = kissmetrics.control("stats")["raw"]["e"] - sent_first
    new_clicks = sum(len(later.clickstream(i)) - len(data.clickstream(i)) for i in data.external_id_names)
    assert new_clicks > 0
    assert sent_second == new_clicks, "the second run sends the new clicks only"


#: Every open reading at its hardest: extid caps answers at 40 records whatever limit asks (the run of 30
#: same-second clicks still fits), its start is exclusive and its parameter is external_id; weeks leaves the
#: filling week out; hits?path=P knows decoded paths.
ADVERSARIAL_READINGS = (
    *("--extid-cap", "40", "--extid-start", "exclusive", "--extid-param", "external_id"),
    *("--weeks-list", "complete_only", "--path-form", "decoded"),
)


def test_kaon_tables_land_exactly_under_the_most_adversarial_readings(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon", *ADVERSARIAL_READINGS)
    data = dataset()
    settings = kaon_settings(kaon, data)
    del settings["TAP_KAON_INSIGHTS_EXTERNAL_ID_PAGE_SIZE"]  # the advised default limit, 1000, silently capped
    project.settings.update(settings)

    first = project.run("run", "kaon-to-warehouse")

    expected = expected_tables(data)
    assert_tables(project.query, expected, "kaon")
    assert dict(record_counts(first.stderr)) == {stream: len(expected[stream]) for stream in KAON_STREAMS}
    assert {int(r["query"]["limit"]) for r in kaon.requests() if r["path"].endswith("/extid")} == {1000}

    # Week 776 completes and week 777, not listed, fills: both are re-read, the new clicks come once.
    kaon.set_clock(now=LATER.isoformat())
    kaon.reset()
    second = project.run("run", "kaon-to-warehouse")

    later = data.at(LATER)
    assert weeks_requested(kaon) == {data.current_week, later.current_week}
    later_expected = expected_tables(later)
    assert_tables(project.query, later_expected, "kaon")
    new_clicks = len(later_expected["external_id_hits"]) - len(expected["external_id_hits"])
    assert record_counts(second.stderr)["external_id_hits"] == new_clicks > 0
    bookmarks = project.state(KAON_STATE_ID)["completed"]["singer_state"]["bookmarks"]
    assert bookmarks["engagement"]["replication_key_value"] == bookmarks["weeks"]["replication_key_value"] == 777


@pytest.mark.postgres
def test_kaon_through_postgres_lands_exactly_and_upserts(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kaon = start_emulator("kaon")
    data = dataset()
    project.settings.update(kaon_settings(kaon, data))

    def query(sql: str) -> list[tuple[Any, ...]]:
        return warehouse.execute(sql).fetchall()

    project.run("run", "kaon-to-postgres")
    assert_tables(query, expected_tables(data), "kaon")

    kaon.set_clock(now=LATER.isoformat())
    project.run("run", "kaon-to-postgres")
    assert_tables(query, expected_tables(data.at(LATER)), "kaon")
    assert primary_key_columns(warehouse, "kaon.external_id_hits") == [
        "client",
        "external_id",
        "sequence_in_second",
        "timestamp_unix",
    ]


def test_killed_kaon_load_then_rerun_holds_exactly_the_data(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon", "--latency-ms", "40")
    data = dataset()
    project.settings.update({**kaon_settings(kaon, data), "TAP_KAON_INSIGHTS_MAX_CONCURRENCY": "2"})

    pipeline = project.start("run", "kaon-to-warehouse", log_path=project.workdir / "killed.log")
    wait_for(lambda: len(kaon.requests()) >= 40 or pipeline.poll() is not None)
    assert pipeline.poll() is None, "the run ended before it could be killed"
    kill_process_group(pipeline)

    kaon.set_faults(latency_ms=0.0)
    # Meltano still sees the killed run as running: --force is the documented recovery.
    project.run("run", "--force", "kaon-to-warehouse")

    assert_tables(project.query, expected_tables(data), "kaon")
