"""Errors end the run with one clear line; transient faults are retried.

That the api key never leaks is tested with the other plugins' secrets in tests/reliability/test_reliability_secrets.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun, run_plugin
from tests.tap_kaon_insights.kaon_tap_helpers import (
    SMALL_ARGS,
    TAP,
    base_config,
    dataset,
    expected_weekly,
    hit_weeks,
    run_tap,
)

DATA = dataset()


def assert_one_clear_error(run: PluginRun, *fragments: str) -> str:
    """The run failed with an error line holding every fragment, and no traceback."""
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    matching = [line for line in run.error_lines if all(f in line for f in fragments)]
    assert len(matching) == 1, run.error_lines
    return matching[0]


def break_endpoint(emulator: EmulatorProcess, endpoint: str, week: int, kind: str) -> None:
    """Make the emulator answer one endpoint and week badly."""
    emulator.control("kaon/breakage", {"endpoint": endpoint, "week": week, "kind": kind})


def test_wrong_api_key_says_check_api_key(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    run = run_tap(tmp_path, base_config(module_kaon.url, api_key="wrong-key-1"), streams=("engagement",))
    assert_one_clear_error(run, "403", "check api_key")
    assert run.records == {}


def test_unknown_client_names_client_and_endpoint(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    run = run_tap(tmp_path, base_config(module_kaon.url, client="no-such-client"), streams=("engagement",))
    assert_one_clear_error(run, "404", "client 'no-such-client'", "endpoint 'weeks'")


def test_unknown_path_names_the_path(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    run = run_tap(tmp_path, base_config(module_kaon.url, paths=["no/such/path"]), streams=("path_hits",))
    assert_one_clear_error(run, "404", "endpoint 'hits'", "'no/such/path'")


def test_unknown_endpoint_name_names_endpoint_and_week(module_kaon: EmulatorProcess, tmp_path: Path) -> None:
    config = base_config(module_kaon.url, start_week=776, endpoints={"engagement": "no-such-endpoint"})
    run = run_tap(tmp_path, config, streams=("engagement",))
    assert_one_clear_error(run, "404", "endpoint 'no-such-endpoint'", "week 776")


def test_server_errors_are_retried_until_success(
    start_emulator: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    emulator = start_emulator("kaon", "--error-rate", "0.4", "--fault-seed", "3")
    run = run_tap(tmp_path, base_config(emulator.url, start_week=770), streams=("engagement",))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rows("engagement") == expected_weekly(DATA, "engagement", list(range(770, 777)))
    statuses = [r["status"] for r in emulator.requests()]
    assert {500, 503} & set(statuses)
    assert statuses[-1] == 200


def test_dropped_connections_are_retried(start_emulator: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    emulator = start_emulator("kaon", "--drop-rate", "0.4", "--fault-seed", "5")
    run = run_tap(tmp_path, base_config(emulator.url, start_week=0, max_retries=8), streams=("hits",))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.rows("hits") == expected_weekly(DATA, "hits", hit_weeks(DATA, 0))
    assert "dropped" in [r["status"] for r in emulator.requests()]


def test_rate_limit_waits_at_least_retry_after(tmp_path: Path) -> None:
    # The clock follows real time here, so the request log's times show the waits.
    with EmulatorProcess(
        "kaon", *SMALL_ARGS, "--rate-limit-rate", "0.3", "--retry-after", "1", "--fault-seed", "1"
    ) as emulator:
        run = run_tap(tmp_path, base_config(emulator.url, start_week=0, max_retries=10), streams=("engagement",))
        assert run.returncode == 0, run.stderr[-2000:]
        log = emulator.requests()
    limited = [i for i, r in enumerate(log) if r["status"] == 429]
    assert limited
    for index in limited:
        retry = next(r for r in log[index + 1 :] if r["query"] == log[index]["query"])
        gap = datetime.fromisoformat(retry["time"]) - datetime.fromisoformat(log[index]["time"])
        assert gap.total_seconds() >= 1.0


def test_retries_give_up_with_one_line(start_emulator: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    emulator = start_emulator("kaon", "--error-rate", "1")
    run = run_tap(tmp_path, base_config(emulator.url, max_retries=2), streams=("weeks",))
    assert_one_clear_error(run, "kept failing", "endpoint 'weeks'", "after 2 retries")
    assert len(emulator.requests()) == 3


def test_timeouts_are_retried_then_reported(start_emulator: Callable[..., EmulatorProcess], tmp_path: Path) -> None:
    emulator = start_emulator("kaon", "--latency-ms", "1500")
    config = base_config(emulator.url, request_timeout=0.3, max_retries=1)
    run = run_tap(tmp_path, config, streams=("weeks",))
    assert_one_clear_error(run, "endpoint 'weeks'", "after 1 retries", "Timeout")
    assert [r["path"] for r in emulator.requests()] == ["/api/weeks", "/api/weeks"]


@pytest.mark.parametrize(
    ("endpoint", "stream", "kind", "problem"),
    [
        ("engagement", "engagement", "html_200", "not valid JSON"),
        ("engagement", "engagement", "truncated_json", "not valid JSON"),
        ("engagement", "engagement", "malformed_json", "not valid JSON"),
        ("engagement", "engagement", "missing_key", "no 'engagements' key"),
        ("engagement", "engagement", "wrong_types", "expected"),
        ("countries", "countries", "malformed_json", "not valid JSON"),
        ("languages", "languages", "missing_key", "no 'languages' key"),
        ("hits", "hits", "wrong_types", "expected"),
        ("uid", "devices", "bad_uids_length", "not a multiple of 18"),
    ],
)
def test_malformed_bodies_name_endpoint_and_week_and_keep_state_before_it(
    start_emulator: Callable[..., EmulatorProcess], tmp_path: Path, endpoint: str, stream: str, kind: str, problem: str
) -> None:
    emulator = start_emulator("kaon")
    break_endpoint(emulator, endpoint, 775, kind)
    run = run_tap(tmp_path, base_config(emulator.url, start_week=773), streams=(stream,))
    assert_one_clear_error(run, f"endpoint '{endpoint}'", "week 775", problem)
    assert {row["week"] for row in run.rows(stream)} == {773, 774}, "the weeks before it, nothing of the broken week"
    # A failed stream writes no STATE of its own (singer-sdk writes it when the stream ends), so none may pass it.
    bookmarks = [state["bookmarks"][stream] for state in run.states if stream in state.get("bookmarks", {})]
    assert all(bookmark.get("replication_key_value", 0) < 775 for bookmark in bookmarks), bookmarks


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_url": "ftp://x/api"}, "not an http(s) URL"),
        ({"start_week": 700, "end_week": 600}, "end_week 600 is before start_week 700"),
        ({"max_concurrency": 0}, "max_concurrency must be 1 or more"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"endpoints": {"weekz": "w"}}, "weekz"),
        ({"stream_maps": ["x"]}, "config['stream_maps']"),
    ],
)
def test_bad_config_fails_before_any_request(
    module_kaon: EmulatorProcess, tmp_path: Path, overrides: dict, message: str
) -> None:
    module_kaon.reset()
    run = run_tap(tmp_path, base_config(module_kaon.url, **overrides), streams=("weeks",))
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert module_kaon.requests() == []


@pytest.mark.parametrize("lists", [{}, {"paths": [], "external_ids": []}], ids=["not_set", "empty"])
def test_no_paths_and_no_external_ids_sync_nothing_for_those_streams(
    module_kaon: EmulatorProcess, tmp_path: Path, lists: dict
) -> None:
    """The defaults (no lists, or empty ones) and no catalog, as a first run: the partitioned streams emit nothing
    and say why; every other stream still runs.
    """
    module_kaon.reset()
    config = base_config(module_kaon.url, start_week=DATA.current_week, **lists)
    run = run_plugin(TAP, config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert set(run.records) == {"weeks", "engagement", "devices", "countries", "languages", "hits"}
    assert run.rows("engagement") == expected_weekly(DATA, "engagement", [DATA.current_week])
    assert "no paths configured (setting `paths`)" in run.stderr
    assert "no external IDs configured (setting `external_ids`)" in run.stderr
    requests = module_kaon.requests()
    assert not [r for r in requests if r["path"].endswith("/extid")], "external_id_hits called the API"
    assert not [r for r in requests if "path" in r["query"]], "path_hits called the API"
