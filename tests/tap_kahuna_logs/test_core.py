"""The standard singer-sdk tap tests, run against a Kahuna emulator (one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_kahuna_logs.tap import TapKahunaLogs
from tests.support.emulators import start_kahuna
from tests.tap_kahuna_logs.kahuna_helpers import API_KEY, NOW, SECRET_KEY

# The emulator's URL is only known once it runs: the fixture below fills it in before any test syncs.
CONFIG = {
    "secret_key": SECRET_KEY,
    "api_key": API_KEY,
    "api_url": "http://127.0.0.1:9/api/kahunalogs",
    "start_date": "2026-11-16",
    "end_date": NOW[:10],
    "page_size": 25,
    "max_concurrency": 2,
}


@pytest.fixture(scope="module", autouse=True)
def emulator_for_standard_tests() -> Iterator[None]:
    """Start the emulator and point CONFIG at it."""
    emulator = start_kahuna()
    CONFIG["api_url"] = f"{emulator.url}/api/kahunalogs"
    yield
    emulator.stop()


TestTapKahunaLogs = get_tap_test_class(TapKahunaLogs, config=CONFIG)
