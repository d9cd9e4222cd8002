"""One set of variables moves every port of the dev set-up: ``KK_KAON_PORT``, ``KK_KAHUNA_PORT``,
``KK_KISSMETRICS_PORT`` (the emulators), ``KK_PG_PORT`` (PostgreSQL) and ``KK_DAGSTER_PORT`` (Dagster's UI), for
``make run``, meltano commands through the launcher and ``make dagster-dev``; defaults unchanged."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from emulators.testing import EmulatorProcess
from scripts import isolated_meltano
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, MeltanoProject
from tests.support.datasets import FIXED_NOW

pytestmark = pytest.mark.meltano


def port_of(emulator: EmulatorProcess) -> str:
    """The port an emulator listens on (they start on a free one)."""
    return emulator.url.rsplit(":", 1)[1]


@pytest.mark.parametrize(
    ("arguments", "environ", "expected"),
    [
        (["run", "kahuna-to-warehouse"], {}, "dev"),  # meltano.yml's default_environment
        (["--environment", "prod", "run", "x"], {}, "prod"),
        (["--log-level", "debug", "--environment=prod", "run", "x"], {}, "prod"),
        (["-e", "prod", "config", "list", "tap-kaon-insights"], {"MELTANO_ENVIRONMENT": "dev"}, "prod"),
        (["run", "x"], {"MELTANO_ENVIRONMENT": "staging"}, "staging"),
    ],
)
def test_launcher_finds_the_active_environment(arguments: list[str], environ: dict[str, str], expected: str) -> None:
    assert isolated_meltano.active_environment(arguments, environ) == expected


def test_port_variables_become_the_plugins_settings_unless_those_are_set() -> None:
    settings = isolated_meltano.dev_port_settings(
        {"KK_KAON_PORT": "9101", "KK_KISSMETRICS_PORT": "9103", "KK_PG_PORT": "55499",
         "TARGET_KISSMETRICS_TRACKING_URL": "http://127.0.0.1:7000", "KK_KAHUNA_PORT": "8002"}
    )  # fmt: skip
    assert settings == {
        "TAP_KAON_INSIGHTS_API_URL": "http://127.0.0.1:9101/api",
        "TAP_POSTGRES_PORT": "55499",
        "TARGET_POSTGRES_PORT": "55499",
        "DBT_POSTGRES_PORT": "55499",
    }, "the explicit tracking URL is kept; the default Kahuna port changes nothing"
    assert isolated_meltano.dev_port_settings({}) == {}
    # The demo's KK_*_PORT=0 (any free port) with the URLs it sets itself: nothing to move, nothing refused.
    assert isolated_meltano.dev_port_settings({"KK_KAON_PORT": "0", "TAP_KAON_INSIGHTS_API_URL": "http://x/api"}) == {}


def test_a_bad_port_value_stops_the_launcher_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "isolated_meltano.py"), "config", "list", "tap-kaon-insights"],
        env={"PATH": "/usr/bin:/bin", "KK_KAON_PORT": "80a1"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "isolated_meltano: KK_KAON_PORT='80a1' is not a port: set it to a number from 1 to 65535"
    )


def test_make_run_and_config_test_reach_the_emulators_on_the_ports_the_variables_name(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kahuna = start_emulator("kahuna", "--days", "2", "--logs-per-day", "20")
    kissmetrics = start_emulator("kissmetrics")
    project.settings.update(
        {
            # No URL setting: only the port variables point the dev environment at these emulators.
            "KK_KAHUNA_PORT": port_of(kahuna),
            "KK_KISSMETRICS_PORT": port_of(kissmetrics),
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
        }
    )
    env = project.env()
    assert "TAP_KAHUNA_LOGS_API_URL" not in env
    assert "TARGET_KISSMETRICS_TRACKING_URL" not in env

    tested = project.run("config", "test", "tap-kahuna-logs")
    assert "Plugin configuration is valid" in tested.stdout + tested.stderr
    assert kahuna.requests(), "config test reached the Kahuna emulator on KK_KAHUNA_PORT"
    # What the README says of the two commands: config test's one line, the plugin's --test a line per stream.
    invoked = project.run("invoke", "tap-kahuna-logs", "--test")
    for stream in ("email_logs", "inapp_logs", "push_logs", "user_merge_logs"):
        assert f"Connection test: stream '{stream}' read its first record" in invoked.stderr
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    assert "prints only `Plugin configuration is valid` once a record was read" in readme
    assert "`meltano --environment dev invoke tap-kahuna-logs --test`" in readme

    kahuna.reset()
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "run", "JOB=kahuna-to-kissmetrics"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert kahuna.requests(), "the tap read the Kahuna emulator on KK_KAHUNA_PORT"
    received = kissmetrics.control("stats")["raw"]["total"]
    assert received > 0, "the beacons reached the Kissmetrics emulator on KK_KISSMETRICS_PORT"
    bookmarks = project.state("dev:tap-kahuna-logs-to-target-kissmetrics--kahuna-events")
    assert bookmarks["completed"]["singer_state"]["bookmarks"], "the run saved its state"


def test_make_dagster_dev_refuses_a_port_in_use_naming_the_variable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = subprocess.run(
            ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "dagster-dev", f"KK_DAGSTER_PORT={port}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    assert (
        f"make dagster-dev: 127.0.0.1:{port} is in use: stop what listens there or set KK_DAGSTER_PORT to a free "
        f"port, e.g. KK_DAGSTER_PORT={port + 1} make dagster-dev"
    ) in result.stderr
