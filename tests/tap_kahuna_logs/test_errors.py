"""Every HTTP error path: fatal ones stop with one clear line, transient ones are retried without loss."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from emulators.testing import EmulatorProcess
from tap_kahuna_logs.client import CursorExpiredError
from tap_kahuna_logs.payloads import KahunaAPIError
from tap_kahuna_logs.tap import TapKahunaLogs
from tests.support.cli import PluginRun, parse_messages
from tests.tap_kahuna_logs.kahuna_helpers import CATEGORIES, STREAMS, TAP, base_config, expected_rows, keys


def assert_stopped_with(run: PluginRun, *phrases: str) -> None:
    """Exit 1, one ERROR line naming the cause, no traceback, no records."""
    assert run.returncode == 1, run.stderr[-3000:]
    errors = run.error_lines
    assert len(errors) == 1, errors
    for phrase in phrases:
        assert phrase in errors[0]
    assert "Traceback" not in run.stderr
    assert run.records == {}


def bookmarks(run: PluginRun) -> list[dict]:
    """Every stream bookmark of every STATE the run emitted."""
    return [bookmark for state in run.states for bookmark in state.get("bookmarks", {}).values()]


def assert_all_records(run: PluginRun) -> None:
    """Exit 0 and exactly the dataset's records."""
    assert run.returncode == 0, run.stderr[-3000:]
    for category in CATEGORIES:
        assert keys(run.records[STREAMS[category]]) == [(d, p) for d, p, _ in expected_rows(category)]


def test_401_says_check_the_keys(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    run = run_tap(base_config(clean_emulator, api_key="wrong-api-key", max_concurrency=1))
    assert_stopped_with(run, "401", "check secret_key/api_key")
    assert [r["status"] for r in clean_emulator.requests()] == [401]


def test_409_says_not_enabled(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    run = run_tap(base_config(clean_emulator, api_key="kahuna-not-enabled", max_concurrency=1))
    assert_stopped_with(run, "409", "these credentials are not enabled for the Logs API")
    assert [r["status"] for r in clean_emulator.requests()] == [409]


def test_400_shows_error_and_detail(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    clean_emulator.set_faults(error_rate=1.0, error_statuses=[400])
    run = run_tap(base_config(clean_emulator, max_concurrency=1))
    assert_stopped_with(run, "400", "injected fault 400")
    assert [r["status"] for r in clean_emulator.requests()] == [400], "a 400 is not retried"


def test_500_then_success_loses_nothing(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    clean_emulator.set_faults(error_rate=0.15, error_statuses=[500, 503], seed=11)
    run = run_tap(base_config(clean_emulator, max_retries=8, page_size=40))
    assert_all_records(run)
    statuses = [r["status"] for r in clean_emulator.requests()]
    assert 500 in statuses or 503 in statuses
    assert "Retrying" in run.stderr


def test_429_waits_what_retry_after_asks(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    clean_emulator.set_faults(rate_limit_rate=0.2, retry_after_seconds=0.3, seed=5)
    run = run_tap(base_config(clean_emulator, max_retries=8, categories=["email"]))
    assert run.returncode == 0, run.stderr[-3000:]
    assert keys(run.records["email_logs"]) == [(d, p) for d, p, _ in expected_rows("email")]
    waits = [line for line in run.stderr.splitlines() if "Retrying" in line and "429" in line]
    assert waits
    assert all(" in 0.3 s " in line for line in waits), waits


def test_dropped_connections_then_success_lose_nothing(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.set_faults(drop_rate=0.15, seed=3)
    run = run_tap(base_config(clean_emulator, max_retries=8, page_size=40))
    assert_all_records(run)
    assert "dropped" in [r["status"] for r in clean_emulator.requests()]


def test_timeouts_are_retried_until_the_api_answers(clean_emulator: EmulatorProcess, tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(base_config(clean_emulator, request_timeout=1, max_retries=8, page_size=40)))
    clean_emulator.set_faults(slow_body_ms=2500.0)
    process = subprocess.Popen(
        [TAP, "--config", str(config_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        while len(clean_emulator.requests()) < 2:
            assert process.poll() is None
            time.sleep(0.05)
        clean_emulator.set_faults(slow_body_ms=0.0)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    run = PluginRun(process.returncode, stdout, stderr, parse_messages(stdout))
    assert_all_records(run)
    retried = [line for line in stderr.splitlines() if "Retrying" in line and "timed out" in line]
    assert retried, stderr[-3000:]
    bodies = [json.dumps(r["json"], sort_keys=True) for r in clean_emulator.requests()]
    assert len(bodies) > len(set(bodies)), "a timed-out request was sent again"


def test_timeouts_exhausted_stop_with_one_line(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.set_faults(slow_body_ms=2500.0)
    run = run_tap(base_config(clean_emulator, request_timeout=1, max_retries=2, max_concurrency=1))
    assert_stopped_with(run, "did not answer within request_timeout (1 s)")


def test_retries_exhausted_stop_with_one_line(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.set_faults(error_rate=1.0, error_statuses=[503])
    run = run_tap(base_config(clean_emulator, max_retries=2, max_concurrency=1))
    assert_stopped_with(run, "503", "still failing after 2 retries")
    assert len(clean_emulator.requests()) == 3, "max_retries 2: the first try and 2 retries"


def test_connection_refused_stops_with_one_line(run_tap: Callable[..., PluginRun], free_port: int) -> None:
    config = {
        "secret_key": "some-secret",
        "api_key": "some-api-key",
        "api_url": f"http://127.0.0.1:{free_port}/api/kahunalogs",
        "start_date": "2026-11-18",
        "end_date": "2026-11-18",
        "max_retries": 2,
    }
    run = run_tap(config)
    assert_stopped_with(run, "cannot connect", "ConnectionError", "api_url")
    assert all(bookmark.get("day_records_emitted", 0) == 0 for bookmark in bookmarks(run)), "STATE claims records"


@pytest.mark.parametrize(
    ("override", "phrase"),
    [
        ({"page_size": 0}, "page_size must be 1 or more (got 0)"),
        ({"page_size": 1001}, "page_size must be 1000 or less (got 1001)"),
        ({"environment": "x"}, "environment must be one of p, s (got 'x')"),
        ({"end_date": "2026-10-01"}, "end_date 2026-10-01 is before start_date"),
        ({"categories": ["inapp", "sms"]}, "categories must be one of inapp, push, email, user_merge (got 'sms')"),
        ({"start_date": "18/11/2026"}, "start_date"),
    ],
)
def test_bad_config_fails_before_any_request(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun], override: dict, phrase: str
) -> None:
    run = run_tap(base_config(clean_emulator, **override))
    assert run.returncode == 1
    assert any(phrase in line for line in run.error_lines), run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert clean_emulator.requests() == []


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kahuna_answer(status: int, body: dict, sent: dict) -> requests.Response:
    """A response as the API sends it, tied to the request body that was sent."""
    response = requests.Response()
    response.status_code = status
    response.reason = "Bad Request"
    response._content = json.dumps(body).encode()
    response.request = requests.Request("POST", "http://127.0.0.1/api/kahunalogs", json=sent).prepare()
    return response


def test_400_message_carries_error_and_error_detail() -> None:
    stream = TapKahunaLogs(config=base_config_offline(), validate_config=True).streams["inapp_logs"]
    body = {"success": False, "error": "Bad Request", "error_code": 400, "error_detail": "number_of_records is 0"}
    with pytest.raises(KahunaAPIError, match=r"answered 400: Bad Request: number_of_records is 0"):
        stream.validate_response(kahuna_answer(400, body, {"timestamp": "11/18/2026 00:00"}))


def test_400_naming_the_sent_cursor_means_expired() -> None:
    stream = TapKahunaLogs(config=base_config_offline(), validate_config=True).streams["inapp_logs"]
    detail = "cursor kc.12.ab has expired; restart from the timestamp"
    body = {"success": False, "error": "Bad Request", "error_code": 400, "error_detail": detail}
    with pytest.raises(CursorExpiredError):
        stream.validate_response(kahuna_answer(400, body, {"cursor": "kc.12.ab"}))
    with pytest.raises(KahunaAPIError):
        stream.validate_response(kahuna_answer(400, body, {"timestamp": "11/18/2026 00:00"}))


def base_config_offline() -> dict:
    """A valid config that never reaches a server (the tests above only call validate_response)."""
    return {
        "secret_key": "offline-secret",
        "api_key": "offline-key",
        "api_url": "http://127.0.0.1:9/api/kahunalogs",
        "start_date": "2026-11-18",
    }
