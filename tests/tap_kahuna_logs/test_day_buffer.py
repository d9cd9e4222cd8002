"""A day larger than ``day_buffer_mb`` waits in a temporary file: the same records, in the same order."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.support.cli import run_plugin
from tests.tap_kahuna_logs.kahuna_helpers import API_KEY, DAY_READINGS, NOW, SECRET_KEY, STREAMS, TAP, DayReading

DAYS = 2
# ~7,700 in-app records a day: about 1.1 MB pickled, past a 1 MB buffer
LOGS_PER_DAY = 6000
CATEGORIES = ("inapp", "user_merge")
SPILL_LINE = "buffered in a temporary file"


@pytest.fixture(scope="module")
def big_days() -> Iterator[EmulatorProcess]:
    """An emulator whose days are large."""
    emulator = EmulatorProcess("kahuna", "--now", NOW, "--days", str(DAYS), "--logs-per-day", str(LOGS_PER_DAY))
    yield emulator
    emulator.stop()


def config(emulator: EmulatorProcess, day_buffer_mb: int) -> dict:
    """Both days of two categories, two days at once."""
    data = KahunaDataset(seed=42, now=datetime.fromisoformat(NOW), days=DAYS, logs_per_day=LOGS_PER_DAY, env="p")
    return {
        "secret_key": SECRET_KEY,
        "api_key": API_KEY,
        "api_url": f"{emulator.url}/api/kahunalogs",
        "start_date": data.days[0].isoformat(),
        "end_date": data.days[-1].isoformat(),
        "categories": list(CATEGORIES),
        "page_size": 1000,
        "max_concurrency": 2,
        "day_buffer_mb": day_buffer_mb,
    }


def expected_keys(category: str, reading: DayReading = DAY_READINGS["contract"]) -> list[tuple[str, int]]:
    """(log_date, log_position) of every record the emulator sends under ``reading``, in order."""
    data = KahunaDataset(seed=42, now=datetime.fromisoformat(NOW), days=DAYS, logs_per_day=LOGS_PER_DAY, env="p")
    return reading.keys(category, data=data)


def temporary_files() -> set[Path]:
    """Files in the temporary directory (a spilled day must not leave one behind)."""
    return set(Path(tempfile.gettempdir()).glob("tmp*"))


def test_a_day_past_the_buffer_spills_to_disk_and_emits_the_same_records(
    big_days: EmulatorProcess, tmp_path: Path, reading: DayReading
) -> None:
    files_before = temporary_files()
    reading.serve(big_days)
    spilled = run_plugin(TAP, config(big_days, day_buffer_mb=1), tmp_path / "spilled")
    reading.serve(big_days)  # the same cursor expiries, by the reseeded die
    in_memory = run_plugin(TAP, config(big_days, day_buffer_mb=64), tmp_path / "memory")
    DAY_READINGS["contract"].serve(big_days)

    assert spilled.returncode == 0, spilled.stderr[-3000:]
    assert in_memory.returncode == 0, in_memory.stderr[-3000:]
    spill_lines = [line for line in spilled.stderr.splitlines() if SPILL_LINE in line]
    # the full in-app day spills (today is only partly filled); the small user_merge days never do
    assert any(f"inapp logs of {expected_keys('inapp')[0][0]}: 7747 records" in line for line in spill_lines)
    assert all("inapp logs of" in line for line in spill_lines), spill_lines
    assert SPILL_LINE not in in_memory.stderr
    for category in CATEGORIES:
        records = spilled.records[STREAMS[category]]
        assert [(r["log_date"], r["log_position"]) for r in records] == expected_keys(category, reading)
        assert records == in_memory.records[STREAMS[category]]
    assert spilled.final_state == in_memory.final_state
    assert temporary_files() - files_before == set()


def test_a_cursor_expiring_in_a_spilled_day_loses_and_repeats_nothing(
    big_days: EmulatorProcess, tmp_path: Path
) -> None:
    big_days.reset()
    # the fourth cursor request of the run finds its cursor expired: the day goes on from its last minute (spilled)
    big_days.control("kahuna/cursors", {"expire_at_uses": [4]})
    run = run_plugin(
        TAP, {**config(big_days, day_buffer_mb=1), "categories": ["inapp"], "max_concurrency": 1}, tmp_path
    )
    big_days.control("kahuna/cursors", {"expire_at_uses": []})

    assert run.returncode == 0, run.stderr[-3000:]
    assert "Cursor expired while reading inapp logs" in run.stderr
    records = run.records["inapp_logs"]
    assert [(r["log_date"], r["log_position"]) for r in records] == expected_keys("inapp")
