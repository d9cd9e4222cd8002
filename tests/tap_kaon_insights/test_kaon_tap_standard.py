"""The singer-sdk standard tap tests, run against a Kaon emulator process started for this module."""

from __future__ import annotations

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.testing import EmulatorProcess
from tap_kaon_insights.tap import TapKaonInsights
from tests.tap_kaon_insights.kaon_tap_helpers import API_KEY, CLIENT, dataset

DATA = dataset()
#: The runner keeps this very dict: the module fixture points api_url at the emulator before any sync.
CONFIG = {
    "api_key": API_KEY,
    "client": CLIENT,
    "api_url": "http://127.0.0.1:9/api",
    "start_week": 772,
    "paths": list(DATA.path_names[:2]),
    "external_ids": list(DATA.external_id_names[:1]),
    "external_id_page_size": 40,
}

_StandardTests = get_tap_test_class(TapKaonInsights, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _emulator_for_standard_tests(module_kaon: EmulatorProcess) -> None:
    CONFIG["api_url"] = f"{module_kaon.url}/api"


class TestTapKaonInsightsStandard(_StandardTests):
    """singer-sdk's standard tap, stream and attribute tests."""
