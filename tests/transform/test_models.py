"""The dbt project on DuckDB: typed staging, marts that hold exactly the sources' events, people and aliases,
append-only builds, dbt tests that catch a wrong mart, and a warehouse with nothing loaded yet."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.transform.transform_helpers import (
    DbtRun,
    RawWarehouse,
    expected_aliases,
    expected_credentials,
    expected_events,
    expected_people,
    run_dbt,
)

pytestmark = pytest.mark.meltano

STAGING_MODELS = {
    *(f"stg_kahuna__{name}" for name in ("inapp_logs", "push_logs", "email_logs", "user_merge_logs", "credentials")),
    *(f"stg_kaon__{name}" for name in ("weeks", "engagement", "devices", "countries", "languages", "hits")),
    "stg_kaon__path_hits",
    "stg_kaon__external_id_hits",
}
MARTS = {"kissmetrics_events", "kissmetrics_people", "kissmetrics_aliases"}


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a DuckDB file (read-only)."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@dataclass
class Built:
    """A copy of the loaded warehouse after one dbt build."""

    path: Path
    run: DbtRun


@pytest.fixture(scope="module")
def built(raw_warehouse: RawWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The loaded warehouse, built once for this module's read-only checks."""
    workdir = tmp_path_factory.mktemp("built")
    path = workdir / "warehouse.duckdb"
    shutil.copyfile(raw_warehouse.path, path)
    return Built(path, run_dbt(path, workdir, "build"))


def test_build_runs_every_model_and_passes_every_test(built: Built) -> None:
    assert built.run.returncode == 0, built.run.output[-3000:]
    models = {name for name in built.run.statuses if name in STAGING_MODELS | MARTS}
    assert models == STAGING_MODELS | MARTS
    tests = {name: status for name, status in built.run.statuses.items() if name not in models}
    assert len(tests) > 50
    assert set(tests.values()) == {"pass"}, {name: status for name, status in tests.items() if status != "pass"}
    # every model has tests
    for model in STAGING_MODELS | MARTS:
        assert any(model in name for name in tests), f"{model} has no dbt test"


def column_types(path: Path, schema: str, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of one table or view."""
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = $2",
            (schema, table),
        ).fetchall()
    return dict(rows)


def test_staging_types_timestamps_with_time_zone_dates_and_integers(built: Built) -> None:
    inapp = column_types(built.path, "staging", "stg_kahuna__inapp_logs")
    assert (inapp["logged_at"], inapp["log_date"], inapp["log_position"]) == (
        "TIMESTAMP WITH TIME ZONE",
        "DATE",
        "BIGINT",
    )
    raw = column_types(built.path, "kahuna", "inapp_logs")
    assert (raw["timestamp"], raw["log_date"]) == ("TIMESTAMP", "VARCHAR"), "target-duckdb's types changed"
    engagement = column_types(built.path, "staging", "stg_kaon__engagement")
    assert (engagement["week"], engagement["week_start"], engagement["count"]) == ("BIGINT", "DATE", "BIGINT")
    clicks = column_types(built.path, "staging", "stg_kaon__external_id_hits")
    assert clicks["clicked_at"] == "TIMESTAMP WITH TIME ZONE"
    # the instant is kept: the first log of a day is at 00:00 UTC of its log_date, whatever the session's zone
    first = query(
        built.path,
        "set timezone = 'America/New_York';"
        " select epoch(logged_at), epoch(cast(log_date as timestamp)) from staging.stg_kahuna__inapp_logs"
        " where log_position = 0 order by log_date limit 1",
    )
    assert first[0][0] == first[0][1]


def test_staging_has_one_row_per_key_and_every_credential_unpacked(built: Built, raw_warehouse: RawWarehouse) -> None:
    for category, table in (("inapp", "inapp_logs"), ("push", "push_logs"), ("user_merge", "user_merge_logs")):
        keys = query(built.path, f"select log_date, log_position from staging.stg_kahuna__{table}")  # noqa: S608
        expected = {
            (day, position)
            for day in raw_warehouse.kahuna.days
            for position in range(len(raw_warehouse.kahuna.records(category, day)))
        }
        assert len(keys) == len(set(keys)) == len(expected)
        assert set(keys) == expected
    credentials = query(
        built.path,
        "select log_id, credential_list, credential_position, user_id, credential_type, credential_value"
        " from staging.stg_kahuna__credentials",
    )
    assert len(credentials) == len(set(credentials))
    expected_rows = expected_credentials(raw_warehouse.kahuna)
    assert set(credentials) == expected_rows
    assert any(kind is None for *_, kind, _ in credentials), "the data set has untyped credentials"
    assert any(value.count(":") for *_, kind, value in credentials if kind == "email"), "values keep their ':'"


def event_rows(path: Path) -> set[tuple[Any, ...]]:
    """(event_id, person, event, timestamp, properties) of the events mart."""
    columns = ("campaign", "campaign_id", "action_detail", "os", "sequence_in_second")
    rows = query(path, f"select event_id, person, event, timestamp, {', '.join(columns)} from marts.kissmetrics_events")  # noqa: S608
    return {
        (
            *row[:4],
            frozenset((name, str(value)) for name, value in zip(columns, row[4:], strict=True) if value is not None),
        )
        for row in rows
    }


def test_events_mart_holds_every_kahuna_action_and_every_kaon_click(built: Built, raw_warehouse: RawWarehouse) -> None:
    events = event_rows(built.path)
    expected = expected_events(raw_warehouse.kahuna, raw_warehouse.kaon)
    assert events == expected
    sources = dict(query(built.path, "select source, count(*) from marts.kissmetrics_events group by 1"))
    assert set(sources) == {"kahuna_inapp", "kahuna_push", "kahuna_email", "kaon_click"}


def test_people_mart_holds_each_platform_and_email_change(built: Built, raw_warehouse: RawWarehouse) -> None:
    people = set(query(built.path, "select person, timestamp, platform, email from marts.kissmetrics_people"))
    expected = expected_people(raw_warehouse.kahuna)
    assert people == expected
    assert any(p[2] and p[3] for p in people)
    assert any(p[2] and not p[3] for p in people)


def test_aliases_mart_holds_user_merges_and_users_with_their_emails(built: Built, raw_warehouse: RawWarehouse) -> None:
    aliases = set(query(built.path, "select person, alias, source from marts.kissmetrics_aliases"))
    assert aliases == expected_aliases(raw_warehouse.kahuna)
    assert {source for *_, source in aliases} == {"kahuna_merge", "kahuna_credential"}


def test_marts_number_their_rows_for_the_replay(built: Built) -> None:
    for mart in MARTS:
        sequences = [row[0] for row in query(built.path, f"select replay_sequence from marts.{mart} order by 1")]  # noqa: S608
        assert sequences == list(range(1, len(sequences) + 1)), mart


def mart_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {mart: query(path, f"select * from marts.{mart} order by replay_sequence") for mart in MARTS}  # noqa: S608


@pytest.fixture
def built_copy(built: Built, tmp_path: Path) -> Path:
    """This test's own copy of the built warehouse (it writes into it)."""
    assert built.run.returncode == 0, built.run.output[-3000:]
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.path, path)
    return path


def test_a_later_build_appends_only_the_new_rows_after_the_last_replay_sequence(
    built_copy: Path, tmp_path: Path
) -> None:
    before = mart_rows(built_copy)
    # A new Kahuna in-app log of a new user (with an e-mail credential) and a new merge arrive.
    with duckdb.connect(str(built_copy)) as connection:
        connection.execute(
            "insert into kahuna.inapp_logs (log_date, log_position, timestamp, user_id, credentials, campaign,"
            " campaign_id, action, os) values ('2026-11-18', 10000, '2026-11-18 15:29:59.5', '990000001',"
            " '[\"user_id:990000001\", \"email:new@example.com\"]', 'Late', '1', 'ia_goal', 'web')"
        )
        connection.execute(
            "insert into kahuna.user_merge_logs (log_date, log_position, timestamp, surviving_user_id, merged_user_id)"
            " values ('2026-11-18', 10000, '2026-11-18 15:29:59.6', '990000001', '990000002')"
        )
    # --full-refresh must not renumber what a replay has bookmarked (the marts set full_refresh: false)
    second = run_dbt(built_copy, tmp_path, "build", "--full-refresh")
    assert second.returncode == 0, second.output[-3000:]

    after = mart_rows(built_copy)
    for mart in MARTS:
        assert after[mart][: len(before[mart])] == before[mart], f"{mart}: an existing row changed"
    added = {mart: after[mart][len(before[mart]) :] for mart in MARTS}
    assert [(row[0], row[1], row[3], row[4]) for row in added["kissmetrics_events"]] == [
        ("inapp:2026-11-18:10000", len(before["kissmetrics_events"]) + 1, "990000001", "Kahuna in-app ia_goal")
    ]
    assert [(row[0], row[2], row[3], row[4]) for row in added["kissmetrics_people"]] == [
        ("990000001", len(before["kissmetrics_people"]) + 1, "web", "new@example.com")
    ]
    new_aliases = [(row[0], row[1], row[2], row[3]) for row in added["kissmetrics_aliases"]]
    start = len(before["kissmetrics_aliases"])
    assert new_aliases == [
        ("990000001", "new@example.com", start + 1, "kahuna_credential"),
        ("990000001", "990000002", start + 2, "kahuna_merge"),
    ]


def test_dbt_tests_fail_when_a_mart_is_wrong(built_copy: Path, tmp_path: Path) -> None:
    # A broken mart: an event twice, a name Kissmetrics would change, a row without its replay number,
    # an alias of a user with itself.
    with duckdb.connect(str(built_copy)) as connection:
        connection.execute("insert into marts.kissmetrics_events select * from marts.kissmetrics_events limit 1")
        connection.execute(
            "insert into marts.kissmetrics_events (event_id, replay_sequence, source, person, event, timestamp)"
            " values ('inapp:2099-01-01:0', null, 'kahuna_inapp', 'p', 'Kahuna in-app a:b', now())"
        )
        connection.execute(
            "insert into marts.kissmetrics_aliases (person, alias, replay_sequence, source, first_seen_at)"
            " values ('p', 'p', 999999, 'kahuna_merge', now())"
        )

    run = run_dbt(built_copy, tmp_path, "test", "--select", "marts")

    assert run.returncode != 0
    assert {
        "unique_kissmetrics_events_event_id",
        "kissmetrics_name_kissmetrics_events_event",
        "not_null_kissmetrics_events_replay_sequence",
        "expression_is_true_kissmetrics_aliases_person_alias",
    } <= run.failed()
    assert "relationships_kissmetrics_events_event_id__log_id__ref_stg_kahuna__inapp_logs_" in run.failed()
    assert all(status == "pass" for name, status in run.statuses.items() if "people" in name)


def test_every_model_builds_on_a_warehouse_with_nothing_loaded(tmp_path: Path) -> None:
    empty = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(empty)).close()

    run = run_dbt(empty, tmp_path, "build")

    assert run.returncode == 0, run.output[-3000:]
    assert "raw table kahuna.inapp_logs is not loaded yet: read as empty" in run.output
    for mart in MARTS:
        assert query(empty, f"select count(*) from marts.{mart}") == [(0,)]  # noqa: S608
