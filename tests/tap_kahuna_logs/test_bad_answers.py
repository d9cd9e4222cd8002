"""Bad 200 answers (not JSON, missing or mistyped keys): one clear line naming the API, category and day; no loss.

The real emulator answers behind :class:`RewritingProxy`, which replaces the body of one chosen page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from kahuna_helpers import STREAMS, PageRequest, RewritingProxy, TapRun, base_config, dataset, expected_rows, keys

from emulators.testing import EmulatorProcess

#: Three complete days; the middle one gets the bad answer.
DAYS = dataset().days[-4:-1]
BROKEN_DAY = DAYS[1]


def edit_page(edit: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    """A body transform that parses the page, applies ``edit`` (in place, or returns a replacement) and re-encodes."""

    def transform(body: bytes) -> bytes:
        page = json.loads(body)
        replaced = edit(page)
        return json.dumps(page if replaced is None else replaced).encode()

    return transform


def set_key(name: str, value: object) -> Callable[[dict], None]:
    """An edit that sets ``page[name] = value``."""
    return lambda page: page.__setitem__(name, value)


def drop_key(name: str) -> Callable[[dict], None]:
    """An edit that removes ``name`` from the page."""

    def drop(page: dict) -> None:
        del page[name]

    return drop


HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

#: kind -> (body transform, phrase the error line must carry)
BAD_ANSWERS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "html_200": (lambda body: HTML, "the body is an HTML page, not JSON (Content-Type text/html"),
    "truncated_json": (lambda body: body[: len(body) // 2], "the body is truncated JSON"),
    "malformed_json": (lambda body: body.replace(b":", b"=", 2), "the body is malformed JSON"),
    "json_array": (lambda body: b"[]", "the body is an array, not a JSON object"),
    "only_more_records_false": (lambda body: b'{"more_records": false}', 'the page has no "inapp" array'),
    "missing_category": (edit_page(drop_key("inapp")), 'the page has no "inapp" array (keys: cursor, more_records)'),
    "category_string": (edit_page(set_key("inapp", "not a list")), '"inapp" is the string "not a list", not an array'),
    "category_null": (edit_page(set_key("inapp", None)), '"inapp" is null, not an array'),
    "category_object": (edit_page(set_key("inapp", {"a": 1})), '"inapp" is an object, not an array'),
    "record_not_object": (
        edit_page(lambda page: page["inapp"].insert(3, "oops")),
        '"inapp" item 3 is the string "oops", not an object',
    ),
    "more_records_string": (
        edit_page(set_key("more_records", "no")),
        '"more_records" is the string "no", not a boolean',
    ),
    "more_records_number": (edit_page(set_key("more_records", 1)), '"more_records" is the number 1, not a boolean'),
    "more_records_missing": (edit_page(drop_key("more_records")), '"more_records" is missing, not a boolean'),
    "cursor_missing": (edit_page(drop_key("cursor")), '"more_records" is true but "cursor" is missing'),
    "cursor_empty": (edit_page(set_key("cursor", "")), '"more_records" is true but "cursor" is the string ""'),
    "cursor_null": (edit_page(set_key("cursor", None)), '"more_records" is true but "cursor" is null'),
}


def break_page(category: str, day: date, page: int, transform: Callable[[bytes], bytes]) -> Callable:
    """A proxy rewrite that applies ``transform`` to the 200 answer of ``category``'s ``page`` of ``day``."""

    def rewrite(request: PageRequest, status: int, body: bytes) -> bytes | None:
        wanted = request.categories == (category,) and request.day == day and request.page == page
        return transform(body) if status == 200 and wanted else None

    return rewrite


def error_lines(run: TapRun) -> list[str]:
    """The ERROR lines the run logged."""
    return [line for line in run.stderr.splitlines() if "| ERROR" in line]


def expected_keys(category: str, days: list[date]) -> list[tuple[str, int]]:
    """The keys the emulator holds for ``category`` on ``days``, in order."""
    return [(d, p) for d, p, _ in expected_rows(category, days=days)]


def assert_stopped_on_broken_day(run: TapRun, category: str, phrase: str) -> None:
    """Exit 1, one ERROR line naming the API, the category, the day and the problem, no traceback."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = error_lines(run)
    assert len(errors) == 1, errors
    assert f"Kahuna Logs API sent a bad answer for {category} logs of UTC day {BROKEN_DAY.isoformat()}" in errors[0]
    assert phrase in errors[0], errors[0]


def assert_no_state_past_the_day_before(run: TapRun, stream: str) -> None:
    """Every bookmark of ``stream`` stays at or before the first day (complete), never inside the broken day."""
    bookmarks = [state["bookmarks"][stream] for state in run.states if stream in state.get("bookmarks", {})]
    assert bookmarks, "the first day's STATE was emitted"
    assert all(bookmark["day"] <= DAYS[0].isoformat() for bookmark in bookmarks), bookmarks
    assert all(bookmark.get("replication_key_value", "") < BROKEN_DAY.isoformat() for bookmark in bookmarks), bookmarks
    last = bookmarks[-1]
    assert (last["day"], last["day_records_emitted"]) == (DAYS[0].isoformat(), len(expected_keys("inapp", DAYS[:1])))


@pytest.mark.parametrize("kind", list(BAD_ANSWERS))
def test_bad_first_page_stops_with_the_day_named_and_no_state_past_the_day_before(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., TapRun], kind: str
) -> None:
    transform, phrase = BAD_ANSWERS[kind]
    # The record and cursor edits need a page with records and a cursor: the first page of a day has both.
    with RewritingProxy(clean_emulator.url, break_page("inapp", BROKEN_DAY, 0, transform)) as proxy:
        config = base_config(
            clean_emulator, api_url=f"{proxy.url}/api/kahunalogs", categories=["inapp"], max_concurrency=1
        )
        run = run_tap({**config, "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()})
    assert [request.day for request in proxy.rewritten] == [BROKEN_DAY]
    assert_stopped_on_broken_day(run, "inapp", phrase)
    assert keys(run.records["inapp_logs"]) == expected_keys("inapp", DAYS[:1])
    assert_no_state_past_the_day_before(run, "inapp_logs")


def test_bad_cursor_page_with_parallel_days_emits_nothing_of_the_day(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., TapRun]
) -> None:
    transform, phrase = BAD_ANSWERS["missing_category"]
    with RewritingProxy(clean_emulator.url, break_page("inapp", BROKEN_DAY, 2, transform)) as proxy:
        config = base_config(clean_emulator, api_url=f"{proxy.url}/api/kahunalogs", categories=["inapp"])
        run = run_tap({**config, "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()})
    assert [(request.day, request.page) for request in proxy.rewritten] == [(BROKEN_DAY, 2)]
    assert_stopped_on_broken_day(run, "inapp", phrase)
    assert keys(run.records["inapp_logs"]) == expected_keys("inapp", DAYS[:1]), "pages 0-1 of the day are held back"
    assert_no_state_past_the_day_before(run, "inapp_logs")


def test_rerun_after_a_bad_answer_delivers_every_record_once(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., TapRun]
) -> None:
    config = {**base_config(clean_emulator), "start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()}
    transform, _ = BAD_ANSWERS["only_more_records_false"]
    # Streams run in name order: email and inapp are complete before push breaks; user_merge never starts.
    with RewritingProxy(clean_emulator.url, break_page("push", BROKEN_DAY, 0, transform)) as proxy:
        broken = run_tap({**config, "api_url": f"{proxy.url}/api/kahunalogs"})
    assert_stopped_on_broken_day(broken, "push", 'the page has no "push" array')
    assert broken.final_state["bookmarks"]["push_logs"]["day"] == DAYS[0].isoformat()
    for category in ("email", "inapp"):
        assert keys(broken.records[STREAMS[category]]) == expected_keys(category, DAYS)
    assert "user_merge_logs" not in broken.records

    rerun = run_tap(config, state=broken.final_state)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    push = keys(broken.records["push_logs"]) + keys(rerun.records["push_logs"])
    assert push == expected_keys("push", DAYS), "every push record exactly once over both runs"
    assert keys(rerun.records["user_merge_logs"]) == expected_keys("user_merge", DAYS)
    for category in ("email", "inapp"):
        assert STREAMS[category] not in rerun.records, "complete streams are not sent again"
