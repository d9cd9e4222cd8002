"""An expired cursor ends its chain: the day goes on from 00:00 by position while it was read from 00:00 in one go
(a record stored late with an earlier timestamp is still read), else from the minute of the last record held;
nothing lost or repeated.

The emulator counts uses per cursor (``expire_after_uses``), rolls a seeded die per use (``expire_rate``)
can expire every outstanding cursor at once (``expire_all``) and expires the k-th cursor request
(``expire_at_uses``), which gives expiry at an exact page.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import CATEGORIES, STREAMS, base_config, dataset, expected_rows, keys

HELD_MS = 400.0


def expired_cursor_answers(requests: list[dict]) -> list[int]:
    """Indexes of the requests the emulator answered 400 because their cursor had expired."""
    return [i for i, r in enumerate(requests) if r["status"] == 400 and "cursor" in (r.get("json") or {})]


def assert_exact(run: PluginRun, categories: tuple[str, ...] = CATEGORIES, days: list | None = None) -> None:
    """Exactly the dataset's records, each once, in order, with their timestamps."""
    assert run.returncode == 0, run.stderr[-3000:]
    for category in categories:
        rows = expected_rows(category, days=days)
        records = run.records[STREAMS[category]]
        assert keys(records) == [(day, position) for day, position, _ in rows]
        assert [r["timestamp"][:26].replace("T", " ") for r in records] == [raw["timestamp"] for *_, raw in rows]


def test_each_cursor_is_used_once(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    clean_emulator.control("kahuna/cursors", {"expire_after_uses": 1})
    run = run_tap(base_config(clean_emulator, page_size=9))
    assert_exact(run)
    requests = clean_emulator.requests()
    assert expired_cursor_answers(requests) == []
    cursors = [r["json"]["cursor"] for r in requests if "cursor" in r["json"]]
    assert len(cursors) == len(set(cursors)) > 0


@pytest.mark.parametrize("expiring_request", [1, 2, 3], ids=["first-cursor", "second-cursor", "third-cursor"])
def test_cursor_expiring_at_a_given_page_continues_from_00_00_by_position(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun], expiring_request: int
) -> None:
    day = dataset().days[1]
    config = base_config(
        clean_emulator,
        categories=["user_merge"],
        start_date=day.isoformat(),
        end_date=day.isoformat(),
        page_size=5,
        max_concurrency=1,
    )
    # the k-th cursor request finds its cursor expired: request k, after the day's first (timestamp) request
    clean_emulator.control("kahuna/cursors", {"expire_at_uses": [expiring_request]})
    run = run_tap(config)
    requests = clean_emulator.requests()
    assert expired_cursor_answers(requests) == [expiring_request]
    # pages 0 .. expiring_request - 1 arrived (5 records each): the next chain asks from 00:00 and skips them
    continued = requests[expiring_request + 1]["json"]
    assert continued.get("timestamp") == day.strftime("%m/%d/%Y 00:00")
    skipped = [r["json"] for r in requests[expiring_request + 1 :]][:expiring_request]
    assert all(len(body) == 3 and body["number_of_records"] == 5 for body in skipped), "pages of 5 from 00:00"
    assert_exact(run, ("user_merge",), days=[day])
    assert f"continuing from 00:00 (skipping the {5 * expiring_request} records already read)" in run.stderr
    # the day is read through to its end by that chain: no chain from a minute follows
    assert [r["json"]["timestamp"] for r in requests if "timestamp" in r["json"]] == [continued["timestamp"]] * 2


@pytest.mark.parametrize("seed", [1, 2])
def test_cursors_expiring_at_random_lose_and_repeat_nothing(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun], seed: int
) -> None:
    clean_emulator.control("kahuna/cursors", {"expire_rate": 0.2, "seed": seed})
    run = run_tap(base_config(clean_emulator, page_size=30, max_concurrency=1))
    assert_exact(run)
    requests = clean_emulator.requests()
    assert len(expired_cursor_answers(requests)) >= 2
    assert "Cursor expired while reading" in run.stderr
    from_day_start = 0
    for expired in expired_cursor_answers(requests):
        chain_start = next(r["json"] for r in reversed(requests[:expired]) if "timestamp" in r["json"])
        following = requests[expired + 1]["json"]
        # one day at a time: the next request continues the same day
        day, categories = following["timestamp"].split()[0], following["categories_to_return"]
        assert day == chain_start["timestamp"].split()[0]
        assert categories == chain_start["categories_to_return"]
        starts = [
            r["json"]["timestamp"]
            for r in requests[:expired]
            if "timestamp" in r["json"]
            and r["json"]["timestamp"].startswith(day)
            and r["json"]["categories_to_return"] == categories
        ]
        if following["timestamp"].endswith(" 00:00"):  # by position: only while the day was read from 00:00 so far
            from_day_start += 1
            assert all(start.endswith(" 00:00") for start in starts), (following, starts)
    assert from_day_start >= 1


def test_every_cursor_expired_stops_with_one_clear_line(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]
) -> None:
    clean_emulator.control("kahuna/cursors", {"expire_rate": 1.0})
    run = run_tap(base_config(clean_emulator, page_size=5, categories=["inapp"]))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1
    assert "keep expiring" in errors[0]
    assert "Traceback" not in run.stderr
