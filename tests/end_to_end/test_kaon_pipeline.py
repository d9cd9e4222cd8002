"""``meltano run`` of the Kaon jobs: exact tables in DuckDB and PostgreSQL, upserts, clicks into Kissmetrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import psycopg
import pytest
from meltano_helpers import FIXED_NOW, KAON_STREAMS, MeltanoProject, kill_process_group, record_counts, wait_for

from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess

CLIENT = "demo-client"
# The data set of tests/conftest.py's SMALL_DATA["kaon"], which start_emulator("kaon") serves.
SMALL = {"weeks_before_now": 12, "devices_per_week": 40, "paths": 12, "external_ids": 3, "clicks_per_id": 250}
KAON_STATE_ID = "dev:tap-kaon-insights-to-target-duckdb"
CLICKS_STATE_ID = "dev:tap-kaon-insights--clicks-to-target-kissmetrics--kaon-clicks"
POSTGRES_URL = "postgresql://kk:kk-dev-password@127.0.0.1:55432/kk_warehouse"
WEEKLY_ENDPOINTS = ("engagement", "uid", "countries", "languages")
# Sunday 2026-11-22 started week 777: week 776 completes and a new week appears.
LATER = FIXED_NOW + timedelta(days=5)

pytestmark = pytest.mark.meltano

Table = dict[tuple[Any, ...], Any]


def kaon_dataset() -> KaonDataset:
    """What the emulator serves at FIXED_NOW (``.at(later)`` for a later clock)."""
    return KaonDataset(seed=42, client=CLIENT, now=FIXED_NOW, **SMALL)


def kaon_settings(kaon: EmulatorProcess, data: KaonDataset) -> dict[str, str]:
    """Point the dev environment's Kaon tap at this emulator, with paths and IDs that include the hard cases."""
    paths = [*[path for path in data.path_names if "%" in path][:3], "home"]
    return {
        "TAP_KAON_INSIGHTS_API_URL": f"{kaon.url}/api",
        "TAP_KAON_INSIGHTS_PATHS": json.dumps(paths),
        "TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps(data.external_id_names),
        "TAP_KAON_INSIGHTS_EXTERNAL_ID_PAGE_SIZE": "20",
        "TAP_KAON_INSIGHTS_MAX_CONCURRENCY": "3",
    }


def expected_tables(data: KaonDataset, paths: list[str]) -> dict[str, Table]:
    """Every Kaon table as {key: value}: the values that must land."""
    weeks = data.full_weeks
    clicks: Table = {}
    for external_id in data.external_id_names:
        previous, sequence = None, 0
        for click in data.clickstream(external_id):
            sequence = sequence + 1 if click["timestamp"] == previous else 0
            previous = click["timestamp"]
            clicks[(CLIENT, external_id, click["timestamp"], sequence)] = click["path"]
    return {
        "weeks": {(CLIENT, week): (data.weekname(week), week == data.current_week) for week in weeks},
        "engagement": {
            (CLIENT, week, item["bucket"]): item["count"] for week in weeks for item in data.engagement(week)
        },
        "devices": {(CLIENT, week, uid): None for week in weeks for uid in data.device_uids(week)},
        "countries": {(CLIENT, week, code): n for week in weeks for code, n in data.countries(week).items()},
        "languages": {(CLIENT, week, code): n for week in weeks for code, n in data.languages(week).items()},
        "hits": {(CLIENT, week, hit["path"]): hit["count"] for week in weeks for hit in data.hits_for_week(week)},
        "path_hits": {(CLIENT, path, hit["week"]): hit["count"] for path in paths for hit in data.path_history(path)},
        "external_id_hits": clicks,
    }


QUERIES = {
    "weeks": "select client, week, weekname, is_current from {schema}.weeks",
    "engagement": "select client, week, bucket, count from {schema}.engagement",
    "devices": "select client, week, device_uid, null from {schema}.devices",
    "countries": "select client, week, code, count from {schema}.countries",
    "languages": "select client, week, code, count from {schema}.languages",
    "hits": "select client, week, path, count from {schema}.hits",
    "path_hits": "select client, path, week, count from {schema}.path_hits",
    "external_id_hits": (
        "select client, external_id, timestamp_unix, sequence_in_second, path from {schema}.external_id_hits"
    ),
}
KEY_WIDTH = {"weeks": 2, "external_id_hits": 4}


def as_table(stream: str, rows: list[tuple[Any, ...]]) -> Table:
    """Rows as {key: value}; fails on a duplicate key (an upsert that appended)."""
    width = KEY_WIDTH.get(stream, 3)
    table: Table = {}
    for row in rows:
        key = tuple(int(v) if isinstance(v, int) else v for v in row[:width])
        assert key not in table, f"{stream}: duplicate key {key}"
        rest = row[width:]
        table[key] = rest[0] if len(rest) == 1 else tuple(rest)
    return table


def assert_tables(query: Callable[[str], list[tuple[Any, ...]]], expected: dict[str, Table], schema: str) -> None:
    """Each table holds exactly the expected keys and values."""
    for stream in KAON_STREAMS:
        loaded = as_table(stream, query(QUERIES[stream].format(schema=schema)))
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
    data = kaon_dataset()
    settings = kaon_settings(kaon, data)
    project.settings.update(settings)
    paths = json.loads(settings["TAP_KAON_INSIGHTS_PATHS"])
    expected = expected_tables(data, paths)

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
    later_expected = expected_tables(later, paths)
    assert_tables(project.query, later_expected, "kaon")
    counts = record_counts(second.stderr)
    assert counts["engagement"] == len(later.engagement(data.current_week)) + len(later.engagement(later.current_week))
    assert counts["devices"] == len(later.device_uids(data.current_week)) + len(later.device_uids(later.current_week))
    new_clicks = len(later_expected["external_id_hits"]) - len(expected["external_id_hits"])
    assert new_clicks > 0
    # the bookmarked second is re-read, its already-emitted records skipped: only the new clicks leave the tap
    assert counts["external_id_hits"] == new_clicks
    grown = [key for key in expected["engagement"] if key[1] == data.current_week and later_expected["engagement"][key]]
    assert any(later_expected["engagement"][key] > expected["engagement"][key] for key in grown)


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
    data = kaon_dataset()
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


@pytest.fixture
def warehouse() -> Iterator[psycopg.Connection]:
    """A connection to the test warehouse with schema kaon dropped first."""
    try:
        connection = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"no PostgreSQL on 127.0.0.1:55432 ({error}): run `make postgres` (make test does it)")
    connection.execute("DROP SCHEMA IF EXISTS kaon CASCADE")
    yield connection
    connection.close()


@pytest.mark.postgres
def test_kaon_through_postgres_lands_exactly_and_upserts(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse: psycopg.Connection
) -> None:
    kaon = start_emulator("kaon")
    data = kaon_dataset()
    settings = kaon_settings(kaon, data)
    project.settings.update(settings)
    paths = json.loads(settings["TAP_KAON_INSIGHTS_PATHS"])

    project.run("run", "kaon-to-postgres")
    assert_tables(lambda sql: warehouse.execute(sql).fetchall(), expected_tables(data, paths), "kaon")

    kaon.set_clock(now=LATER.isoformat())
    project.run("run", "kaon-to-postgres")
    assert_tables(lambda sql: warehouse.execute(sql).fetchall(), expected_tables(data.at(LATER), paths), "kaon")
    primary_key = warehouse.execute(
        "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'kaon.external_id_hits'::regclass AND i.indisprimary"
    ).fetchone()
    assert primary_key == (["client", "external_id", "sequence_in_second", "timestamp_unix"],)


def test_killed_kaon_load_then_rerun_holds_exactly_the_data(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kaon = start_emulator("kaon", "--latency-ms", "40")
    data = kaon_dataset()
    settings = kaon_settings(kaon, data)
    project.settings.update({**settings, "TAP_KAON_INSIGHTS_MAX_CONCURRENCY": "2"})

    pipeline = project.start("run", "kaon-to-warehouse", log_path=project.workdir / "killed.log")
    wait_for(lambda: len(kaon.requests()) >= 40 or pipeline.poll() is not None)
    assert pipeline.poll() is None, "the run ended before it could be killed"
    kill_process_group(pipeline)

    kaon.set_faults(latency_ms=0.0)
    # Meltano still sees the killed run as running: --force is the documented recovery.
    project.run("run", "--force", "kaon-to-warehouse")

    assert_tables(project.query, expected_tables(data, json.loads(settings["TAP_KAON_INSIGHTS_PATHS"])), "kaon")
