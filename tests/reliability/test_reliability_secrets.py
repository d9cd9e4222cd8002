"""Canary secrets through every path: success, 401/409, connection refused, timeouts, DEBUG logs, dry run,
dead letters, state files. The canary (raw, URL-encoded, base64 Basic auth) appears in no output and no file.

Every run uses ``LOGLEVEL=DEBUG`` (singer-sdk 0.54's switch; it has no --log-level flag), so urllib3's
connection lines, the SDK's request lines and the target's per-request delivery lines are part of what is searched.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import (
    CANARY_API_KEY,
    CANARY_KM_KEY,
    CANARY_SECRET_KEY,
    assert_no_secret,
    closed_port,
    event_messages,
    files_text,
    kahuna_config,
    km_config,
    singer_text,
    start_kahuna,
)
from tests.support.cli import TAP_KAHUNA, TAP_KAON, TARGET_KM, PluginRun, json_lines, run_plugin

DEBUG = {"LOGLEVEL": "DEBUG"}
TARGET_HTTP_LOGGER = "target-kissmetrics.delivery"  # its DEBUG line per request, key redacted
KAHUNA_SECRETS = [CANARY_API_KEY, CANARY_SECRET_KEY]


def assert_canary_nowhere(run: PluginRun, workdir: Path, secrets: list[str]) -> None:
    """No form of the secrets in stdout, stderr or any file the run wrote (its config excepted)."""
    assert_no_secret(run.stdout, secrets, "stdout")
    assert_no_secret(run.stderr, secrets, "stderr")
    for path, text in files_text(workdir).items():
        assert_no_secret(text, secrets, path)


def assert_debug_logging_was_on(run: PluginRun, http_logger: str = "urllib3.connectionpool") -> None:
    """The DEBUG path really ran: the HTTP client's DEBUG lines (which carry URLs with their query) are in stderr
    (urllib3's for the taps, the target's own delivery lines: aiohttp logs no requests).
    """
    assert "DEBUG" in run.stderr, run.stderr[-2000:]
    assert http_logger in run.stderr, run.stderr[-2000:]


@pytest.fixture(scope="module")
def kahuna_canary() -> Iterator[EmulatorProcess]:
    """A Kahuna emulator whose credentials are the canaries."""
    emulator = start_kahuna("--secret-key", CANARY_SECRET_KEY, "--api-key", CANARY_API_KEY)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def kahuna_not_enabled() -> Iterator[EmulatorProcess]:
    """A Kahuna emulator where the canary API key is valid but not enabled for the Logs API (409)."""
    emulator = start_kahuna("--secret-key", CANARY_SECRET_KEY, "--not-enabled-api-key", CANARY_API_KEY)
    yield emulator
    emulator.stop()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A loopback port that accepts connections and never answers (every read times out)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def canary_kahuna_config(url: str, **overrides: object) -> dict:
    """A tap-kahuna-logs config with the canary credentials."""
    return kahuna_config(url, days=1, secret_key=CANARY_SECRET_KEY, api_key=CANARY_API_KEY, **overrides)


def test_kahuna_success_with_retries_and_state_leaks_no_secret(kahuna_canary: EmulatorProcess, tmp_path: Path) -> None:
    kahuna_canary.set_faults(error_rate=0.2, drop_rate=0.05, seed=2)
    run = run_plugin(TAP_KAHUNA, canary_kahuna_config(kahuna_canary.url), tmp_path, env=DEBUG)
    kahuna_canary.set_faults(error_rate=0.0, drop_rate=0.0)
    (tmp_path / "state.json").write_text(json.dumps(run.last_state))

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.record_messages
    assert "Retrying" in run.stderr or "retry" in run.stderr.lower()
    assert_debug_logging_was_on(run)
    assert_canary_nowhere(run, tmp_path, KAHUNA_SECRETS)


def test_kahuna_wrong_credentials_leak_no_secret(tmp_path: Path) -> None:
    with start_kahuna() as emulator:  # demo credentials: the canaries are wrong -> 401
        run = run_plugin(TAP_KAHUNA, canary_kahuna_config(emulator.url), tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "secret_key" in run.stderr
    assert_debug_logging_was_on(run)
    assert_canary_nowhere(run, tmp_path, KAHUNA_SECRETS)


def test_kahuna_not_enabled_leaks_no_secret(kahuna_not_enabled: EmulatorProcess, tmp_path: Path) -> None:
    run = run_plugin(TAP_KAHUNA, canary_kahuna_config(kahuna_not_enabled.url), tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "not enabled" in run.stderr
    assert_canary_nowhere(run, tmp_path, KAHUNA_SECRETS)


def test_kahuna_connection_refused_leaks_no_secret(tmp_path: Path) -> None:
    config = canary_kahuna_config(f"http://127.0.0.1:{closed_port()}", max_retries=2)
    run = run_plugin(TAP_KAHUNA, config, tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "Connection refused" in run.stderr
    assert_canary_nowhere(run, tmp_path, KAHUNA_SECRETS)


def test_kahuna_timeouts_leak_no_secret(silent_listener: str, tmp_path: Path) -> None:
    config = canary_kahuna_config(silent_listener, max_retries=2, request_timeout=1)
    run = run_plugin(TAP_KAHUNA, config, tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "timed out" in run.stderr.lower() or "timeout" in run.stderr.lower()
    assert_canary_nowhere(run, tmp_path, KAHUNA_SECRETS)


def kaon_config(url: str, **overrides: object) -> dict:
    """A tap-kaon-insights config with the canary key."""
    return {
        "api_key": CANARY_API_KEY,
        "client": "demo-client",
        "api_url": f"{url}/api",
        "start_week": 775,
        "max_retries": 1,
        "backoff_base_seconds": 0.05,
        **overrides,
    }


def test_kaon_connection_refused_leaks_no_secret(tmp_path: Path) -> None:
    run = run_plugin(TAP_KAON, kaon_config(f"http://127.0.0.1:{closed_port()}"), tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "connect" in run.stderr.lower()
    assert "api_url" in run.stderr
    assert_debug_logging_was_on(run)
    assert_canary_nowhere(run, tmp_path, [CANARY_API_KEY])


def test_kaon_timeouts_leak_no_secret(silent_listener: str, tmp_path: Path) -> None:
    run = run_plugin(TAP_KAON, kaon_config(silent_listener, request_timeout=1), tmp_path, env=DEBUG)

    assert run.returncode != 0
    assert "time" in run.stderr.lower()
    assert_canary_nowhere(run, tmp_path, [CANARY_API_KEY])


# --- target -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kissmetrics_canary() -> Iterator[EmulatorProcess]:
    """A Kissmetrics emulator whose API key is the canary."""
    emulator = EmulatorProcess("kissmetrics", "--now", "2026-11-18T15:30:00+00:00", "--api-key", CANARY_KM_KEY)
    yield emulator
    emulator.stop()


def messages_with_invalid_records() -> list[dict]:
    """Good events plus two invalid ones: a property name with ',' and a too-long value holding the canary."""
    messages = event_messages(20, state_every=10)
    schema = messages[0]
    schema["schema"]["properties"]["bad,name"] = {"type": ["string", "null"]}
    schema["schema"]["properties"]["note"] = {"type": ["string", "null"]}
    bad_name = {**messages[1]["record"], "id": 1000, "bad,name": "x"}
    leaky = {**messages[1]["record"], "id": 1001, "note": f"pasted {CANARY_KM_KEY} " + "y" * 600}
    return [*messages[:-1], *({"type": "RECORD", "stream": "events", "record": r} for r in (bad_name, leaky))]


def test_target_success_dead_letters_and_state_leak_no_secret(
    kissmetrics_canary: EmulatorProcess, tmp_path: Path
) -> None:
    kissmetrics_canary.reset()
    kissmetrics_canary.set_faults(error_rate=0.2, drop_rate=0.05, seed=4)
    config = km_config(kissmetrics_canary.url, tmp_path, api_key=CANARY_KM_KEY)
    run = run_plugin(TARGET_KM, config, tmp_path, stdin=singer_text(messages_with_invalid_records()), env=DEBUG)
    kissmetrics_canary.set_faults(error_rate=0.0, drop_rate=0.0)

    assert run.returncode == 0, run.stderr[-2000:]
    assert kissmetrics_canary.control("stats")["dedup"]["events"] == 20
    dead = [json.loads(line) for line in json_lines((tmp_path / "dead-letters.jsonl").read_text())]
    assert sorted(letter["record"]["id"] for letter in dead) == [1000, 1001]
    assert_debug_logging_was_on(run, TARGET_HTTP_LOGGER)
    assert_canary_nowhere(run, tmp_path, [CANARY_KM_KEY])


def test_target_dry_run_leaks_no_secret(kissmetrics_canary: EmulatorProcess, tmp_path: Path) -> None:
    kissmetrics_canary.reset()
    config = km_config(kissmetrics_canary.url, tmp_path, api_key=CANARY_KM_KEY, dry_run=True)
    run = run_plugin(TARGET_KM, config, tmp_path, stdin=singer_text(event_messages(5)), env=DEBUG)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "/e?" in run.stderr, "the dry run printed no beacon URL"
    assert kissmetrics_canary.control("stats")["raw"]["total"] == 0
    assert_canary_nowhere(run, tmp_path, [CANARY_KM_KEY])


@pytest.mark.parametrize("failure", ["connection_refused", "timeout"])
def test_target_failures_leak_no_secret(silent_listener: str, tmp_path: Path, failure: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}" if failure == "connection_refused" else silent_listener
    config = km_config(url, tmp_path, api_key=CANARY_KM_KEY, max_retries=1, request_timeout=1)
    run = run_plugin(TARGET_KM, config, tmp_path, stdin=singer_text(event_messages(5)), env=DEBUG)

    assert run.returncode != 0
    assert "not delivered" in run.stderr
    assert_debug_logging_was_on(run, TARGET_HTTP_LOGGER)
    assert_canary_nowhere(run, tmp_path, [CANARY_KM_KEY])


# --- defaults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "setting", "default"),
    [
        (TAP_KAON, "api_url", "https://insights.v-central.com/api"),
        (TAP_KAHUNA, "api_url", "https://tap-nexus.appspot.com/api/kahunalogs"),
        (TARGET_KM, "tracking_url", "https://trk.kissmetrics.io"),
    ],
)
def test_every_real_endpoint_defaults_to_https(plugin: str, setting: str, default: str) -> None:
    about = json.loads(subprocess.run([plugin, "--about", "--format=json"], capture_output=True, check=True).stdout)

    assert about["settings"]["properties"][setting]["default"] == default
    for name in about["settings"].get("required", []):
        if about["settings"]["properties"][name].get("secret"):
            assert about["settings"]["properties"][name].get("writeOnly") is True


@pytest.mark.parametrize(
    ("plugin", "config"),
    [
        (TAP_KAON, {"api_key": CANARY_API_KEY, "client": "c", "api_url": "http://insights.example.com/api"}),
        (
            TAP_KAHUNA,
            {
                "secret_key": CANARY_SECRET_KEY,
                "api_key": CANARY_API_KEY,
                "start_date": "2026-11-17",
                "api_url": "http://tap-nexus.example.com/api/kahunalogs",
            },
        ),
        (TARGET_KM, {"api_key": CANARY_KM_KEY, "tracking_url": "http://trk.example.com"}),
    ],
    ids=["kaon", "kahuna", "kissmetrics"],
)
def test_plain_http_to_a_real_host_is_refused_before_any_request(plugin: str, config: dict, tmp_path: Path) -> None:
    run = run_plugin(plugin, config, tmp_path, stdin="" if plugin == TARGET_KM else None, env=DEBUG)

    assert run.returncode != 0
    assert "https" in run.stderr
    assert "Traceback" not in run.stderr
    assert "Starting new HTTP" not in run.stderr
    assert TARGET_HTTP_LOGGER not in run.stderr
    assert_canary_nowhere(run, tmp_path, [CANARY_API_KEY, CANARY_SECRET_KEY, CANARY_KM_KEY])
