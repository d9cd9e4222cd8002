"""Numeric settings given as environment variables reach the plugins' config as numbers.

Meltano 4.4 turns a ``kind: decimal`` value read from the environment into a Python Decimal
and then fails to write the plugin's config ("Object of type Decimal is not JSON
serializable"), so whole-number settings are declared ``kind: integer`` in meltano.yml.
"""

from __future__ import annotations

import json

import pytest
from meltano_helpers import MeltanoProject

pytestmark = pytest.mark.meltano

INTEGER_SETTINGS = {
    "tap-kaon-insights": {"request_timeout": 45, "devices_buffer_mb": 64, "backoff_max_seconds": 20},
    "tap-kahuna-logs": {"request_timeout": 40, "page_size": 250, "max_concurrency": 2},
    "target-kissmetrics": {"request_timeout": 15, "backoff_max": 8, "state_flush_seconds": 3},
}


def env_name(plugin: str, setting: str) -> str:
    return f"{plugin.replace('-', '_').upper()}_{setting.upper()}"


@pytest.mark.parametrize("plugin", sorted(INTEGER_SETTINGS))
def test_numeric_settings_from_the_environment_reach_the_plugin(project: MeltanoProject, plugin: str) -> None:
    expected = INTEGER_SETTINGS[plugin]
    project.settings.update({env_name(plugin, name): str(value) for name, value in expected.items()})
    result = project.run("invoke", "--dump=config", plugin)
    config = json.loads(result.stdout)
    assert {name: config[name] for name in expected} == expected
