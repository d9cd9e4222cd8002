"""Through the real Meltano project: ``meltano run kahuna-to-kissmetrics`` under faults, with canary secrets.

The same job runs twice from empty state: once clean (the baseline) and once with 10% 5xx, 5% dropped
connections and expiring cursors on the Kahuna side and 10% 5xx + 5% drops on the Kissmetrics side. The
Kissmetrics dedup view must be the same, and no form of the canaries may appear in Meltano's output, its
logs and run files, the state backend or the dead letters.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, MeltanoProject
from tests.reliability.reliability_helpers import (
    CANARY_API_KEY,
    CANARY_KM_KEY,
    CANARY_SECRET_KEY,
    assert_no_secret,
    kahuna_dataset,
)

CANARIES = [CANARY_API_KEY, CANARY_SECRET_KEY, CANARY_KM_KEY]


def files_written_under(root: Path) -> dict[str, str]:
    """Text of every file under ``root``: Meltano's logs, run files and database, state, dead letters.

    Symlinked directories (the installed plugins linked into the test's ``.meltano``) are not followed.
    """
    texts = {}
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                texts[str(path)] = path.read_bytes().decode(errors="replace")
    return texts


def property_keys(view: dict) -> set[tuple]:
    """(person, name, time) of every property in a dedup view."""
    return {(p["person"], p["name"], p["time"]) for p in view["properties"]}


@pytest.mark.meltano
@pytest.mark.slow
def test_meltano_kahuna_to_kissmetrics_under_faults_delivers_the_same_and_leaks_no_secret(
    tmp_path: Path, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    if not (PROJECT_ROOT / ".meltano" / ".installed").exists():
        pytest.fail("the Meltano plugins are not installed: run `make meltano-install` (make test does it)")
    kahuna = start_emulator("kahuna", "--secret-key", CANARY_SECRET_KEY, "--api-key", CANARY_API_KEY)
    kissmetrics = start_emulator("kissmetrics", "--api-key", CANARY_KM_KEY)
    days = kahuna_dataset().days[-2:]
    project = MeltanoProject(tmp_path)
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_SECRET_KEY": CANARY_SECRET_KEY,
            "TAP_KAHUNA_LOGS_API_KEY": CANARY_API_KEY,
            "TAP_KAHUNA_LOGS_START_DATE": days[0].isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": days[-1].isoformat(),
            "TAP_KAHUNA_LOGS_PAGE_SIZE": "40",
            "TAP_KAHUNA_LOGS_MAX_RETRIES": "12",
            "TARGET_KISSMETRICS_TRACKING_URL": kissmetrics.url,
            "TARGET_KISSMETRICS_API_KEY": CANARY_KM_KEY,
            "TARGET_KISSMETRICS_MAX_RETRIES": "12",
            "LOGLEVEL": "DEBUG",
            "MELTANO_CLI_LOG_LEVEL": "debug",
        }
    )

    baseline = project.run("--log-level=debug", "run", "kahuna-to-kissmetrics")
    expected = kissmetrics.control("dedup")
    assert expected["events"], "the baseline delivered no event"
    shutil.rmtree(project.state_dir)
    kissmetrics.reset()
    kahuna.set_faults(error_rate=0.10, drop_rate=0.05, seed=9)
    kahuna.control("kahuna/cursors", {"expire_rate": 0.1, "seed": 9})
    kissmetrics.set_faults(error_rate=0.10, drop_rate=0.05, seed=9)

    faulty = project.run("--log-level=debug", "run", "kahuna-to-kissmetrics")

    delivered = kissmetrics.control("dedup")
    assert delivered["events"] == expected["events"]
    assert delivered["aliases"] == expected["aliases"]
    # A property keeps the last value received per (person, name, time): two events of one person in one
    # second with different values make that value depend on delivery order, so only the keys must match.
    assert property_keys(delivered) == property_keys(expected)
    stats = kissmetrics.control("stats")
    assert stats["raw"]["total"] >= len(expected["events"]) + len(expected["aliases"])
    for name, output in (("baseline", baseline), ("faulty", faulty)):
        assert_no_secret(output.stdout, CANARIES, f"meltano {name} stdout")
        assert_no_secret(output.stderr, CANARIES, f"meltano {name} stderr")
    assert "[debug" in faulty.stderr  # Meltano's own DEBUG lines
    assert "Starting new HTTP connection" in faulty.stderr  # urllib3's DEBUG lines from the plugins
    written = files_written_under(tmp_path)
    assert any("state" in path for path in written), sorted(written)
    for path, text in written.items():
        assert_no_secret(text, CANARIES, path)
