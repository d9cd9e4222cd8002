"""Exact under every reading of ``extid`` the vendor document leaves open, with no setting to choose one.

The emulator serves each reading at run time (``/_emulator/kaon/readings``): ``limit`` honoured or silently capped
at 500 ("too-high a value could result in database timeouts ... just use the default"), and ``start`` inclusive or
exclusive. Each external ID holds 2,700 clicks with one run of 300 clicks in a single second, so runs straddle
page edges under each reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT
from tests.tap_kaon_insights.kaon_tap_helpers import (
    SMALL_ARGS,
    base_config,
    dataset,
    expected_clicks,
    expected_path_hits,
    expected_weekly,
    hit_weeks,
    run_tap,
)

CLICKS = {"clicks_per_id": 2700, "same_second_run": 300, "external_ids": 2}
DATA = dataset(**CLICKS)
CLICK_ARGS = ("--clicks-per-id=2700", "--same-second-run=300", "--external-ids=2")
DEFAULT_READINGS = {"extid_cap": None, "extid_start": "inclusive", "extid_param": "id"}
EXTID_READINGS = [
    pytest.param({"extid_cap": None, "extid_start": "inclusive"}, id="limit-honoured-inclusive"),
    pytest.param({"extid_cap": None, "extid_start": "exclusive"}, id="limit-honoured-exclusive"),
    pytest.param({"extid_cap": 500, "extid_start": "inclusive"}, id="silent-cap-500-inclusive"),
    pytest.param({"extid_cap": 500, "extid_start": "exclusive"}, id="silent-cap-500-exclusive"),
    pytest.param({"extid_cap": 500, "extid_start": "exclusive", "extid_param": "extid"}, id="cap-exclusive-extid"),
]


@pytest.fixture(scope="module")
def clicks_kaon() -> Iterator[EmulatorProcess]:
    """A Kaon emulator with 2,700 clicks per external ID; each test sets its readings."""
    emulator = EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_ARGS, *CLICK_ARGS)
    yield emulator
    emulator.stop()


def serve(emulator: EmulatorProcess, readings: dict[str, Any]) -> None:
    """Switch the emulator to ``readings`` (the others at their defaults) with an empty request log."""
    emulator.control("kaon/readings", {**DEFAULT_READINGS, **readings})
    emulator.reset()


def extid_requests(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    """The query of each extid call, in order."""
    return [entry["query"] for entry in emulator.requests() if entry["path"].endswith("/extid")]


def long_run_second(external_id: str) -> int:
    """The second that holds the run of 300 clicks."""
    return next(row["timestamp_unix"] for row in expected_clicks(DATA, external_id) if row["sequence_in_second"] == 299)


def test_the_dataset_has_the_hard_cases() -> None:
    visible = {"EXT-0000": 2466, "user 42+test@example.com": 2510}  # of 2,700: the rest lie after the frozen now
    for external_id in DATA.external_id_names:
        clicks = expected_clicks(DATA, external_id)
        assert len(clicks) == visible[external_id]
        assert max(row["sequence_in_second"] for row in clicks) == 299


@pytest.mark.parametrize("readings", EXTID_READINGS)
def test_every_click_once_under_each_reading(clicks_kaon: EmulatorProcess, tmp_path: Path, readings: dict) -> None:
    serve(clicks_kaon, readings)
    config = base_config(clicks_kaon.url, external_ids=list(DATA.external_id_names))
    run = run_tap(tmp_path, config, streams=("external_id_hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    for external_id in DATA.external_id_names:
        got = [row for row in run.rows("external_id_hits") if row["external_id"] == external_id]
        assert got == expected_clicks(DATA, external_id), external_id
    assert {int(query["limit"]) for query in extid_requests(clicks_kaon)} == {1000}, "limit stays at the default"
    partitions = run.final_state["bookmarks"]["external_id_hits"]["partitions"]
    for partition in partitions:
        clicks = expected_clicks(DATA, partition["context"]["external_id"])
        assert partition["replication_key_value"] == clicks[-1]["timestamp_unix"]
        assert partition["records_at_bookmark"] == clicks[-1]["sequence_in_second"] + 1


@pytest.mark.parametrize("readings", EXTID_READINGS)
def test_a_resumed_run_reads_nothing_twice(clicks_kaon: EmulatorProcess, tmp_path: Path, readings: dict) -> None:
    serve(clicks_kaon, readings)
    config = base_config(clicks_kaon.url, external_ids=list(DATA.external_id_names))
    first = run_tap(tmp_path, config, streams=("external_id_hits",))
    second = run_tap(tmp_path, config, streams=("external_id_hits",), state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.rows("external_id_hits") == []
    assert second.final_state == first.final_state


def test_resume_inside_the_long_run_under_a_cap_and_exclusive_start(
    clicks_kaon: EmulatorProcess, tmp_path: Path
) -> None:
    serve(clicks_kaon, {"extid_cap": 500, "extid_start": "exclusive"})
    external_id = DATA.external_id_names[0]
    clicks = expected_clicks(DATA, external_id)
    first_of_run = next(i for i, row in enumerate(clicks) if row["sequence_in_second"] == 299) - 299
    emitted = 123
    partition = {
        "context": {"external_id": external_id},
        "replication_key": "timestamp_unix",
        "replication_key_value": clicks[first_of_run]["timestamp_unix"],
        "records_at_bookmark": emitted,
    }
    state = {"bookmarks": {"external_id_hits": {"partitions": [partition]}}}
    run = run_tap(
        tmp_path, base_config(clicks_kaon.url, external_ids=[external_id]), streams=("external_id_hits",), state=state
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rows("external_id_hits") == clicks[first_of_run + emitted :]


def test_a_second_longer_than_the_silent_cap_stops_with_one_line(clicks_kaon: EmulatorProcess, tmp_path: Path) -> None:
    serve(clicks_kaon, {"extid_cap": 200})
    external_id = DATA.external_id_names[0]
    run = run_tap(tmp_path, base_config(clicks_kaon.url, external_ids=[external_id]), streams=("external_id_hits",))
    assert run.returncode == 1
    assert "sends at most 200 records per extid call" in run.stderr
    assert repr(external_id) in run.stderr
    assert "Traceback" not in run.stderr


def test_the_limit_is_raised_only_while_a_second_fills_the_page(clicks_kaon: EmulatorProcess, tmp_path: Path) -> None:
    serve(clicks_kaon, {})
    config = base_config(clicks_kaon.url, external_ids=list(DATA.external_id_names), external_id_page_size=100)
    run = run_tap(tmp_path, config, streams=("external_id_hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    for external_id in DATA.external_id_names:
        got = [row for row in run.rows("external_id_hits") if row["external_id"] == external_id]
        assert got == expected_clicks(DATA, external_id)
    queries = extid_requests(clicks_kaon)
    assert max(int(query["limit"]) for query in queries) == 400  # 100 -> 200 -> 400 covers the run of 300
    long_seconds = {long_run_second(external_id) for external_id in DATA.external_id_names}
    raised = [query for query in queries if int(query["limit"]) > 100]
    assert raised, "the run of 300 needs a larger limit"
    assert {int(query["start"]) for query in raised} <= long_seconds, "raised only inside the long second"


def test_a_cap_below_a_raised_limit_stops_with_one_line(clicks_kaon: EmulatorProcess, tmp_path: Path) -> None:
    serve(clicks_kaon, {"extid_cap": 200})
    external_id = DATA.external_id_names[0]
    config = base_config(clicks_kaon.url, external_ids=[external_id], external_id_page_size=100)
    run = run_tap(tmp_path, config, streams=("external_id_hits",))
    assert run.returncode == 1
    assert "sends at most 200 records per extid call (limit 400 asked)" in run.stderr
    assert "Traceback" not in run.stderr


# --- weeks: the list with or without the filling week; hits before the listed weeks ---------------------------
WEEKS_DATA = dataset()
WEEKS_LISTS = ("with_filling", "complete_only")


def hits_weeks_asked(emulator: EmulatorProcess) -> list[int]:
    """The ``week`` of each ``hits?week=N`` call, in order."""
    return [
        int(e["query"]["week"]) for e in emulator.requests() if e["path"].endswith("/hits") and "week" in e["query"]
    ]


@pytest.mark.parametrize("weeks_list", WEEKS_LISTS)
def test_the_filling_week_is_read_and_current_under_both_lists(
    clicks_kaon: EmulatorProcess, tmp_path: Path, weeks_list: str
) -> None:
    serve(clicks_kaon, {"weeks_list": weeks_list})
    weeks = list(range(770, WEEKS_DATA.current_week + 1))
    run = run_tap(tmp_path, base_config(clicks_kaon.url, start_week=770), streams=("weeks", "engagement", "hits"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rows("weeks") == expected_weekly(WEEKS_DATA, "weeks", weeks)
    assert [row["week"] for row in run.rows("weeks") if row["is_current"]] == [776]
    assert run.rows("engagement") == expected_weekly(WEEKS_DATA, "engagement", weeks)
    assert run.rows("hits") == expected_weekly(WEEKS_DATA, "hits", weeks)
    bookmarks = run.final_state["bookmarks"]
    assert bookmarks["engagement"]["replication_key_value"] == bookmarks["weeks"]["replication_key_value"] == 776
    current_calls = [e for e in clicks_kaon.requests() if e["path"].endswith("/hits") and "week" not in e["query"]]
    assert len(current_calls) == 1, "one call names the current week for every stream"


@pytest.mark.parametrize(("start_week", "first_read"), [(0, WEEKS_DATA.launch_week), (750, 750), (417, 744)])
def test_hits_reads_back_to_the_launch_before_the_listed_weeks(
    clicks_kaon: EmulatorProcess, tmp_path: Path, start_week: int, first_read: int
) -> None:
    serve(clicks_kaon, {})
    run = run_tap(tmp_path, base_config(clicks_kaon.url, start_week=start_week), streams=("hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    assert WEEKS_DATA.launch_week == 744 < WEEKS_DATA.first_week == 764
    assert run.rows("hits") == expected_weekly(WEEKS_DATA, "hits", hit_weeks(WEEKS_DATA, start_week))
    assert min(row["week"] for row in run.rows("hits")) == first_read
    below_the_list = [week for week in hits_weeks_asked(clicks_kaon) if week < WEEKS_DATA.first_week]
    lowest = max(start_week, WEEKS_DATA.launch_week - 1)  # the 404 below the launch ends the walk
    assert below_the_list == list(range(WEEKS_DATA.first_week - 1, lowest - 1, -1))
    assert run.final_state["bookmarks"]["hits"]["replication_key_value"] == 776


def test_hits_from_a_bookmark_does_not_walk_back(clicks_kaon: EmulatorProcess, tmp_path: Path) -> None:
    serve(clicks_kaon, {})
    state = {"bookmarks": {"hits": {"replication_key": "week", "replication_key_value": 775}}}
    run = run_tap(tmp_path, base_config(clicks_kaon.url, start_week=0), streams=("hits",), state=state)
    assert run.rows("hits") == expected_weekly(WEEKS_DATA, "hits", [775, 776])
    assert hits_weeks_asked(clicks_kaon) == [775, 776]


# --- the path form of hits?path=P and the name of extid's external-ID parameter -------------------------------
PATHS = [path for path in WEEKS_DATA.path_names if "%" in path][:3]
PATH_FORMS = ("as_listed", "decoded")


@pytest.mark.parametrize("server_form", PATH_FORMS)
@pytest.mark.parametrize("setting", PATH_FORMS)
def test_path_hits_are_exact_whichever_form_the_server_knows(
    clicks_kaon: EmulatorProcess, tmp_path: Path, server_form: str, setting: str
) -> None:
    serve(clicks_kaon, {"path_form": server_form})
    config = base_config(clicks_kaon.url, paths=PATHS, path_form=setting, hits_detail_country=True)
    run = run_tap(tmp_path, config, streams=("path_hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    for path in PATHS:
        rows = [row for row in run.rows("path_hits") if row["path"] == path]
        assert [{**row, "countries": None} for row in rows] == expected_path_hits(WEEKS_DATA, path)
        assert [row["countries"] for row in rows] == [WEEKS_DATA.path_countries(path, row["week"]) for row in rows]
    statuses = [e["status"] for e in clicks_kaon.requests() if e["path"].endswith("/hits")]
    assert statuses.count(404) == (0 if setting == server_form else 1), "one 404 teaches the form"


@pytest.mark.parametrize("server_param", ["id", "extid", "external_id"])
def test_clicks_are_exact_whichever_parameter_names_the_external_id(
    clicks_kaon: EmulatorProcess, tmp_path: Path, server_param: str
) -> None:
    serve(clicks_kaon, {"extid_param": server_param})
    run = run_tap(
        tmp_path, base_config(clicks_kaon.url, external_ids=list(DATA.external_id_names)), streams=("external_id_hits",)
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for external_id in DATA.external_id_names:
        got = [row for row in run.rows("external_id_hits") if row["external_id"] == external_id]
        assert got == expected_clicks(DATA, external_id)
    queries = extid_requests(clicks_kaon)
    misses = ["id", "extid", "external_id"].index(server_param)
    assert all(server_param in query for query in queries[misses:])
    assert [e["status"] for e in clicks_kaon.requests()].count(404) == misses


def test_an_unknown_path_under_both_forms_is_one_clear_line(clicks_kaon: EmulatorProcess, tmp_path: Path) -> None:
    serve(clicks_kaon, {"path_form": "decoded"})
    run = run_tap(tmp_path, base_config(clicks_kaon.url, paths=["no%20such/path"]), streams=("path_hits",))
    assert run.returncode == 1
    assert "HTTP 404" in run.stderr
    assert "Traceback" not in run.stderr
