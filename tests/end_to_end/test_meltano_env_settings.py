"""Numeric settings given as environment variables reach the plugins through Meltano, fractional ones included.

Meltano 4.4.1 turns a ``kind: decimal`` value read from the environment into a Python Decimal and then fails to
write the plugin's config ("Object of type Decimal is not JSON serializable"), so fractional settings are
``kind: string`` in meltano.yml and the plugins' settings layer reads "0.25" as 0.25.
"""

from __future__ import annotations

import json

import pytest
from meltano_helpers import MeltanoProject

from tap_kahuna_logs.settings import KahunaSettings
from tap_kaon_insights.settings import KaonSettings
from target_kissmetrics.settings import KissmetricsSettings

pytestmark = pytest.mark.meltano

NUMERIC_SETTINGS = {
    "tap-kaon-insights": {"request_timeout": 45.5, "devices_buffer_mb": 64, "backoff_base_seconds": 0.25},
    "tap-kahuna-logs": {"request_timeout": 40, "page_size": 250, "backoff_base_seconds": 0.25},
    "target-kissmetrics": {"request_timeout": 15, "backoff_base_seconds": 0.25, "state_flush_seconds": 3},
}
SETTINGS_CLASSES = {
    "tap-kaon-insights": KaonSettings,
    "tap-kahuna-logs": KahunaSettings,
    "target-kissmetrics": KissmetricsSettings,
}


def env_name(plugin: str, setting: str) -> str:
    return f"{plugin.replace('-', '_').upper()}_{setting.upper()}"


@pytest.mark.parametrize("plugin", sorted(NUMERIC_SETTINGS))
def test_numeric_settings_from_the_environment_reach_the_plugin(project: MeltanoProject, plugin: str) -> None:
    expected = NUMERIC_SETTINGS[plugin]
    project.settings.update({env_name(plugin, name): str(value) for name, value in expected.items()})
    result = project.run("invoke", "--dump=config", plugin)
    config = json.loads(result.stdout)
    settings = SETTINGS_CLASSES[plugin].from_config(config)
    assert {name: getattr(settings, name) for name in expected} == expected
