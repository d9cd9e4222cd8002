"""The code location reads the taps' settings as ``meltano config print`` does, both in one Meltano process."""

from __future__ import annotations

import json
import os

import pytest

from kk_orchestration.project import ProjectSettingsError, plugin_configs
from tests.end_to_end.meltano_helpers import MeltanoProject

pytestmark = [pytest.mark.meltano]

TAPS = ("tap-kahuna-logs", "tap-kaon-insights")


def use_project_environment(project: MeltanoProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment becomes the test project's, as the code location would see it."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in project.env().items():
        monkeypatch.setenv(name, value)


def test_both_taps_settings_come_from_one_process_exactly_as_meltano_config_print_gives_them(
    project: MeltanoProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_START_DATE": "2026-10-05",
            "TAP_KAHUNA_LOGS_CATEGORIES": '["push", "email"]',
            "TAP_KAON_INSIGHTS_START_WEEK": "700",
        }
    )
    use_project_environment(project, monkeypatch)

    configs = plugin_configs(*TAPS)

    assert set(configs) == set(TAPS)
    for tap in TAPS:
        printed = json.loads(project.run("--environment", "dev", "config", "print", tap).stdout)
        assert configs[tap] == printed, tap
    kahuna, kaon = configs["tap-kahuna-logs"], configs["tap-kaon-insights"]
    assert (kahuna["start_date"], kahuna["categories"], kaon["start_week"]) == ("2026-10-05", ["push", "email"], 700)
    assert kaon["external_ids"] == ["EXT-0000", "EXT-0001", "user 42+test@example.com"]  # meltano.yml's dev list
    # Secrets stay masked, as the command masks them.
    assert "kahuna-demo-secret" not in json.dumps(configs)
    assert "kaon-demo-key" not in json.dumps(configs)


def test_a_setting_meltano_cannot_resolve_is_one_line_naming_it(
    project: MeltanoProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.settings["MELTANO_ENVIRONMENT"] = "staging"
    use_project_environment(project, monkeypatch)

    with pytest.raises(ProjectSettingsError) as raised:
        plugin_configs(*TAPS)

    message = str(raised.value)
    assert "Environment 'staging' was not found." in message
    assert "\n" not in message
    assert "Traceback" not in message
