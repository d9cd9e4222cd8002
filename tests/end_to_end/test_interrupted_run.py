"""A pipeline killed mid-way (the whole ``meltano run`` process group) and run again loses and doubles nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import (
    MeltanoProject,
    as_date,
    expected_aliases,
    expected_events,
    kill_process_group,
    wait_for,
)
from tests.support.datasets import FIXED_NOW, KAHUNA_STREAMS

KAHUNA_DAYS = 4
KAHUNA_LOGS_PER_DAY = 200

pytestmark = pytest.mark.meltano


def kahuna_project(project: MeltanoProject, kahuna: EmulatorProcess) -> KahunaDataset:
    """Point the project at this emulator's days; returns the data the emulator serves."""
    project.settings.update(
        {
            "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
            "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
            "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            "TAP_KAHUNA_LOGS_PAGE_SIZE": "20",
            "TAP_KAHUNA_LOGS_MAX_CONCURRENCY": "1",
        }
    )
    return KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")


def test_killed_warehouse_load_then_rerun_holds_exactly_the_data(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kahuna = start_emulator(
        "kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY), "--latency-ms", "30"
    )
    dataset = kahuna_project(project, kahuna)

    pipeline = project.start("run", "kahuna-to-warehouse", log_path=project.workdir / "killed.log")
    wait_for(lambda: len(kahuna.requests()) >= 20 or pipeline.poll() is not None)
    assert pipeline.poll() is None, "the run ended before it could be killed"
    kill_process_group(pipeline)

    kahuna.set_faults(latency_ms=0.0)
    # Meltano still sees the killed run as running: --force is the documented recovery.
    project.run("run", "--force", "kahuna-to-warehouse")

    for category, table in KAHUNA_STREAMS.items():
        rows = project.query(f"select log_date, log_position from kahuna.{table}")  # noqa: S608 (our table names)
        keys = [(as_date(day), int(position)) for day, position in rows]
        expected = {(day, position) for day in dataset.days for position in range(len(dataset.records(category, day)))}
        assert len(keys) == len(set(keys)), table
        assert set(keys) == expected, table


def test_killed_kissmetrics_replay_then_rerun_delivers_exactly_the_beacons(
    project: MeltanoProject, start_emulator: Callable[..., EmulatorProcess]
) -> None:
    kahuna = start_emulator("kahuna", "--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY))
    kissmetrics = start_emulator("kissmetrics", "--latency-ms", "5")
    dataset = kahuna_project(project, kahuna)
    project.settings["TARGET_KISSMETRICS_TRACKING_URL"] = kissmetrics.url
    project.settings["TARGET_KISSMETRICS_MAX_CONCURRENCY"] = "4"

    pipeline = project.start("run", "kahuna-to-kissmetrics", log_path=project.workdir / "killed.log")
    wait_for(lambda: kissmetrics.control("stats")["raw"]["total"] >= 300 or pipeline.poll() is not None)
    assert pipeline.poll() is None, "the run ended before it could be killed"
    kill_process_group(pipeline)
    received_before_rerun = kissmetrics.control("stats")["raw"]["total"]
    assert received_before_rerun < len(expected_events(dataset))

    kissmetrics.set_faults(latency_ms=0.0)
    project.run("run", "--force", "kahuna-to-kissmetrics")

    dedup = kissmetrics.control("dedup")
    assert {(event["person"], event["event"], event["time"]) for event in dedup["events"]} == expected_events(dataset)
    assert {frozenset(pair) for pair in dedup["aliases"]} == expected_aliases(dataset, self_merges=True)
