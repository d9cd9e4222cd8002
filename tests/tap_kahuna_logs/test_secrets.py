"""Canary credentials never reach stdout (records, state), stderr (logs at DEBUG, errors) in any form."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import STREAMS, base_config, start_kahuna

CANARY_SECRET = "canary-SECRET-5f3a+/="  # noqa: S105 (a canary, not a credential)
CANARY_KEY = "canary-APIKEY-9d1c&x"
DEBUG = {"LOGLEVEL": "DEBUG", "TAP_KAHUNA_LOGS_LOGLEVEL": "DEBUG"}


@pytest.fixture(scope="module")
def canary_emulator() -> Iterator[EmulatorProcess]:
    """A Kahuna emulator that accepts only the canary credentials."""
    emulator = start_kahuna("--secret-key", CANARY_SECRET, "--api-key", CANARY_KEY)
    yield emulator
    emulator.stop()


def forbidden_forms() -> list[str]:
    """Every form in which the canary could leak: raw, URL-encoded, the Basic token."""
    from urllib.parse import quote, quote_plus

    token = base64.b64encode(f"{CANARY_SECRET}:{CANARY_KEY}".encode()).decode()
    forms = {token, "canary-SECRET", "canary-APIKEY"}
    for secret in (CANARY_SECRET, CANARY_KEY):
        forms |= {secret, quote(secret, safe=""), quote_plus(secret)}
    return sorted(forms)


def assert_no_canary(run: PluginRun) -> None:
    """Nothing the run printed holds the canary."""
    for form in forbidden_forms():
        assert form not in run.stdout
        assert form not in run.stderr


def canary_config(emulator: EmulatorProcess, **overrides: object) -> dict:
    """A config carrying the canary credentials."""
    return base_config(emulator, **{"secret_key": CANARY_SECRET, "api_key": CANARY_KEY, **overrides})


def test_full_run_at_debug_with_retries_leaks_nothing(
    canary_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    canary_emulator.set_faults(error_rate=0.1, drop_rate=0.05, seed=9)
    canary_emulator.control("kahuna/cursors", {"expire_rate": 0.1, "seed": 3})
    config = canary_config(canary_emulator, max_retries=10, page_size=40, categories=["inapp", "user_merge"])
    run = run_tap(config, env=DEBUG)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sum(len(run.records.get(stream, [])) for stream in STREAMS.values()) > 0
    assert "DEBUG" in run.stderr, "the run really logged at DEBUG"
    assert "Retrying" in run.stderr
    assert "Cursor expired while reading" in run.stderr
    assert_no_canary(run)


def test_auth_failure_at_debug_leaks_nothing(
    canary_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    canary_emulator.set_faults(error_rate=0.0, drop_rate=0.0)
    run = run_tap(canary_config(canary_emulator, api_key=CANARY_KEY + "-wrong"), env=DEBUG)
    assert run.returncode == 1
    assert "check secret_key/api_key" in run.stderr
    assert_no_canary(run)


def test_connection_refused_at_debug_leaks_nothing(
    canary_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = canary_config(canary_emulator, api_url=f"http://127.0.0.1:{port}/api/kahunalogs", max_retries=2)
    run = run_tap(config, env=DEBUG)
    assert run.returncode == 1
    assert "Connection" in run.stderr
    assert_no_canary(run)


def test_bad_config_error_leaks_nothing(canary_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    run = run_tap(canary_config(canary_emulator, page_size=5000, environment=CANARY_KEY), env=DEBUG)
    assert run.returncode == 1
    assert "page_size" in run.stderr
    assert_no_canary(run)
