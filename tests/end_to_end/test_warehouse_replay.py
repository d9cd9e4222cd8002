"""The whole loop on DuckDB and on PostgreSQL: load -> dbt build -> replay the marts -> Kissmetrics.

After each replay the emulator's deduplicated view is exactly what the three marts hold; a second
round (new source data, loaded into the same warehouse, built, replayed) sends only the new rows;
a replay killed mid-way and run again leaves the view exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import MeltanoProject, expected_events, kill_process_group, wait_for
from tests.end_to_end.replay_helpers import (
    Marts,
    Query,
    assert_view_matches_marts,
    beacon_key,
    beacons_of,
    read_marts,
    received_beacons,
    unix,
)
from tests.support.datasets import FIXED_NOW

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 80
KAON_ARGS = ("--weeks-before-now", "2", "--paths", "8", "--external-ids", "2", "--clicks-per-id", "200")
KAON = {"weeks_before_now": 2, "paths": 8, "external_ids": 2, "clicks_per_id": 200}
# The second round: Kahuna's today has grown by two hours of logs, the Kaon clickstreams by a day.
KAHUNA_LATER = FIXED_NOW + timedelta(hours=2)
KAON_LATER = FIXED_NOW + timedelta(days=1)

pytestmark = pytest.mark.meltano


@dataclass
class Warehouse:
    """One warehouse: its loader, its replay job (meltano.yml) and a query on it."""

    name: str
    loader: str
    replay_job: str
    query: Query


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_leg(request: pytest.FixtureRequest, project: MeltanoProject) -> Iterator[Warehouse]:
    """DuckDB (the default warehouse) or PostgreSQL (the test server, its schemas dropped first)."""
    if request.param == "duckdb":
        yield Warehouse("duckdb", "target-duckdb", "warehouse-to-kissmetrics", project.query)
        return
    connection: psycopg.Connection = request.getfixturevalue("warehouse")

    def query(sql: str) -> list[tuple]:
        return connection.execute(sql).fetchall()

    yield Warehouse("postgres", "target-postgres", "postgres-to-kissmetrics", query)


@dataclass
class Sources:
    """The three emulators of one test and the data the sources serve."""

    kaon: EmulatorProcess
    kahuna: EmulatorProcess
    kissmetrics: EmulatorProcess
    kaon_data: KaonDataset
    kahuna_data: KahunaDataset


def start_sources(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], *kissmetrics_args: str
) -> Sources:
    """Start the emulators and point the dev environment's plugins at them."""
    kaon = start_emulator("kaon", *KAON_ARGS)
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kissmetrics = start_emulator("kissmetrics", *kissmetrics_args)
    kaon_data = KaonDataset(now=FIXED_NOW, **KAON)
    project.settings.update(
        {
            "TAP_KAON_INSIGHTS_API_URL": f"{kaon.url}/api",
            "TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps(kaon_data.external_id_names),
            "TAP_KAON_INSIGHTS_PATHS": "[]",
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url,
        }
    )
    kahuna_data = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    return Sources(kaon, kahuna, kissmetrics, kaon_data, kahuna_data)


def load(project: MeltanoProject, warehouse: Warehouse, *taps: str) -> None:
    """Load the taps into the warehouse. The replay job builds the marts first; the load jobs, which also
    end with the dbt build, run in test_duckdb_pipeline.py, test_kaon_pipeline.py and test_postgres_pipeline.py."""
    for tap in taps or ("tap-kaon-insights", "tap-kahuna-logs"):
        project.run("run", tap, warehouse.loader)


def assert_marts_hold_the_sources(marts: Marts, kaon_data: KaonDataset, kahuna_data: KahunaDataset) -> None:
    """The marts are the sources' events: every Kahuna action of a known user, every Kaon click."""
    events = marts["kissmetrics_events"]
    kahuna = {(r["person"], r["event"], unix(r["timestamp"])) for r in events if r["source"].startswith("kahuna")}
    assert kahuna == expected_events(kahuna_data)
    clicks = {(r["person"], r["event"], unix(r["timestamp"])) for r in events if r["source"] == "kaon_click"}
    assert clicks == {
        (external_id, f"Viewed {click['path']}", click["timestamp"])
        for external_id in kaon_data.external_id_names
        for click in kaon_data.clickstream(external_id)
    }
    assert marts["kissmetrics_people"], "no person properties"
    assert {r["source"] for r in marts["kissmetrics_aliases"]} == {"kahuna_merge", "kahuna_credential"}


def test_replay_sends_exactly_the_marts_then_only_the_new_rows(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse_leg: Warehouse
) -> None:
    sources = start_sources(project, start_emulator)

    load(project, warehouse_leg)
    project.run("run", warehouse_leg.replay_job)

    first = read_marts(warehouse_leg.query)
    assert_marts_hold_the_sources(first, sources.kaon_data, sources.kahuna_data)
    assert_view_matches_marts(sources.kissmetrics, first)
    sent_first = received_beacons(sources.kissmetrics)
    assert len(sent_first) == sum(len(rows) for rows in first.values()), "one beacon per mart row"

    # New source data, loaded into the same warehouse that dbt and the replay opened (the round trip).
    sources.kahuna.set_clock(now=KAHUNA_LATER.isoformat())
    sources.kaon.set_clock(now=KAON_LATER.isoformat())
    load(project, warehouse_leg)
    project.run("run", warehouse_leg.replay_job)

    second = read_marts(warehouse_leg.query)
    assert_marts_hold_the_sources(second, sources.kaon_data.at(KAON_LATER), sources.kahuna_data.at(KAHUNA_LATER))
    for mart, rows in first.items():
        assert second[mart][: len(rows)] == rows, f"{mart}: a row replayed before changed"
    new_rows = sum(len(second[mart]) - len(rows) for mart, rows in first.items())
    assert new_rows > 0
    assert_view_matches_marts(sources.kissmetrics, second)
    # The second replay sends the new rows, plus the one row at each mart's bookmark (the replication
    # filter is inclusive, replay_sequence >= bookmark): nothing else from the first round.
    last_sequence = {mart: rows[-1]["replay_sequence"] for mart, rows in first.items()}
    expected = beacons_of(second, lambda mart, rows: [r for r in rows if r["replay_sequence"] >= last_sequence[mart]])
    sent_second = received_beacons(sources.kissmetrics, offset=len(sent_first))
    assert sum(expected.values()) == new_rows + len(first)
    assert sorted(map(beacon_key, sent_second), key=repr) == sorted(expected.elements(), key=repr)

    # A replay with nothing new (no load, dbt builds the same marts) sends only the documented bookmark row
    # of each mart, which Kissmetrics keeps once.
    project.run("run", warehouse_leg.replay_job)
    assert read_marts(warehouse_leg.query) == second, "nothing new: the marts are unchanged"
    at_bookmark = {mart: rows[-1]["replay_sequence"] for mart, rows in second.items()}
    only_bookmarks = beacons_of(
        second, lambda mart, rows: [r for r in rows if r["replay_sequence"] >= at_bookmark[mart]]
    )
    sent_third = received_beacons(sources.kissmetrics, offset=len(sent_first) + len(sent_second))
    assert sum(only_bookmarks.values()) == len(second), "one row per mart"
    assert sorted(map(beacon_key, sent_third), key=repr) == sorted(only_bookmarks.elements(), key=repr)
    assert_view_matches_marts(sources.kissmetrics, second)


def test_replay_killed_mid_way_then_run_again_leaves_the_view_exact(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess], warehouse_leg: Warehouse
) -> None:
    sources = start_sources(project, start_emulator, "--latency-ms", "5")
    project.settings["TARGET_KISSMETRICS_MAX_CONCURRENCY"] = "4"
    load(project, warehouse_leg, "tap-kahuna-logs")

    replay = project.start("run", warehouse_leg.replay_job, log_path=project.workdir / "killed-replay.log")
    wait_for(lambda: sources.kissmetrics.control("stats")["raw"]["total"] >= 200 or replay.poll() is not None)
    assert replay.poll() is None, "the replay ended before it could be killed"
    kill_process_group(replay)
    marts = read_marts(warehouse_leg.query)
    assert sources.kissmetrics.control("stats")["raw"]["total"] < sum(len(rows) for rows in marts.values())

    sources.kissmetrics.set_faults(latency_ms=0.0)
    project.run("run", "--force", warehouse_leg.replay_job)

    assert read_marts(warehouse_leg.query) == marts, "dbt build changed no row: nothing new arrived"
    assert_view_matches_marts(sources.kissmetrics, marts)
