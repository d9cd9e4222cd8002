"""Bad answers from the API, tap side: a clear error naming the API and the day (or week), and no state past it.

tap-kahuna-logs runs against the real Kahuna emulator, whose fault layer breaks the first page of one day
(HTML with 200, truncated or malformed JSON, a missing or mistyped key).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import kahuna_config, kahuna_dataset, start_kahuna
from tests.support.cli import TAP_KAHUNA, PluginRun, run_plugin

#: case -> the emulator's corruption rule (kind and options) applied to the in-app page
KINDS: dict[str, dict[str, Any]] = {
    "html_200": {"kind": "html_200"},
    "truncated_json": {"kind": "truncated_json"},
    "malformed_json": {"kind": "malformed_json"},
    "missing_key": {"kind": "missing_key"},
    # The in-app array as a string: the tap keeps record fields of any type, so the page shape is what it checks.
    "wrong_types": {"kind": "set_key", "value": "not a list"},
    "wrong_type_flag": {"kind": "set_key", "key": "more_records", "value": "no"},
}


@pytest.fixture(scope="module")
def kahuna() -> Iterator[EmulatorProcess]:
    """One Kahuna emulator for the module (each test sets its own corruption rule)."""
    emulator = start_kahuna()
    yield emulator
    emulator.stop()


def run_with_broken_day(kahuna: EmulatorProcess, tmp_path: Path, kind: str) -> tuple[PluginRun, list[date]]:
    """Read three days of in-app logs from an emulator that breaks the middle day's first page."""
    days = kahuna_dataset().days[-3:]
    kahuna.clear_corruptions()
    kahuna.corrupt(target={"category": "inapp", "day": days[1].isoformat(), "page": 0}, **KINDS[kind])
    config = kahuna_config(kahuna.url, days=3, categories=["inapp"], page_size=200, max_concurrency=1)
    run = run_plugin(TAP_KAHUNA, config, tmp_path)
    assert kahuna.corrupted_answers(), "the emulator broke nothing: the rule missed the day's first page"
    return run, days


@pytest.mark.parametrize("kind", KINDS)
def test_kahuna_bad_answer_stops_the_run_with_no_state_past_the_day_before(
    kahuna: EmulatorProcess, tmp_path: Path, kind: str
) -> None:
    run, days = run_with_broken_day(kahuna, tmp_path, kind)
    broken_day = days[1].isoformat()

    assert run.returncode != 0, f"a broken answer ({kind}) was accepted"
    emitted_days = {message["record"]["log_date"] for message in run.record_messages}
    assert emitted_days == {days[0].isoformat()}, f"days emitted: {emitted_days}"
    for state in run.states:
        bookmark = state.get("bookmarks", {}).get("inapp_logs", {})
        day = bookmark.get("day")
        assert day is None or day < broken_day or (day == broken_day and bookmark.get("day_records_emitted") == 0), (
            f"STATE past the broken day: {bookmark}"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_kahuna_bad_answer_error_names_the_api_and_the_day(kahuna: EmulatorProcess, tmp_path: Path, kind: str) -> None:
    run, days = run_with_broken_day(kahuna, tmp_path, kind)

    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.split("\n") if "| ERROR" in line]
    assert any("Kahuna" in line and days[1].isoformat() in line for line in errors), (
        f"no ERROR line names the API and {days[1]}: {errors}"
    )
