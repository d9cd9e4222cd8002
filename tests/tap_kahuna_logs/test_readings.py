"""Exactly once under every reading of the seed the emulator serves (``/_emulator/kahuna/readings``), or one line.

Each reading is crossed with both readings of ``number_of_records`` (``/_emulator/kahuna/paging``: page size, or
the cap of a cursor chain with the server's pages of 250). The days are the hard ones of ``test_both_readings``:
3,801 records per category and day, a run of 300 records sharing one timestamp and a burst of 600 in 10:15; the
tap reads ``inapp`` with ``page_size`` 700.

Where a client can be exact, the test asserts the exact record set, order, keys and bookmarks; where none can
(a capped chain under a server that answers restarts from 00:00, or that sends records out of timestamp order;
a chain that never ends), one ERROR line, exit 1, and only records (and bookmarks) the tap can vouch for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.kahuna_readings import CONTRACT_READINGS, stored_order
from emulators.testing import EmulatorProcess
from tap_kahuna_logs.cursor_chains import (
    EDGE_PROBE_CHAINS,
    MAX_PAGES_WITHOUT_PROGRESS,
    MAX_SHORT_RESTARTS_FROM_DAY_START,
)
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import (
    DayReading,
    assert_bookmark,
    base_config,
    bookmark_after,
    data_keys,
    iso,
    keys,
    request_minute,
)
from tests.tap_kahuna_logs.test_both_readings import PAGE_SIZE, READINGS, config as every_day


def serve(emulator: EmulatorProcess, records_cap: str, **readings: Any) -> EmulatorProcess:
    """The emulator under ``readings`` (the rest as the contract reads them), no faults, an empty request log."""
    emulator.control("kahuna/paging", {"records_cap": records_cap, "chain_page_size": 250})
    assert emulator.control("kahuna/readings", {**CONTRACT_READINGS, **readings}) == {**CONTRACT_READINGS, **readings}
    emulator.set_faults(error_rate=0.0, drop_rate=0.0, rate_limit_rate=0.0, latency_ms=0.0)
    emulator.control("kahuna/cursors", {"expire_rate": 0.0, "expire_after_uses": None, "expire_at_uses": None})
    emulator.reset()
    return emulator


def config(emulator: EmulatorProcess, data: KahunaDataset, **overrides: Any) -> dict[str, Any]:
    """``inapp`` on every day of ``data``, pages of PAGE_SIZE, quick retries."""
    return every_day(emulator, data, **{"categories": ["inapp"], **overrides})


def served(data: KahunaDataset, day: date, order: str) -> list[dict[str, Any]]:
    """The inapp records of ``day`` as the server sends them from 00:00 under ``order``."""
    return DayReading({"order": order}).served("inapp", day, data=data)


def assert_exact(run: PluginRun, data: KahunaDataset, order: str = "timestamp") -> None:
    """Exit 0; every inapp record once, in the server's order, keyed by position, with the final bookmark."""
    assert run.returncode == 0, run.stderr[-3000:]
    records = run.rows("inapp_logs")
    days = {day: served(data, day, order) for day in data.days}
    assert keys(records) == [(day.isoformat(), n) for day, raws in days.items() for n in range(len(raws))]
    served_records = [raw for raws in days.values() for raw in raws]
    assert [record["timestamp"] for record in records] == [iso(raw["timestamp"]) for raw in served_records]
    assert [record["user_id"] for record in records] == [str(raw["user_id"]) for raw in served_records]
    bookmark = run.final_state["bookmarks"]["inapp_logs"]
    today = data.days[-1]
    if order == "timestamp":
        assert_bookmark(bookmark, bookmark_after(data, "inapp", today, 10**9))
    else:  # no minute to resume from: the next run re-reads the day from 00:00 and skips by position
        expected = {"day": today.isoformat(), "day_records_emitted": len(days[today])}
        assert_bookmark(bookmark, {**expected, "last_timestamp": None})


def one_error(run: PluginRun) -> str:
    """Exit 1 with one ERROR line and no traceback; the line."""
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert len(run.error_lines) == 1, run.error_lines
    return run.error_lines[0]


def requests_of(emulator: EmulatorProcess, day: date | None = None) -> list[dict[str, Any]]:
    """The API requests the emulator answered (of ``day``'s chains, when given: the timestamp starts them)."""
    answered = [r for r in emulator.requests() if r["path"].endswith("/api/kahunalogs")]
    if day is None:
        return answered
    chosen, in_day = [], False
    for request in answered:
        body = request["json"]
        if "timestamp" in body:
            in_day = body["timestamp"].startswith(day.strftime("%m/%d/%Y"))
        if in_day:
            chosen.append(request)
    return chosen


def chain_starts(emulator: EmulatorProcess, day: date) -> list[str]:
    """The ``timestamp`` of each chain the tap started for ``day``, in order."""
    return [r["json"]["timestamp"] for r in requests_of(emulator, day) if "timestamp" in r["json"]]


# --- readings a client can be exact under ---------------------------------------------------------------------------
EXACT_READINGS = {
    "more_records-absent-on-the-last-page": {"last_page_more_records": "absent"},
    "expired-cursor-a-generic-400": {"cursor_error": "generic"},
    "pages-overlap": {"page_overlap": True},
    "stored-order": {"order": "stored"},
    "one-late-record": {"order": "one_late"},
    "restart-from-day-start": {"restart_from": "day_start"},
    "all-of-them": {
        "last_page_more_records": "absent",
        "cursor_error": "generic",
        "page_overlap": True,
        "order": "stored",
        "restart_from": "day_start",
    },
}
#: Under the capped reading, these leave no client a way past a chain's cap (tested below).
CAPPED_OUT = {"stored-order", "restart-from-day-start", "all-of-them"}
#: Under the capped reading, a record stored after a chain's end with an earlier timestamp is out of every later
#: request's reach, and the records before it look sorted: no client can read it (the README's known limits).
BEYOND_EVERY_CLIENT_WHEN_CAPPED = {"one-late-record"}


@pytest.mark.parametrize(
    ("reading", "records_cap"),
    [
        pytest.param(reading, records_cap, id=f"{reading}-{records_cap}")
        for reading in EXACT_READINGS
        for records_cap in READINGS
        if records_cap == "page" or reading not in CAPPED_OUT | BEYOND_EVERY_CLIENT_WHEN_CAPPED
    ],
)
def test_every_record_once_with_expiring_cursors_under_each_reading(
    hard_days: EmulatorProcess,
    data: KahunaDataset,
    run_tap: Callable[..., PluginRun],
    reading: str,
    records_cap: str,
) -> None:
    emulator = serve(hard_days, records_cap, **EXACT_READINGS[reading])
    emulator.control("kahuna/cursors", {"expire_rate": 0.08, "seed": 5})
    # one day at a time, the seeded die expires the same requests each run; under one late record no chain from
    # 00:00 falls short three times in a row here (where they do, the day goes on from the minute with a WARNING:
    # the README's known limits)
    one_at_a_time = {"max_concurrency": 1} if reading == "one-late-record" else {}

    run = run_tap(config(emulator, data, **one_at_a_time))

    assert "would not be read" not in run.stderr

    assert_exact(run, data, EXACT_READINGS[reading].get("order", "timestamp"))
    refused = [r for r in requests_of(emulator) if r["status"] == 400]
    assert refused, "cursors expired mid-chain and the day went on"
    assert all("cursor" in r["json"] for r in refused), "only cursor requests were refused"


def test_a_record_stored_late_beyond_an_expired_cursor_is_read_by_position_from_00_00(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "page", order="one_late")
    first = data.days[0]
    served_first = served(data, first, "one_late")
    late = data.records("inapp", first)[3]
    assert served_first.index(late) > PAGE_SIZE, "stored after the first page, which looks sorted"
    assert served_first[PAGE_SIZE]["timestamp"][11:16] > late["timestamp"][11:16], "a minute restart would miss it"
    emulator.control("kahuna/cursors", {"expire_at_uses": [1]})  # the first page's cursor is refused

    run = run_tap(config(emulator, data, max_concurrency=1))

    assert_exact(run, data, "one_late")
    asked = [r["json"] for r in requests_of(emulator, first)]
    assert asked[0]["timestamp"].endswith(" 00:00")
    assert "cursor" in asked[1]
    assert asked[2]["timestamp"] == asked[0]["timestamp"], "the chain after the expiry starts at 00:00 again"
    assert "continuing from 00:00 (skipping the 700 records already read)" in run.stderr
    assert "would not be read" not in run.stderr


def test_a_capped_chain_after_an_expired_cursor_starts_at_00_00_by_position_then_goes_on_from_the_minute(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "chain")
    emulator.control("kahuna/cursors", {"expire_at_uses": [2]})  # the first chain's second cursor (pages of 250)

    run = run_tap(config(emulator, data, max_concurrency=1))

    assert_exact(run, data)
    first = data.days[0]
    restarts = chain_starts(emulator, first)
    assert restarts[:2] == [request_minute(first)] * 2, restarts[:3]
    assert restarts[2] != restarts[0], "after a chain that reached its cap: from the minute of the last record"
    assert "continuing from 00:00 (skipping the 500 records already read)" in run.stderr
    assert "would not be read" not in run.stderr


def test_cursors_that_expire_before_a_chain_from_00_00_gets_past_the_records_held_say_what_is_not_vouched_for(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "page")
    emulator.control("kahuna/cursors", {"expire_rate": 1.0})  # every cursor request is refused

    run = run_tap(config(emulator, data, max_concurrency=1))

    assert_exact(run, data)  # in timestamp order, the chains from the minute read every record
    first = data.days[0]
    assert (
        f"inapp logs of UTC day {first.isoformat()}: 700 records read so far, and its cursors expired before "
        f"{MAX_SHORT_RESTARTS_FROM_DAY_START} chains from 00:00 in a row got past them; continuing from "
    ) in run.stderr
    restarts = chain_starts(emulator, first)
    tries = 1 + MAX_SHORT_RESTARTS_FROM_DAY_START  # the day's first chain, then the chains by position
    assert restarts[:tries] == [request_minute(first)] * tries, restarts[: tries + 1]
    assert restarts[tries] != restarts[0], "then from the minute of the last record"


@pytest.mark.parametrize("records_cap", READINGS)
def test_more_records_absent_costs_no_request_more(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], records_cap: str
) -> None:
    contract = run_tap(config(serve(hard_days, records_cap), data))
    contract_requests = len(requests_of(hard_days))
    absent = run_tap(config(serve(hard_days, records_cap, last_page_more_records="absent"), data))
    assert absent.rows("inapp_logs") == contract.rows("inapp_logs")
    assert len(requests_of(hard_days)) == contract_requests


@pytest.mark.parametrize("records_cap", READINGS)
def test_overlapping_pages_are_learned_at_the_first_two_edges(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], records_cap: str
) -> None:
    emulator = serve(hard_days, records_cap, page_overlap=True)
    run = run_tap(config(emulator, data, max_concurrency=1))
    assert_exact(run, data)
    assert "told by counting" not in run.stderr, "two edges in a row told, no extra request"
    assert not [r for r in requests_of(emulator) if r["json"]["number_of_records"] == 1000]


@pytest.mark.parametrize(
    "probes_refused",
    [0, 1, EDGE_PROBE_CHAINS],
    ids=["told-by-edges-from-00:00", "told-by-a-second-chain-from-00:00", "told-by-counting"],
)
@pytest.mark.parametrize("page_overlap", [False, True], ids=["genuine-repeat", "overlap"])
def test_a_repeat_at_a_chains_only_edge_is_told_without_losing_or_repeating_a_record(
    hard_days: EmulatorProcess,
    data: KahunaDataset,
    run_tap: Callable[..., PluginRun],
    page_overlap: bool,
    probes_refused: int,
) -> None:
    day = data.days[0]
    records = data.records("inapp", day)
    repeat = next(i for i in range(len(records) - 1) if records[i] == records[i + 1])  # the day's genuine repeat
    # resume from a bookmark at the first record of a minute so that the chain from it has two pages, the first
    # ending with the first copy of the repeat: the chain's only edge falls between the two copies
    first_of_minute = [
        i for i in range(1, len(records)) if records[i]["timestamp"][:16] > records[i - 1]["timestamp"][:16]
    ]
    start = next(i for i in first_of_minute if len(records) - repeat - 1 < repeat + 1 - i <= 999)
    page_size = repeat + 1 - start
    state = {
        "bookmarks": {
            "inapp_logs": {
                "day": day.isoformat(),
                "day_records_emitted": start + 1,
                "last_timestamp": iso(records[start]["timestamp"]),
                "minute_records_emitted": 1,
            }
        }
    }
    emulator = serve(hard_days, "page", page_overlap=page_overlap)
    if probes_refused:  # the chain's own cursor request is the 1st; then each chain from 00:00 has its first refused
        emulator.control("kahuna/cursors", {"expire_at_uses": list(range(2, 2 + probes_refused))})
    run = run_tap(
        config(emulator, data, start_date=day.isoformat(), end_date=day.isoformat(), page_size=page_size),
        state=state,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp", [day])[start + 1 :], "both copies, once each"
    told = "repeat the previous page's last record" if page_overlap else "do not overlap"
    counting = probes_refused == EDGE_PROBE_CHAINS
    how = "counting one record in a fresh answer" if counting else "the page edges of a chain from 00:00"
    assert f"Kahuna cursor pages {told} (told by {how})" in run.stderr
    asked = [r["json"] for r in requests_of(emulator)]
    from_day_start = [body for body in asked if body.get("timestamp", "").endswith(" 00:00")]
    assert len(from_day_start) == min(probes_refused + 1, EDGE_PROBE_CHAINS), "chains from 00:00 until one told"
    counted = [body for body in asked if body["number_of_records"] == 1000]
    if counting:
        assert len(counted) == 1, "one request counted"
        assert counted[0]["timestamp"].endswith(records[repeat]["timestamp"][11:16])
    else:
        assert counted == []
        assert len(asked) <= 2 + 2 * probes_refused + 3 + 2, (
            "the chain, two requests per refused chain from 00:00, at most three pages from 00:00, the day's "
            "last-minute check"
        )


# --- readings no client can read past: one line, only what the tap vouches for ---------------------------------------
def test_capped_chains_answered_from_the_day_start_stop_after_the_first_chain(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "chain", restart_from="day_start")
    run = run_tap(config(emulator, data, max_concurrency=1))
    error = one_error(run)
    first = data.days[0]
    assert f"inapp logs of UTC day {first.isoformat()}" in error
    assert "reads only the date of timestamp" in error
    assert f"no request reaches past the first {PAGE_SIZE} records" in error
    assert "Raise page_size (now 700" in error
    # the first chain's records are exact and leave with their bookmark; nothing past them
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp", [first])[:PAGE_SIZE]
    assert_bookmark(run.final_state["bookmarks"]["inapp_logs"], bookmark_after(data, "inapp", first, PAGE_SIZE))


def test_capped_chains_out_of_timestamp_order_stop_the_day_with_nothing_emitted(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "chain", order="stored")
    run = run_tap(config(emulator, data, max_concurrency=1))
    error = one_error(run)
    assert f"inapp logs of UTC day {data.days[0].isoformat()}" in error
    assert "out of timestamp order" in error
    assert "nothing of this day was emitted" in error
    assert run.rows("inapp_logs") == []
    bookmarks = [s["bookmarks"].get("inapp_logs", {}) for s in run.states]
    assert all(not bookmark.get("day_records_emitted") for bookmark in bookmarks), bookmarks


@pytest.mark.parametrize("records_cap", READINGS)
@pytest.mark.parametrize("day_end", ["empty_pages", "repeat_page", "repeat_last"])
def test_a_chain_that_never_ends_stops_after_a_few_pages_with_one_line(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], day_end: str, records_cap: str
) -> None:
    emulator = serve(hard_days, records_cap, day_end=day_end)
    first = data.days[0]
    run = run_tap(config(emulator, data, max_concurrency=1))

    error = one_error(run)
    assert f"inapp logs of UTC day {first.isoformat()}" in error
    assert "pages that bring nothing new (empty, the same page again, or only the last record again): " in error
    # every record of the day arrived before the chain went on without end: they leave, with their bookmark
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp", [first])
    assert_bookmark(run.final_state["bookmarks"]["inapp_logs"], bookmark_after(data, "inapp", first, 10**9))
    # bounded: the pages of the day, then MAX_PAGES_WITHOUT_PROGRESS pages with nothing new, then the stop
    day_requests = requests_of(emulator, first)
    records = len(data.records("inapp", first))
    pages_needed = -(-records // (PAGE_SIZE if records_cap == "page" else 250))
    assert len(day_requests) <= pages_needed + 2 * MAX_PAGES_WITHOUT_PROGRESS + 4, len(day_requests)
    assert not requests_of(emulator, data.days[1]), "the next day was never asked for"


# --- cursors and days -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cursor_error", ["generic", "not_found"])
def test_any_4xx_to_a_cursor_request_restarts_the_chain(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun], cursor_error: str
) -> None:
    emulator = serve(hard_days, "page", cursor_error=cursor_error)
    day = data.days[0]
    emulator.control("kahuna/cursors", {"expire_at_uses": [2, 3]})  # the 2nd and 3rd cursor requests are refused
    run = run_tap(config(emulator, data, start_date=day.isoformat(), end_date=day.isoformat()))
    assert run.returncode == 0, run.stderr[-3000:]
    assert keys(run.rows("inapp_logs")) == data_keys(data, "inapp", [day])
    refused = [r for r in requests_of(emulator) if r["status"] == (404 if cursor_error == "not_found" else 400)]
    assert len(refused) == 2
    assert all("cursor" in r["json"] for r in refused)
    assert run.stderr.count("Cursor expired while reading inapp logs of UTC day") == 2


def test_a_4xx_to_every_cursor_request_stops_with_the_servers_answer(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "page", cursor_error="generic")
    emulator.control("kahuna/cursors", {"expire_rate": 1.0})
    day = data.days[0]
    # pages of 100: a chain from the minute of the run of 300 equal timestamps brings nothing new before its cursor
    run = run_tap(config(emulator, data, start_date=day.isoformat(), end_date=day.isoformat(), page_size=100))
    error = one_error(run)
    assert "keep expiring (or their requests keep being refused: 400 Bad Request: Invalid request parameters)" in error
    assert run.rows("inapp_logs") == []


def test_an_end_date_after_today_reads_to_today(hard_days: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    emulator = serve(hard_days, "page")
    today = datetime.now(timezone.utc).date()
    run = run_tap(
        base_config(
            emulator,
            categories=["inapp"],
            start_date=(today - timedelta(days=1)).isoformat(),
            end_date=(today + timedelta(days=3)).isoformat(),
        )
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"end_date {(today + timedelta(days=3)).isoformat()} is after today (UTC); reading to {today}" in run.stderr
    asked = Counter(r["json"]["timestamp"].split()[0] for r in requests_of(emulator) if "timestamp" in r["json"])
    assert set(asked) == {(today - timedelta(days=1)).strftime("%m/%d/%Y"), today.strftime("%m/%d/%Y")}
    assert run.final_state["bookmarks"]["inapp_logs"]["day"] == today.isoformat()


def test_today_in_a_stored_order_goes_on_by_position_as_it_grows(
    hard_days: EmulatorProcess, data: KahunaDataset, run_tap: Callable[..., PluginRun]
) -> None:
    emulator = serve(hard_days, "page", order="stored")
    today = data.days[-1]
    morning = f"{today.isoformat()}T09:00:00+00:00"
    try:
        emulator.set_clock(now=morning)
        settings = {"start_date": today.isoformat(), "end_date": today.isoformat()}
        first = run_tap(config(emulator, data, **settings))
        emulator.set_clock(now=data.now.isoformat())
        emulator.reset()
        second = run_tap(config(emulator, data, **settings), state=first.final_state)
    finally:
        emulator.set_clock(now=data.now.isoformat())
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    at_morning = data.at(datetime.fromisoformat(morning))
    early = stored_order(at_morning.records("inapp", today), at_morning.now_text)
    whole = stored_order(data.records("inapp", today), data.now_text)
    assert first.final_state["bookmarks"]["inapp_logs"]["last_timestamp"] is None
    assert first.final_state["bookmarks"]["inapp_logs"]["day_records_emitted"] == len(early)
    rows = first.rows("inapp_logs") + second.rows("inapp_logs")
    assert keys(rows) == [(today.isoformat(), n) for n in range(len(whole))], "each position once over both runs"
    assert [row["timestamp"] for row in rows] == [iso(raw["timestamp"]) for raw in whole]
    # the second run re-read today from 00:00 (no minute to resume from) and skipped the records emitted
    starts = [r["json"]["timestamp"] for r in requests_of(emulator) if "timestamp" in r["json"]]
    assert starts[0] == today.strftime("%m/%d/%Y 00:00")
