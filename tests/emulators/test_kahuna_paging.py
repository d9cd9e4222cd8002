"""The Kahuna emulator's two readings of ``number_of_records``, its three time forms and its data-shape knobs."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

import pytest
import requests

from emulators.kahuna_data import KahunaDataset
from emulators.testing import EmulatorProcess
from tests.emulators.kahuna_client import (
    FIXED_NOW,
    YESTERDAY,
    StartEmulator,
    assert_error,
    by_category,
    dataset,
    day_timestamp,
    post,
    read_day_exactly_once,
    read_pages,
)

BIG_DAY = ["--logs-per-day", "3200", "--day-size-jitter", "0"]  # 3,201 in-app records a day (3,200 + the repeat)
CHAIN = ["--records-cap", "chain"]


def records_from(records: list[dict[str, Any]], minute: str) -> list[dict[str, Any]]:
    """The records at or after ``minute`` (``HH:MM``) of their day, as a timestamp request selects them."""
    return [record for record in records if record["timestamp"][11:16] >= minute]


def minute_of(record: dict[str, Any]) -> str:
    """A record's ``HH:MM``."""
    return record["timestamp"][11:16]


def request(day: date, clock: str, number_of_records: int = 1000, category: str = "inapp") -> dict[str, Any]:
    """A timestamp request body."""
    return {
        "timestamp": day_timestamp(day, clock),
        "number_of_records": number_of_records,
        "categories_to_return": [category],
    }


def paging(emulator: EmulatorProcess, **knobs: Any) -> dict[str, Any]:
    """Read (no knobs) or change the paging knobs."""
    return emulator.control("kahuna/paging", knobs or None)


# --- the two readings -------------------------------------------------------------------------------
def test_page_mode_is_the_default_and_number_of_records_is_the_page_size(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", *BIG_DAY)
    assert paging(emulator) == {"records_cap": "page", "chain_page_size": 250}
    expected = dataset(FIXED_NOW, "p", *BIG_DAY).records("inapp", YESTERDAY)
    assert len(expected) == 3201
    pages = read_pages(emulator, ["inapp"], day_timestamp(YESTERDAY), 1000)
    assert [len(page["inapp"]) for page in pages] == [1000, 1000, 1000, 201]
    assert by_category(pages, ["inapp"])["inapp"] == expected


def test_chain_mode_caps_each_chain_at_number_of_records_in_pages_of_250(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", *BIG_DAY, *CHAIN)
    expected = dataset(FIXED_NOW, "p", *BIG_DAY).records("inapp", YESTERDAY)
    assert len(expected) == 3201

    first = read_pages(emulator, ["inapp"], day_timestamp(YESTERDAY), 1000)
    assert [len(page["inapp"]) for page in first] == [250, 250, 250, 250]
    assert first[-1] == {"more_records": False, "inapp": first[-1]["inapp"]}, "the chain ends with no cursor"
    assert by_category(first, ["inapp"])["inapp"] == expected[:1000], "the day holds more, the chain stops anyway"

    read = read_day_exactly_once(emulator, "inapp", YESTERDAY, 1000)
    assert read.records == expected, "every record of the day exactly once, the rest by timestamp requests"
    assert read.server_errors == read.expired_cursors == 0
    held: list[dict[str, Any]] = []
    for start, sizes in zip(read.starts, read.chains, strict=True):
        minute = minute_of(held[-1]) if held else "00:00"
        assert start == day_timestamp(YESTERDAY, f"{int(minute[:2])}:{minute[3:]}")
        wanted = records_from(expected, minute)[:1000]
        assert sum(sizes) == len(wanted), "a chain from a minute returns that minute on, at most number_of_records"
        assert all(size == 250 for size in sizes[:-1])
        held.extend(record for record in wanted[len([r for r in held if minute_of(r) == minute]) :])
    assert held == expected
    assert len(read.chains) == 5, "four chains read the day, a fifth from the last minute brings nothing new"
    assert [sum(sizes) for sizes in read.chains[:3]] == [1000, 1000, 1000]


def test_chain_page_size_and_mode_change_at_run_time_and_a_cursor_keeps_its_cap(
    kahuna_emulator: EmulatorProcess,
) -> None:
    expected = dataset().records("push", YESTERDAY)
    assert len(expected) > 60
    assert paging(kahuna_emulator, records_cap="chain", chain_page_size=25) == {
        "records_cap": "chain",
        "chain_page_size": 25,
    }
    pages = read_pages(kahuna_emulator, ["push"], day_timestamp(YESTERDAY), 60)
    assert [len(page["push"]) for page in pages] == [25, 25, 10]
    assert by_category(pages, ["push"])["push"] == expected[:60]
    single = read_pages(kahuna_emulator, ["push"], day_timestamp(YESTERDAY), 15)
    assert [len(page["push"]) for page in single] == [15], "a cap under the page size is one page"

    started = post(kahuna_emulator, request(YESTERDAY, "0:00", 60, "push")).json()
    paging(kahuna_emulator, records_cap="page")
    body = {"cursor": started["cursor"], "number_of_records": 1000, "categories_to_return": ["push"]}
    rest = read_following(kahuna_emulator, body, "push")
    assert started["push"] + rest == expected[:60], "a cursor keeps its chain's cap; its own number is not used"
    assert by_category(read_pages(kahuna_emulator, ["push"], day_timestamp(YESTERDAY), 1000), ["push"])["push"] == (
        expected
    )


def read_following(emulator: EmulatorProcess, body: dict[str, Any], category: str) -> list[dict[str, Any]]:
    """The records of the pages from a cursor request on."""
    records = []
    while True:
        page = post(emulator, body).json()
        records.extend(page[category])
        if not page["more_records"]:
            return records
        body = {**body, "cursor": page["cursor"]}


def test_chain_mode_from_the_command_line_and_a_combined_chain_shares_one_cap(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", *CHAIN, "--chain-page-size", "7")
    assert paging(emulator) == {"records_cap": "chain", "chain_page_size": 7}
    pages = read_pages(emulator, ["inapp", "push"], day_timestamp(YESTERDAY), 20)
    sizes = [len(page["inapp"]) + len(page["push"]) for page in pages]
    assert sizes == [7, 7, 6]
    merged = sorted(
        [("0", r) for r in dataset().records("inapp", YESTERDAY)]
        + [("1", r) for r in dataset().records("push", YESTERDAY)],
        key=lambda entry: (entry[1]["timestamp"], entry[0]),
    )[:20]
    got = by_category(pages, ["inapp", "push"])
    assert len(got["inapp"]) + len(got["push"]) == 20
    assert got["inapp"] == [r for c, r in merged if c == "0"]
    assert got["push"] == [r for c, r in merged if c == "1"]


def test_paging_knobs_are_checked(kahuna_emulator: EmulatorProcess, start_emulator: StartEmulator) -> None:
    url = f"{kahuna_emulator.url}/_emulator/kahuna/paging"
    for knobs, message in (
        ({"records_cap": "both"}, "records_cap must be one of"),
        ({"chain_page_size": 0}, "chain_page_size must be an integer from 1 to 1000"),
        ({"chain_page_size": 1001}, "chain_page_size must be an integer from 1 to 1000"),
        ({"chain_page_size": "250"}, "chain_page_size must be an integer"),
        ({"page_size": 5}, "unknown paging knob"),
        ([1], "send a JSON object"),
    ):
        response = requests.post(url, json=knobs, timeout=10)
        assert response.status_code == 400
        assert message in response.json()["error"]
    assert paging(kahuna_emulator) == {"records_cap": "page", "chain_page_size": 250}
    with pytest.raises(RuntimeError, match="chain_page_size must be an integer from 1 to 1000") as raised:
        start_emulator("kahuna", "--chain-page-size", "0")
    assert "Traceback" not in str(raised.value)


@pytest.mark.parametrize(("records_cap", "number_of_records"), [("page", 20), ("chain", 400)])
def test_every_record_exactly_once_with_cursor_expiry_and_5xx_under_both_readings(
    start_emulator: StartEmulator, records_cap: str, number_of_records: int
) -> None:
    shape = [
        "--logs-per-day",
        "1500",
        "--burst-minute",
        "09:30",
        "--burst-records",
        "300",
        "--same-timestamp-run",
        "120",
    ]
    emulator = start_emulator(
        "kahuna", *shape, "--records-cap", records_cap, "--chain-page-size", "20", "--error-rate", "0.05"
    )
    emulator.control("kahuna/cursors", {"expire_rate": 0.1, "seed": 5})
    expected = dataset(FIXED_NOW, "p", *shape).records("email", YESTERDAY)
    assert len(expected) > 1500

    read = read_day_exactly_once(emulator, "email", YESTERDAY, number_of_records)
    assert read.records == expected
    assert read.server_errors > 0, "5xx answers were injected"
    assert read.expired_cursors > 0, "cursors expired mid-chain"
    assert emulator.control("kahuna/cursors")["expired_answers"] == read.expired_cursors
    assert max(size for sizes in read.chains for size in sizes) == 20
    if records_cap == "chain":
        assert max(sum(sizes) for sizes in read.chains) <= 400
        assert any(sum(sizes) == 400 for sizes in read.chains), "some chains ran to their cap"


# --- time forms ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("clock", "start"),
    [
        ("13:05", "13:05"),  # the 24-hour form
        ("1:05 PM", "13:05"),  # the AM/PM form
        ("1:05 pm", "13:05"),
        ("01:05PM", "13:05"),
        ("1:05 AM", "01:05"),
        ("12:30 AM", "00:30"),
        ("12:30 PM", "12:30"),
        ("1:05", "01:05"),  # the documented m/dd/yyyy h:mm without AM/PM: read on the 24-hour clock
        ("12:30", "12:30"),
        ("0:00", "00:00"),
        ("23:59", "23:59"),
    ],
)
def test_each_time_form_selects_that_minute_to_the_end_of_the_day(
    kahuna_emulator: EmulatorProcess, clock: str, start: str
) -> None:
    pages = read_pages(kahuna_emulator, ["inapp", "email"], day_timestamp(YESTERDAY, clock), 1000)
    got = by_category(pages, ["inapp", "email"])
    for category in ("inapp", "email"):
        day = dataset().records(category, YESTERDAY)
        assert got[category] == records_from(day, start)
        assert got[category], "the minute onward holds records"
        assert got[category][-1]["timestamp"] == "2026-11-17 23:59:59.999999"


@pytest.mark.parametrize(
    ("timestamp", "detail"),
    [
        ("11/17/2026 13:05 PM", "with AM/PM the hour must be 1 to 12"),
        ("11/17/2026 0:30 AM", "with AM/PM the hour must be 1 to 12"),
        ("11/17/2026 1:05 XM", "m/dd/yyyy h:mm AM|PM"),
        ("11/17/2026 1:5 PM", "m/dd/yyyy h:mm AM|PM"),
        ("11/17/2026 1:60 PM", "not a real UTC date"),
    ],
)
def test_bad_time_forms_get_a_400_naming_the_forms(
    kahuna_emulator: EmulatorProcess, timestamp: str, detail: str
) -> None:
    body = {"timestamp": timestamp, "number_of_records": 5, "categories_to_return": ["inapp"]}
    assert_error(post(kahuna_emulator, body), 400, detail)


# --- data shape knobs ----------------------------------------------------------------------------------
def test_day_size_jitter_zero_gives_exactly_logs_per_day_plus_the_repeat() -> None:
    data = KahunaDataset(seed=42, now=datetime.fromisoformat(FIXED_NOW), days=3, logs_per_day=400, size_jitter=0)
    for day in data.days[:-1]:
        assert [len(data.records(category, day)) for category in ("inapp", "push", "email", "user_merge")] == [
            401,
            401,
            401,
            101,
        ]
    default = KahunaDataset(seed=42, now=datetime.fromisoformat(FIXED_NOW), days=3, logs_per_day=400)
    assert len({len(default.records("inapp", day)) for day in default.days[:-1]}) > 1, "by default sizes vary"


def test_same_timestamp_run_knob_serves_hundreds_of_records_with_one_timestamp(start_emulator: StartEmulator) -> None:
    shape = ["--logs-per-day", "1000", "--same-timestamp-run", "300"]
    emulator = start_emulator("kahuna", *shape)
    expected = dataset(FIXED_NOW, "p", *shape).records("push", YESTERDAY)
    served = by_category(read_pages(emulator, ["push"], day_timestamp(YESTERDAY), 1000), ["push"])["push"]
    assert served == expected
    assert max(Counter(record["timestamp"] for record in served).values()) >= 300
    small = dataset().records("push", YESTERDAY)
    assert max(Counter(record["timestamp"] for record in small).values()) < 300


def test_a_burst_minute_adds_hundreds_of_records_to_that_minute_only(start_emulator: StartEmulator) -> None:
    shape = ["--burst-minute", "10:15", "--burst-records", "400", "--burst-day", YESTERDAY.isoformat()]
    emulator = start_emulator("kahuna", *shape)
    for category in ("inapp", "user_merge"):
        with_burst = dataset(FIXED_NOW, "p", *shape).records(category, YESTERDAY)
        without = dataset().records(category, YESTERDAY)
        served = by_category(read_pages(emulator, [category], day_timestamp(YESTERDAY), 1000), [category])[category]
        assert served == with_burst
        assert len(with_burst) == len(without) + 400
        in_minute = [record for record in with_burst if minute_of(record) == "10:15"]
        assert len(in_minute) >= 400
        assert [r for r in with_burst if minute_of(r) != "10:15"] == [r for r in without if minute_of(r) != "10:15"]
        stamps = [record["timestamp"] for record in with_burst]
        assert stamps == sorted(stamps)
    other_day = date(2026, 11, 16)
    assert dataset(FIXED_NOW, "p", *shape).records("inapp", other_day) == dataset().records("inapp", other_day)
    every_day = dataset(FIXED_NOW, "p", "--burst-minute", "10:15", "--burst-records", "400")
    assert len(every_day.records("inapp", other_day)) == len(dataset().records("inapp", other_day)) + 400


def test_a_minute_over_the_chain_cap_repeats_the_same_chain_in_chain_mode(start_emulator: StartEmulator) -> None:
    shape = ["--burst-minute", "10:15", "--burst-records", "1200"]
    emulator = start_emulator("kahuna", *shape, *CHAIN)
    expected = dataset(FIXED_NOW, "p", *shape).records("push", YESTERDAY)
    from_minute = records_from(expected, "10:15")
    assert len([record for record in from_minute if minute_of(record) == "10:15"]) > 1000

    chains = [
        by_category(read_pages(emulator, ["push"], day_timestamp(YESTERDAY, "10:15"), 1000), ["push"])["push"]
        for _ in range(2)
    ]
    assert chains[0] == chains[1] == from_minute[:1000], "the same 1000 records of that minute, every time"
    assert all(minute_of(record) == "10:15" for record in chains[0])
    read = read_day_exactly_once(emulator, "push", YESTERDAY, 1000)
    assert len(read.records) < len(expected), "no client gets past that minute through this API"
    assert read.records == expected[: len(read.records)]

    paging(emulator, records_cap="page")
    pages = read_pages(emulator, ["push"], day_timestamp(YESTERDAY, "10:15"), 1000)
    assert by_category(pages, ["push"])["push"] == from_minute, "under the page-size reading cursors get through"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--burst-minute", "24:00"], "a minute must be from 00:00 to 23:59"),
        (["--burst-minute", "10.15"], "a minute must look like HH:MM"),
        (["--burst-records", "5"], "burst_records needs burst_minute"),
        (["--same-timestamp-run", "1"], "same_timestamp_run must be at least 2"),
        (["--day-size-jitter", "1.5"], "size_jitter must be from 0 to below 1"),
        (["--records-cap", "sometimes"], "invalid choice"),
    ],
)
def test_bad_data_knobs_stop_the_emulator_with_one_clear_line(
    start_emulator: StartEmulator, args: list[str], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message) as raised:
        start_emulator("kahuna", *args)
    assert "Traceback" not in str(raised.value)
