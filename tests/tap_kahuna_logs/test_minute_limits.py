"""What one cursor chain cannot deliver, and answers that show the server read the time another way.

- A minute holding more records than one capped chain delivers cannot be read completely: one clear error naming
  the category, the UTC day and the minute; the records before it leave with their bookmark, nothing of the minute
  does, and a re-run stops at the same place without emitting anything twice.
- A minute holding exactly ``page_size`` records at a day's end is ambiguous under the page-size reading: one
  probe with a smaller ``number_of_records`` settles it (no error when the server pages).
- A chain from a minute that sends records of another minute or day (the time or date read another way: the error
  names ``timestamp_format``), or fewer records of that minute than were read before: nothing of the day leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.support.emulators import start_kahuna
from tests.tap_kahuna_logs.kahuna_helpers import (
    assert_bookmark,
    base_config,
    bookmark_after,
    data_keys,
    emulator_dataset,
    keys,
    minute_of,
)

DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]
FULL_DAY = DAYS[1]
OVERFULL = ["--days", "3", "--logs-per-day", "400", "--burst-minute", "10:15", "--burst-records", "1200"]
OVERFULL += ["--burst-day", FULL_DAY.isoformat()]


def config(emulator: EmulatorProcess, **overrides: Any) -> dict[str, Any]:
    """Inapp logs of DAYS."""
    settings = {"categories": ["inapp"], "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()}
    return base_config(emulator, **{**settings, "max_concurrency": 2, **overrides})


def one_error_line(run: PluginRun) -> str:
    """Exit 1 and the run's one ERROR line (no traceback)."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert len(run.error_lines) == 1, run.error_lines
    return run.error_lines[0]


def error_message(line: str) -> str:
    """An ERROR line without its time and logger columns."""
    return line.rsplit(" | ", 1)[-1]


def inapp_bookmarks(run: PluginRun) -> list[dict[str, Any]]:
    """Every STATE's inapp_logs bookmark, in order."""
    return [state["bookmarks"]["inapp_logs"] for state in run.states if "inapp_logs" in state.get("bookmarks", {})]


@pytest.fixture(scope="module")
def overfull() -> Iterator[EmulatorProcess]:
    """Yesterday's 10:15 holds 1,200 more inapp records than a chain of 1,000 (the API's most) delivers."""
    emulator = start_kahuna(*OVERFULL)
    yield emulator
    emulator.stop()


@pytest.mark.parametrize(
    ("page_size", "fix"),
    [(500, "raise page_size (now 500, at most 1000)"), (1000, "ask Kahuna for it another way")],
)
def test_a_minute_one_chain_cannot_deliver_stops_before_it_and_a_rerun_repeats_nothing(
    overfull: EmulatorProcess, run_tap: Callable[..., PluginRun], page_size: int, fix: str
) -> None:
    overfull.control("kahuna/paging", {"records_cap": "chain"})
    data = emulator_dataset(*OVERFULL)
    day_records = data.records("inapp", FULL_DAY)
    before_minute = next(i for i, raw in enumerate(day_records) if minute_of(raw) == "10:15")
    assert sum(1 for raw in day_records if minute_of(raw) == "10:15") >= 1200

    stopped = run_tap(config(overfull, page_size=page_size))

    error = one_error_line(stopped)
    assert f"inapp logs of UTC day {FULL_DAY.isoformat()}: minute 10:15 holds at least {page_size} records" in error
    assert "this run emitted none of that minute's records and no bookmark past the minute before it" in error
    assert fix in error
    emitted = keys(stopped.rows("inapp_logs"))
    assert emitted == data_keys(data, "inapp", DAYS[:1]) + data_keys(data, "inapp", [FULL_DAY])[:before_minute]
    bookmarks = inapp_bookmarks(stopped)
    assert all(b["day"] < FULL_DAY.isoformat() or b["day_records_emitted"] <= before_minute for b in bookmarks)
    assert all(b["day"] <= FULL_DAY.isoformat() for b in bookmarks), "no bookmark past the minute"
    assert all((b.get("last_timestamp") or "") < f"{FULL_DAY.isoformat()}T10:15" for b in bookmarks)
    assert_bookmark(bookmarks[-1], bookmark_after(data, "inapp", FULL_DAY, before_minute))

    again = run_tap(config(overfull, page_size=page_size), state=stopped.final_state)

    assert error_message(one_error_line(again)) == error_message(error)
    assert again.rows("inapp_logs") == [], "nothing of that minute (or after it) is emitted twice"
    for bookmark in inapp_bookmarks(again):
        assert_bookmark(bookmark, bookmark_after(data, "inapp", FULL_DAY, before_minute))

    # The same server paging by number_of_records: the rest of the day reads on from the bookmark, exactly once.
    overfull.control("kahuna/paging", {"records_cap": "page"})
    rest = run_tap(config(overfull, page_size=page_size), state=stopped.final_state)
    overfull.control("kahuna/paging", {"records_cap": "chain"})
    assert rest.returncode == 0, rest.stderr[-3000:]
    assert emitted + keys(rest.rows("inapp_logs")) == data_keys(data, "inapp"), "every record once over the runs"


@pytest.fixture
def full_last_minute(start_emulator: Callable[..., EmulatorProcess]) -> tuple[EmulatorProcess, KahunaDataset]:
    """Yesterday ends with a minute of some 300 records (23:59) and its data."""
    shape = ["--days", "3", "--logs-per-day", "400", "--burst-minute", "23:59", "--burst-records", "300"]
    shape += ["--burst-day", FULL_DAY.isoformat()]
    return start_emulator("kahuna", *shape), emulator_dataset(*shape)


def test_a_last_minute_of_exactly_page_size_records_is_probed_once_under_the_page_size_reading(
    full_last_minute: tuple[EmulatorProcess, KahunaDataset], run_tap: Callable[..., PluginRun]
) -> None:
    emulator, data = full_last_minute
    page_size = sum(1 for raw in data.records("inapp", FULL_DAY) if minute_of(raw) == "23:59")

    run = run_tap(config(emulator, page_size=page_size))

    assert run.returncode == 0, run.stderr[-3000:]
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp")
    from_last_minute = [r["json"] for r in emulator.requests() if r["json"].get("timestamp") == "11/17/2026 23:59"]
    # the check for more sends exactly page_size records: a probe with one fewer finds pages, so the day is done
    assert [body["number_of_records"] for body in from_last_minute] == [page_size, page_size - 1]


def test_a_last_minute_of_exactly_page_size_records_stops_a_capped_reading_before_it(
    full_last_minute: tuple[EmulatorProcess, KahunaDataset], run_tap: Callable[..., PluginRun]
) -> None:
    emulator, data = full_last_minute
    emulator.control("kahuna/paging", {"records_cap": "chain", "chain_page_size": 100})
    records = data.records("inapp", FULL_DAY)
    page_size = sum(1 for raw in records if minute_of(raw) == "23:59")

    run = run_tap(config(emulator, page_size=page_size))

    assert f"inapp logs of UTC day {FULL_DAY.isoformat()}: minute 23:59 holds at least {page_size}" in one_error_line(
        run
    )
    before_minute = len(records) - page_size
    expected = data_keys(data, "inapp", DAYS[:1]) + data_keys(data, "inapp", [FULL_DAY])[:before_minute]
    assert keys(run.rows("inapp_logs")) == expected
    assert_bookmark(inapp_bookmarks(run)[-1], bookmark_after(data, "inapp", FULL_DAY, before_minute))


@pytest.mark.parametrize(
    ("start", "sent_instead", "phrases"),
    [
        (
            "23:59",
            "the day's first records",
            ["from 23:59", "with a record of 2026-11-17 00:00", "did not read the time as sent; try the other"],
        ),
        ("00:00", "the day before's records", ["from 00:00", "did not read the date as sent (m/dd/yyyy)"]),
        ("23:59", "nothing", ["now sends 0 records of 23:59", "records were removed or reordered"]),
    ],
    ids=["earlier-minute", "other-day", "minute-shrank"],
)
def test_a_chain_that_contradicts_what_was_read_stops_the_run_before_the_day(
    kahuna: EmulatorProcess, run_tap: Callable[..., PluginRun], start: str, sent_instead: str, phrases: list[str]
) -> None:
    kahuna.reset()
    data = emulator_dataset()
    wrong = {
        "the day's first records": data.records("inapp", FULL_DAY)[:3],
        "the day before's records": data.records("inapp", DAYS[0])[-3:],
        "nothing": [],
    }[sent_instead]
    # the day's check from its last minute (or its first chain) gets what a misread timestamp would select
    target = {"category": "inapp", "day": FULL_DAY.isoformat(), "start": start, "page": 0}
    kahuna.corrupt("set_key", target, key="inapp", value=wrong, times=1)
    run = run_tap(config(kahuna, page_size=1000, max_concurrency=1))
    kahuna.clear_corruptions()

    error = one_error_line(run)
    assert f"inapp logs of UTC day {FULL_DAY.isoformat()}" in error
    for phrase in phrases:
        assert phrase in error
    assert "othing of this day was emitted" in error
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp", DAYS[:1])
    assert all(b["day"] < FULL_DAY.isoformat() for b in inapp_bookmarks(run))
