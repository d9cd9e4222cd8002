"""The singer-sdk standard target tests, in process, against a Kissmetrics emulator process.

The SDK's sample streams carry no timestamps and no ``time_extracted``, so by the target's rules
(never the send time as ``_t``) their records are dead-lettered: these tests cover the Singer
protocol handling (schemas, state, errors), the other test modules cover the beacons.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from singer_sdk.testing import get_target_test_class

from emulators.testing import EmulatorProcess
from target_kissmetrics.target import TargetKissmetrics
from tests.support.datasets import FIXED_NOW_TEXT
from tests.target_kissmetrics.km_target_helpers import API_KEY

FIXED_NOW = FIXED_NOW_TEXT
#: The runner keeps this very dict: the module fixture points tracking_url at the emulator first.
CONFIG = {
    "api_key": API_KEY,
    "tracking_url": "http://127.0.0.1:9",
    # A mapping must name fields of its stream's schema: the samples that have no `id` get their own.
    "streams": {
        "*": {"kind": "set", "person": "id"},
        "TestCamelcase": {"kind": "set", "person": "Id"},
        "ForecastingTypeToCategory": {"kind": "set", "person": "Id"},
        "test:SpecialChars!in?attributes": {"kind": "set", "person": "_id"},
        "test_object_schema_with_properties": {"kind": "set", "person": "object_store"},
        "test_object_schema_no_properties": {"kind": "set", "person": "object_store"},
    },
    "dead_letter_path": str(Path(tempfile.gettempdir()) / "km-standard-tests-dead-letters.jsonl"),
    "max_retries": 2,
    # Every record of the samples is dead-lettered (no timestamps): a run that does so fails by default.
    "max_dead_letter_ratio": 1,
}

_StandardTests = get_target_test_class(TargetKissmetrics, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _emulator_for_standard_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    emulator = EmulatorProcess("kissmetrics", "--now", FIXED_NOW)
    CONFIG["tracking_url"] = emulator.url
    CONFIG["dead_letter_path"] = str(tmp_path_factory.mktemp("km-standard") / "dead-letters.jsonl")
    yield
    emulator.stop()


class TestTargetKissmetricsStandard(_StandardTests):
    """singer-sdk's standard target tests."""
