"""Every stream's rows, exactly, against the emulator's dataset; bookmarks, resume and paging edge cases.

The full runs, the click paging and the resume inside a same-second run go under the contract's readings and
under every other reading of the seed at once (``KAON_READINGS``): the same rows and state are due."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tap_kaon_insights.vendor_tables import LANGUAGE_NAMES
from tests.support.cli import PluginRun
from tests.tap_kaon_insights.kaon_tap_helpers import (
    ALL_STREAMS,
    CLIENT,
    FIXED_NOW,
    base_config,
    dataset,
    expected_clicks,
    expected_path_hits,
    expected_weekly,
    hit_weeks,
    listed_weeks,
    run_tap,
    without_languages_names,
)

WEEKLY = ("weeks", "engagement", "devices", "countries", "languages", "hits")
DATA = dataset()
#: The readings of ``/_emulator/kaon/readings`` the runs go under: the contract's, and every other one at once (a
#: silent cap above the data set's longest same-second run of 30 clicks, an exclusive start, the other external-ID
#: parameter name, ``weeks`` listing complete weeks only, paths known decoded).
CONTRACT_READINGS = {
    "extid_cap": None,
    "extid_start": "inclusive",
    "extid_param": "id",
    "weeks_list": "with_filling",
    "path_form": "as_listed",
}
KAON_READINGS = {
    "contract": CONTRACT_READINGS,
    "every-other-reading": {
        "extid_cap": 50,
        "extid_start": "exclusive",
        "extid_param": "extid",
        "weeks_list": "complete_only",
        "path_form": "decoded",
    },
}


def serve(emulator: EmulatorProcess, reading: str) -> EmulatorProcess:
    """The emulator under ``KAON_READINGS[reading]``, with an empty request log."""
    assert emulator.control("kaon/readings", KAON_READINGS[reading]) == KAON_READINGS[reading]
    emulator.reset()
    return emulator


@pytest.fixture(params=list(KAON_READINGS))
def kaon_reading(request: pytest.FixtureRequest, module_kaon: EmulatorProcess) -> Iterator[str]:
    """Each reading of ``KAON_READINGS`` served in turn (the contract's restored afterwards)."""
    serve(module_kaon, request.param)
    yield request.param
    serve(module_kaon, "contract")


def chosen_paths() -> list[str]:
    """Three plain paths plus every path that has an escaped (space or non-ASCII) character."""
    escaped = [p for p in DATA.path_names if "%" in p]
    plain = [p for p in DATA.path_names if "%" not in p]
    return plain[:3] + escaped


def full_config(url: str, **overrides: Any) -> dict[str, Any]:
    """Config syncing every stream, every external id and the chosen paths."""
    return base_config(url, paths=chosen_paths(), external_ids=list(DATA.external_id_names), **overrides)


@pytest.fixture(scope="module", params=list(KAON_READINGS))
def first_run(
    request: pytest.FixtureRequest, module_kaon: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> PluginRun:
    """One full run with no state under each reading (shared by the row tests; ``run.reading`` names it)."""
    serve(module_kaon, request.param)
    run = run_tap(tmp_path_factory.mktemp(request.param), full_config(module_kaon.url))
    run.requests = module_kaon.requests()  # type: ignore[attr-defined]
    serve(module_kaon, "contract")
    assert run.returncode == 0, run.stderr[-2000:]
    run.reading = request.param  # type: ignore[attr-defined]
    return run


def test_each_full_run_met_its_readings(first_run: PluginRun) -> None:
    """The click requests that were answered named the external ID as the reading wants it."""
    answered = [r for r in first_run.requests if r["path"].endswith("/extid") and r["status"] == 200]  # type: ignore[attr-defined]
    names = {name for r in answered for name in r["query"] if name in ("id", "extid", "external_id")}
    assert names == {KAON_READINGS[first_run.reading]["extid_param"]}  # type: ignore[attr-defined]
    assert len(answered) >= len(DATA.external_id_names)


def test_dataset_has_the_edge_cases_these_tests_rely_on() -> None:
    assert any("%20" in p for p in DATA.path_names), "a path with a space"
    assert any("%C3" in p.upper() or "%E" in p.upper() for p in DATA.path_names), "a non-ASCII path"
    assert DATA.current_week == 776


@pytest.mark.parametrize("stream", WEEKLY)
def test_weekly_stream_rows_are_exact(first_run: PluginRun, stream: str) -> None:
    weeks = hit_weeks(DATA, 417) if stream == "hits" else listed_weeks(DATA, 417)
    expected = expected_weekly(DATA, stream, weeks)
    rows = first_run.rows(stream)
    if stream == "languages":
        assert all(row["language_name"] == LANGUAGE_NAMES.get(row["code"]) for row in rows)
        assert any(row["language_name"] for row in rows)
        rows = without_languages_names(rows)
    assert rows == expected


def test_only_the_last_listed_week_is_current(first_run: PluginRun) -> None:
    current = [row["week"] for row in first_run.rows("weeks") if row["is_current"]]
    assert current == [776]


def test_path_hits_take_each_paths_whole_history(first_run: PluginRun) -> None:
    rows = first_run.rows("path_hits")
    for path in chosen_paths():
        assert [row for row in rows if row["path"] == path] == expected_path_hits(DATA, path)
    assert min(row["week"] for row in rows) < DATA.first_week, "history reaches back before the first full-data week"


def test_external_id_hits_are_exact_once_each(first_run: PluginRun) -> None:
    rows = first_run.rows("external_id_hits")
    for external_id in DATA.external_id_names:
        assert [row for row in rows if row["external_id"] == external_id] == expected_clicks(DATA, external_id)
    keys = [(r["external_id"], r["timestamp_unix"], r["sequence_in_second"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_every_record_carries_the_client(first_run: PluginRun) -> None:
    assert set(first_run.records) == set(ALL_STREAMS)
    assert {row["client"] for rows in first_run.records.values() for row in rows} == {CLIENT}


def test_state_bookmarks_weeks_and_clicks(first_run: PluginRun) -> None:
    bookmarks = first_run.final_state["bookmarks"]
    for stream in WEEKLY:
        assert bookmarks[stream]["replication_key_value"] == 776
    path_marks = {p["context"]["path"]: p["replication_key_value"] for p in bookmarks["path_hits"]["partitions"]}
    assert path_marks == {path: expected_path_hits(DATA, path)[-1]["week"] for path in chosen_paths()}
    for partition in bookmarks["external_id_hits"]["partitions"]:
        clicks = expected_clicks(DATA, partition["context"]["external_id"])
        assert partition["replication_key_value"] == clicks[-1]["timestamp_unix"]
        assert partition["records_at_bookmark"] == clicks[-1]["sequence_in_second"] + 1


def test_second_run_rereads_only_the_current_week(
    module_kaon: EmulatorProcess, first_run: PluginRun, tmp_path: Path
) -> None:
    serve(module_kaon, first_run.reading)  # type: ignore[attr-defined]
    second = run_tap(tmp_path, full_config(module_kaon.url), state=first_run.final_state)
    serve(module_kaon, "contract")
    assert second.returncode == 0, second.stderr[-2000:]
    for stream in WEEKLY:
        assert second.rows(stream) == first_run.rows(stream)[-len(second.rows(stream)) :]
        assert {row["week"] for row in second.rows(stream)} == {776}, stream
    for path in chosen_paths():
        bookmark = max(r["week"] for r in first_run.rows("path_hits") if r["path"] == path)
        assert [r for r in second.rows("path_hits") if r["path"] == path] == expected_path_hits(DATA, path, bookmark)
    assert second.rows("external_id_hits") == []
    assert second.final_state == first_run.final_state


def test_a_new_week_after_the_clock_moves(start_emulator: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    emulator = start_emulator("kaon")
    config = full_config(emulator.url)
    first = run_tap(tmp_path, config)
    emulator.set_clock(advance_seconds=7 * 24 * 3600)
    later = DATA.at(FIXED_NOW.replace(day=25))
    second = run_tap(tmp_path, config, state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    for stream in WEEKLY:
        rows = second.rows(stream)
        if stream == "languages":
            rows = without_languages_names(rows)
        assert rows == expected_weekly(later, stream, [776, 777]), stream
    assert [r["is_current"] for r in second.rows("weeks")] == [False, True]
    for external_id in DATA.external_id_names:
        before = len(expected_clicks(DATA, external_id))
        new_rows = [r for r in second.rows("external_id_hits") if r["external_id"] == external_id]
        assert new_rows == expected_clicks(later, external_id)[before:]
    assert second.rows("external_id_hits"), "a week of new clicks"


def test_start_week_and_end_week_bound_the_weekly_streams(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    run = run_tap(tmp_path, base_config(module_kaon.url, start_week=770, end_week=772), streams=("engagement",))
    assert run.rows("engagement") == expected_weekly(DATA, "engagement", [770, 771, 772])


def test_start_date_is_turned_into_its_week(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    run = run_tap(tmp_path, base_config(module_kaon.url, start_date="2026-11-11"), streams=("weeks",))
    assert [row["week"] for row in run.rows("weeks")] == [775, 776]  # 2026-11-11 is in week 775 (from 2026-11-08)


def test_weekly_resume_rereads_the_bookmarked_week(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    state = {"bookmarks": {"hits": {"replication_key": "week", "replication_key_value": 772}}}
    run = run_tap(tmp_path, base_config(module_kaon.url), streams=("hits",), state=state)
    assert run.rows("hits") == expected_weekly(DATA, "hits", [772, 773, 774, 775, 776])


def _run_start(external_id: str) -> tuple[int, int]:
    """Index of the first record of the first second that holds a run of 5 or more records."""
    clicks = expected_clicks(DATA, external_id)
    for index, row in enumerate(clicks):
        if row["sequence_in_second"] == 4:
            return index - 4, row["timestamp_unix"]
    raise AssertionError("no same-second run in the dataset")


def test_resume_inside_a_same_second_run_is_exact(
    module_kaon: EmulatorProcess, kaon_reading: str, tmp_path: Path
) -> None:
    external_id = DATA.external_id_names[0]
    start, second = _run_start(external_id)
    emitted = 3  # three records of that second went out before the interruption
    state = {
        "bookmarks": {
            "external_id_hits": {
                "partitions": [
                    {
                        "context": {"external_id": external_id},
                        "replication_key": "timestamp_unix",
                        "replication_key_value": second,
                        "records_at_bookmark": emitted,
                    }
                ]
            }
        }
    }
    config = base_config(module_kaon.url, external_ids=[external_id], external_id_page_size=10)
    run = run_tap(tmp_path, config, streams=("external_id_hits",), state=state)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rows("external_id_hits") == expected_clicks(DATA, external_id)[start + emitted :]


@pytest.mark.parametrize("page_size", [7, 29, 30, 31, 64, 1000])
def test_paging_emits_each_click_once(
    module_kaon: EmulatorProcess, kaon_reading: str, tmp_path: Path, page_size: int
) -> None:
    config = base_config(module_kaon.url, external_ids=list(DATA.external_id_names), external_id_page_size=page_size)
    run = run_tap(tmp_path, config, streams=("external_id_hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    for external_id in DATA.external_id_names:
        got = [r for r in run.rows("external_id_hits") if r["external_id"] == external_id]
        assert got == expected_clicks(DATA, external_id)
    limits = {int(r["query"]["limit"]) for r in module_kaon.requests() if r["path"].endswith("/extid")}
    if page_size <= 30:  # a run of 30 same-second records fills such a page: the tap must ask for more
        assert max(limits) > page_size
    elif kaon_reading == "contract":
        assert limits == {page_size}
    else:  # under the cap, pages of 50 never fill a page of more: the limit is never raised
        assert max(limits) == page_size


def test_paging_fails_clearly_when_one_second_outgrows_the_largest_page(
    module_kaon: EmulatorProcess, tmp_path: Path
) -> None:
    external_id = DATA.external_id_names[0]
    config = base_config(
        module_kaon.url, external_ids=[external_id], external_id_page_size=4, external_id_max_page_size=8
    )
    run = run_tap(tmp_path, config, streams=("external_id_hits",))
    assert run.returncode == 1
    assert "raise external_id_max_page_size" in run.stderr
    assert repr(external_id) in run.stderr
    assert "Traceback" not in run.stderr


def test_object_form_countries_and_languages(start_emulator: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    emulator = start_emulator("kaon", "--countries-form", "object")
    run = run_tap(tmp_path, base_config(emulator.url, start_week=774), streams=("countries", "languages"))
    assert run.rows("countries") == expected_weekly(DATA, "countries", [774, 775, 776])
    assert without_languages_names(run.rows("languages")) == expected_weekly(DATA, "languages", [774, 775, 776])


def test_path_hits_with_country_detail(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    paths = chosen_paths()[-2:]
    state = {
        "bookmarks": {
            "path_hits": {
                "partitions": [
                    {"context": {"path": p}, "replication_key": "week", "replication_key_value": 770} for p in paths
                ]
            }
        }
    }
    config = base_config(module_kaon.url, paths=paths, hits_detail_country=True)
    run = run_tap(tmp_path, config, streams=("path_hits",), state=state)
    for path in paths:
        rows = [r for r in run.rows("path_hits") if r["path"] == path]
        expected = expected_path_hits(DATA, path, 770)
        assert [{**r, "countries": None} for r in rows] == expected
        assert [r["countries"] for r in rows] == [DATA.path_countries(path, r["week"]) for r in rows]


def test_catalog_selection_syncs_only_selected_streams(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    module_kaon.reset()
    run = run_tap(tmp_path, full_config(module_kaon.url), streams=("engagement",))
    assert set(run.records) == {"engagement"}
    called = {r["path"].rsplit("/", 1)[-1] for r in module_kaon.requests()}
    # hits: the emulator's frozen week is older than the tap's UTC week, so the tap asks the server's current week
    assert called == {"weeks", "hits", "engagement"}


def test_identical_output_with_concurrency_8_and_1(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    streams = (*WEEKLY, "path_hits")
    config = full_config(module_kaon.url, hits_detail_country=True)
    parallel = run_tap(tmp_path, {**config, "max_concurrency": 8}, streams=streams)
    serial = run_tap(tmp_path, {**config, "max_concurrency": 1}, streams=streams)
    assert parallel.returncode == serial.returncode == 0
    assert parallel.records == serial.records
    assert parallel.final_state == serial.final_state
