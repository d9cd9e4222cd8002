"""Bad 200 answers (not JSON, missing or mistyped keys): one clear line naming the API, category and day; no loss.

The real emulator breaks the body of one chosen page itself, through its fault layer's corruption rules
(``/_emulator/corruptions``: a rule targets a category, a UTC day and the page within that day's chain).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import STREAMS, DayReading, base_config, dataset, expected_rows, keys

#: Three complete days; the middle one gets the bad answer.
DAYS = dataset().days[-4:-1]
BROKEN_DAY = DAYS[1]

#: case -> (the emulator's corruption rule: kind and options, phrase the error line must carry)
BAD_ANSWERS: dict[str, tuple[dict[str, Any], str]] = {
    "html_200": ({"kind": "html_200"}, "the body is an HTML page, not JSON (Content-Type text/html"),
    "truncated_json": ({"kind": "truncated_json"}, "the body is truncated JSON"),
    "malformed_json": ({"kind": "malformed_json"}, "the body is malformed JSON"),
    "json_array": ({"kind": "replace_body", "value": []}, "the body is an array, not a JSON object"),
    "only_more_records_false": (
        {"kind": "replace_body", "value": {"more_records": False}},
        'the page has no "inapp" array',
    ),
    "missing_category": ({"kind": "missing_key"}, 'the page has no "inapp" array (keys: cursor, more_records)'),
    "category_string": ({"kind": "set_key", "value": "not a list"}, '"inapp" is the string "not a list", not an array'),
    "category_null": ({"kind": "set_key", "value": None}, '"inapp" is null, not an array'),
    "category_object": ({"kind": "set_key", "value": {"a": 1}}, '"inapp" is an object, not an array'),
    "record_not_object": (
        {"kind": "insert_item", "index": 3, "value": "oops"},
        '"inapp" item 3 is the string "oops", not an object',
    ),
    "more_records_string": (
        {"kind": "set_key", "key": "more_records", "value": "no"},
        '"more_records" is the string "no", not a boolean',
    ),
    "more_records_number": (
        {"kind": "set_key", "key": "more_records", "value": 1},
        '"more_records" is the number 1, not a boolean',
    ),
    "cursor_missing": ({"kind": "missing_key", "key": "cursor"}, '"more_records" is true but "cursor" is missing'),
    "cursor_empty": (
        {"kind": "set_key", "key": "cursor", "value": ""},
        '"more_records" is true but "cursor" is the string ""',
    ),
    "cursor_null": ({"kind": "set_key", "key": "cursor", "value": None}, '"more_records" is true but "cursor" is null'),
}


def break_page(emulator: EmulatorProcess, category: str, day: date, page: int, rule: dict[str, Any]) -> None:
    """Make the emulator break the 200 answer of ``category``'s ``page`` of ``day`` (0 = the timestamp request)."""
    emulator.corrupt(target={"category": category, "day": day.isoformat(), "page": page}, **rule)


def broken_pages(emulator: EmulatorProcess) -> list[tuple[date, int]]:
    """(day, page) of every answer the emulator broke, in order."""
    return [
        (date.fromisoformat(answer["target"]["day"]), answer["target"]["page"])
        for answer in emulator.corrupted_answers()
    ]


def expected_keys(category: str, days: list[date]) -> list[tuple[str, int]]:
    """The keys the emulator holds for ``category`` on ``days``, in order."""
    return [(d, p) for d, p, _ in expected_rows(category, days=days)]


def assert_stopped_on_broken_day(run: PluginRun, category: str, phrase: str) -> None:
    """Exit 1, one ERROR line naming the API, the category, the day and the problem, no traceback."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = run.error_lines
    assert len(errors) == 1, errors
    assert f"Kahuna Logs API sent a bad answer for {category} logs of UTC day {BROKEN_DAY.isoformat()}" in errors[0]
    assert phrase in errors[0], errors[0]


def assert_no_state_past_the_day_before(run: PluginRun, stream: str, reading: DayReading | None = None) -> None:
    """Every bookmark of ``stream`` stays at or before the first day (complete), never inside the broken day."""
    bookmarks = [state["bookmarks"][stream] for state in run.states if stream in state.get("bookmarks", {})]
    assert bookmarks, "the first day's STATE was emitted"
    assert all(bookmark["day"] <= DAYS[0].isoformat() for bookmark in bookmarks), bookmarks
    assert all(bookmark.get("replication_key_value", "") < BROKEN_DAY.isoformat() for bookmark in bookmarks), bookmarks
    last = bookmarks[-1]
    first_day = reading.keys("inapp", days=DAYS[:1]) if reading else expected_keys("inapp", DAYS[:1])
    assert (last["day"], last["day_records_emitted"]) == (DAYS[0].isoformat(), len(first_day))


@pytest.mark.parametrize("kind", list(BAD_ANSWERS))
def test_bad_first_page_stops_with_the_day_named_and_no_state_past_the_day_before(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun], kind: str
) -> None:
    rule, phrase = BAD_ANSWERS[kind]
    # The record and cursor edits need a page with records and a cursor: the first page of a day has both.
    break_page(clean_emulator, "inapp", BROKEN_DAY, 0, rule)
    config = base_config(clean_emulator, categories=["inapp"], max_concurrency=1)
    run = run_tap({**config, "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()})
    assert [day for day, _ in broken_pages(clean_emulator)] == [BROKEN_DAY]
    assert_stopped_on_broken_day(run, "inapp", phrase)
    assert keys(run.records["inapp_logs"]) == expected_keys("inapp", DAYS[:1])
    assert_no_state_past_the_day_before(run, "inapp_logs")


def test_bad_cursor_page_with_parallel_days_emits_nothing_of_the_day(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    rule, phrase = BAD_ANSWERS["missing_category"]
    break_page(read_emulator, "inapp", BROKEN_DAY, 2, rule)
    config = reading.config(read_emulator, categories=["inapp"])
    run = run_tap({**config, "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()})
    assert broken_pages(read_emulator) == [(BROKEN_DAY, 2)]
    assert_stopped_on_broken_day(run, "inapp", phrase)
    first_day = reading.keys("inapp", days=DAYS[:1])
    assert keys(run.records["inapp_logs"]) == first_day, "pages 0-1 of the day are held back"
    assert_no_state_past_the_day_before(run, "inapp_logs", reading)


def test_rerun_after_a_bad_answer_delivers_every_record_once(
    read_emulator: EmulatorProcess, reading: DayReading, run_tap: Callable[..., PluginRun]
) -> None:
    config = {
        **reading.config(read_emulator),
        "start_date": DAYS[0].isoformat(),
        "end_date": DAYS[-1].isoformat(),
    }
    rule, _ = BAD_ANSWERS["only_more_records_false"]
    # Streams run in name order: email and inapp are complete before push breaks; user_merge never starts.
    break_page(read_emulator, "push", BROKEN_DAY, 0, rule)
    broken = run_tap(config)
    assert broken_pages(read_emulator) == [(BROKEN_DAY, 0)]
    read_emulator.clear_corruptions()
    assert_stopped_on_broken_day(broken, "push", 'the page has no "push" array')
    assert broken.final_state["bookmarks"]["push_logs"]["day"] == DAYS[0].isoformat()
    for category in ("email", "inapp"):
        assert keys(broken.records[STREAMS[category]]) == reading.keys(category, days=DAYS)
    assert "user_merge_logs" not in broken.records

    rerun = run_tap(config, state=broken.final_state)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    push = keys(broken.records["push_logs"]) + keys(rerun.records["push_logs"])
    assert push == reading.keys("push", days=DAYS), "every push record exactly once over both runs"
    assert keys(rerun.records["user_merge_logs"]) == reading.keys("user_merge", days=DAYS)
    for category in ("email", "inapp"):
        assert STREAMS[category] not in rerun.records, "complete streams are not sent again"
