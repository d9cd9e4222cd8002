"""Bad answers from the API, tap side: a clear error naming the API and the day (or week), and no state past it.

tap-kahuna-logs runs against the real Kahuna emulator behind a proxy that breaks the first page of one day
(HTML with 200, truncated or malformed JSON, a missing or mistyped key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from reliability_helpers import (
    TAP_KAHUNA,
    CorruptingProxy,
    Run,
    kahuna_config,
    kahuna_dataset,
    run_plugin,
    start_kahuna,
)

from emulators.testing import EmulatorProcess

KINDS = ["html_200", "truncated_json", "malformed_json", "missing_key", "wrong_types", "wrong_type_flag"]


@pytest.fixture(scope="module")
def kahuna() -> Iterator[EmulatorProcess]:
    """One Kahuna emulator for the module (read only)."""
    emulator = start_kahuna()
    yield emulator
    emulator.stop()


def first_page_of(day: date) -> object:
    """A predicate picking the request that opens ``day`` (its body's timestamp is that day at 00:00)."""
    wanted = f"{day.month}/{day.day:02d}/{day.year}"

    def should_break(method: str, path: str, body: bytes) -> bool:
        try:
            timestamp = json.loads(body).get("timestamp", "")
        except ValueError:
            return False
        month, day_, rest = timestamp.split("/", 2) if timestamp else ("", "", "")
        return f"{int(month or 0)}/{int(day_ or 0):02d}/{rest[:4]}" == wanted

    return should_break


def run_with_broken_day(kahuna: EmulatorProcess, tmp_path: Path, kind: str) -> tuple[Run, list[date]]:
    """Read three days of in-app logs through a proxy that breaks the middle day's first page."""
    days = kahuna_dataset().days[-3:]
    with CorruptingProxy(kahuna.url, kind, "inapp", first_page_of(days[1])) as proxy:
        config = kahuna_config(proxy.url, days=3, categories=["inapp"], page_size=200, max_concurrency=1)
        run = run_plugin(TAP_KAHUNA, config, tmp_path)
    assert proxy.broken >= 1, "the proxy broke nothing: the predicate missed the day's first page"
    return run, days


@pytest.mark.parametrize("kind", KINDS)
def test_kahuna_bad_answer_stops_the_run_with_no_state_past_the_day_before(
    kahuna: EmulatorProcess, tmp_path: Path, kind: str
) -> None:
    run, days = run_with_broken_day(kahuna, tmp_path, kind)
    broken_day = days[1].isoformat()

    assert run.returncode != 0, f"a broken answer ({kind}) was accepted"
    emitted_days = {message["record"]["log_date"] for message in run.records}
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
