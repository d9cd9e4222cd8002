"""tap-kaon-insights under faults and kill -9: the Kaon column of RELIABILITY.md.

Reuses the tap's own test helpers (catalog selection, expected rows from ``KaonDataset``).
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import upsert
from tests.support.cli import TAP_KAON, PluginRun, run_plugin, run_plugin_killed, write_json
from tests.support.datasets import FIXED_NOW_TEXT
from tests.tap_kaon_insights.kaon_tap_helpers import (
    SMALL_ARGS,
    catalog_for,
    dataset,
    expected_clicks,
    expected_weekly,
)

STREAMS = ("engagement", "devices", "external_id_hits")
KEYS = {
    "engagement": ("client", "week", "bucket"),
    "devices": ("client", "week", "device_uid"),
    "external_id_hits": ("client", "external_id", "timestamp_unix", "sequence_in_second"),
}


@pytest.fixture(scope="module")
def kaon() -> Iterator[EmulatorProcess]:
    """One Kaon emulator for the module (small data set, frozen clock)."""
    emulator = EmulatorProcess("kaon", "--now", FIXED_NOW_TEXT, *SMALL_ARGS)
    yield emulator
    emulator.stop()


@pytest.fixture
def clean_kaon(kaon: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator with no faults, no breakage, an empty request log."""
    kaon.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, slow_body_ms=0.0, seed=0)
    kaon.control("kaon/breakage", {"clear": True})
    kaon.reset()
    return kaon


def kaon_config(url: str, **overrides: Any) -> dict[str, Any]:
    """The last 4 weeks, two external IDs in small pages (same-second runs straddle pages), fast retries."""
    data = dataset()
    return {
        "api_key": "kaon-demo-key",
        "client": "demo-client",
        "api_url": f"{url}/api",
        "start_week": data.current_week - 3,
        "external_ids": data.external_id_names[:2],
        "external_id_page_size": 40,
        "max_retries": 10,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 1,
        "request_timeout": 5,
        **overrides,
    }


def expected_keys(config: dict[str, Any]) -> dict[str, set[tuple]]:
    """Every key the selected streams must hold, from the emulator's dataset."""
    data = dataset()
    weeks = list(range(config["start_week"], data.current_week + 1))
    expected = {stream: expected_weekly(data, stream, weeks) for stream in ("engagement", "devices")}
    expected["external_id_hits"] = [row for xid in config["external_ids"] for row in expected_clicks(data, xid)]
    return {stream: {tuple(row[k] for k in KEYS[stream]) for row in rows} for stream, rows in expected.items()}


def run_kaon(config: dict[str, Any], workdir: Path, **kwargs: Any) -> PluginRun:
    """PluginRun the tap with the reliability streams selected."""
    workdir.mkdir(parents=True, exist_ok=True)
    catalog = write_json(workdir / "catalog.json", catalog_for(STREAMS))
    return run_plugin(TAP_KAON, config, workdir, args=("--catalog", str(catalog)), **kwargs)


FAULTS = {
    "errors_10pct_drops_5pct": {"error_rate": 0.10, "drop_rate": 0.05},
    "rate_limited_retry_after_1s": {"rate_limit_rate": 0.08, "retry_after_seconds": 1},
    "slow_bodies_below_timeout": {"slow_body_ms": 1200},
}


@pytest.mark.parametrize("faults", list(FAULTS.values()), ids=list(FAULTS))
def test_kaon_tap_delivers_every_record_once_under_faults(
    clean_kaon: EmulatorProcess, tmp_path: Path, faults: dict
) -> None:
    clean_kaon.set_faults(**faults, seed=3)
    slow = {"request_timeout": 2, "external_id_page_size": 200} if faults.get("slow_body_ms") else {}
    config = kaon_config(clean_kaon.url, **slow)

    run = run_kaon(config, tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected_keys(config)
    for stream in STREAMS:
        emitted = [tuple(m["record"][k] for k in KEYS[stream]) for m in run.record_messages if m["stream"] == stream]
        assert not [key for key, n in Counter(emitted).items() if n > 1], f"{stream}: keys emitted twice"
        assert set(emitted) == expected[stream], f"{stream}: {len(set(emitted) ^ expected[stream])} keys differ"
    statuses = {str(entry.get("status")) for entry in clean_kaon.requests()}
    assert slow or statuses - {"200"}, "the emulator injected no fault"


def committed_part(messages: list[dict]) -> tuple[list[dict], dict | None]:
    """The RECORD messages up to the last STATE, and that STATE (what a target would have committed)."""
    last = max((i for i, m in enumerate(messages) if m.get("type") == "STATE"), default=-1)
    committed = messages[: last + 1]
    return [m for m in committed if m.get("type") == "RECORD"], (committed[-1]["value"] if committed else None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaon_tap_killed_at_random_points_resumes_without_loss(
    clean_kaon: EmulatorProcess, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    config = kaon_config(clean_kaon.url, max_concurrency=1)
    expected = expected_keys(config)
    total = sum(len(keys) for keys in expected.values())
    catalog = write_json(tmp_path / "catalog.json", catalog_for(STREAMS))
    warehouse: dict[str, dict[tuple, dict]] = {}
    state: dict | None = None
    kills = 0
    for attempt in range(4):
        kill_after = rng.randint(2, total) if attempt < 3 else 10**9
        run = run_plugin_killed(
            TAP_KAON,
            config,
            tmp_path / f"run-{attempt}",
            state=state,
            kill_after_lines=kill_after,
            args=("--catalog", str(catalog)),
        )
        if run.returncode == -signal.SIGKILL:
            kills += 1
            records, committed_state = committed_part(run.messages)
        else:
            assert run.returncode == 0, run.stderr[-3000:]
            records, committed_state = run.record_messages, run.last_state
        for stream in STREAMS:
            upsert(warehouse, [m for m in records if m["stream"] == stream], KEYS[stream])
        state = committed_state or state
    assert kills >= 1
    for stream in STREAMS:
        assert set(warehouse.get(stream, {})) == expected[stream], stream
