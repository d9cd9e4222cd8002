"""The Kahuna emulator's readings of the seed besides ``number_of_records`` (``/_emulator/kahuna/readings``).

Each knob is checked over HTTP as a client sees it: the pages, their fields, the cursors and the error answers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import requests

from emulators.kahuna_readings import CONTRACT_READINGS, stored_order
from emulators.testing import EmulatorProcess
from tests.emulators.kahuna_client import (
    YESTERDAY,
    StartEmulator,
    assert_error,
    dataset,
    day_timestamp,
    post,
)


@pytest.fixture
def kahuna(kahuna_emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The shared emulator, put back to the contract's readings afterwards."""
    kahuna_emulator.reset()
    yield kahuna_emulator
    kahuna_emulator.control("kahuna/readings", CONTRACT_READINGS)
    kahuna_emulator.control("kahuna/cursors", {"expire_at_uses": None})
    kahuna_emulator.reset()


def readings(emulator: EmulatorProcess, **knobs: Any) -> dict[str, Any]:
    """Set (or, with none, read) the readings."""
    return emulator.control("kahuna/readings", knobs or None)


def body(minute: str = "0:00", number_of_records: int = 50, **extra: Any) -> dict[str, Any]:
    """A timestamp request for YESTERDAY's in-app logs."""
    return {
        "timestamp": day_timestamp(YESTERDAY, minute),
        "number_of_records": number_of_records,
        "categories_to_return": ["inapp"],
        **extra,
    }


def follow(emulator: EmulatorProcess, first: dict[str, Any], most: int = 50) -> list[dict[str, Any]]:
    """The pages of one chain (at most ``most``), following cursors while a page has one."""
    pages = [post(emulator, first).json()]
    while pages[-1].get("cursor") and len(pages) < most:
        cursor = {"cursor": pages[-1]["cursor"], "number_of_records": first["number_of_records"]}
        pages.append(post(emulator, {**cursor, "categories_to_return": ["inapp"]}).json())
    return pages


YESTERDAYS = dataset().records("inapp", YESTERDAY)


def test_the_contract_is_the_default_and_knobs_are_checked(kahuna: EmulatorProcess) -> None:
    assert readings(kahuna) == CONTRACT_READINGS
    url = f"{kahuna.url}/_emulator/kahuna/readings"
    for bad, phrase in [
        ({"day_end": "sometimes"}, "day_end must be one of"),
        ({"page_overlap": "yes"}, "page_overlap must be true or false"),
        ({"order": "random"}, "order must be one of"),
        ({"paging": 1}, "unknown reading knob"),
    ]:
        answer = requests.post(url, json=bad, timeout=10)
        assert answer.status_code == 400
        assert phrase in answer.json()["error"]
    assert readings(kahuna) == CONTRACT_READINGS


def test_more_records_absent_on_the_last_page(kahuna: EmulatorProcess) -> None:
    readings(kahuna, last_page_more_records="absent")
    pages = follow(kahuna, body())
    assert all(page["more_records"] is True and page["cursor"] for page in pages[:-1])
    assert "more_records" not in pages[-1]
    assert "cursor" not in pages[-1]
    assert [record for page in pages for record in page["inapp"]] == YESTERDAYS


@pytest.mark.parametrize(
    ("cursor_error", "status", "detail"),
    [("names_cursor", 400, "has expired"), ("generic", 400, "Invalid request parameters"), ("not_found", 404, "")],
)
def test_an_expired_cursor_is_answered_under_each_reading(
    kahuna: EmulatorProcess, cursor_error: str, status: int, detail: str
) -> None:
    readings(kahuna, cursor_error=cursor_error)
    first = post(kahuna, body()).json()
    kahuna.control("kahuna/cursors", {"expire_all": True})
    answer = post(kahuna, {"cursor": first["cursor"], "number_of_records": 50, "categories_to_return": ["inapp"]})
    error = assert_error(answer, status, detail)
    assert (first["cursor"] in error["error_detail"]) is (cursor_error == "names_cursor")


def test_a_restart_answered_from_the_day_start(kahuna: EmulatorProcess) -> None:
    readings(kahuna, restart_from="day_start")
    later = YESTERDAYS[len(YESTERDAYS) // 2]["timestamp"][11:16]
    pages = follow(kahuna, body(later))
    assert [record for page in pages for record in page["inapp"]] == YESTERDAYS, "from 00:00 whatever the minute"


@pytest.mark.parametrize("day_end", ["empty_pages", "repeat_page", "repeat_last"])
def test_a_chain_that_never_ends(kahuna: EmulatorProcess, day_end: str) -> None:
    readings(kahuna, day_end=day_end)
    pages = follow(kahuna, body(number_of_records=40), most=12)
    assert len(pages) == 12
    assert all(page["more_records"] is True and page["cursor"] for page in pages)
    whole = -(-len(YESTERDAYS) // 40)
    assert [record for page in pages[:whole] for record in page["inapp"]] == YESTERDAYS
    after = [page["inapp"] for page in pages[whole:]]
    expected = {"empty_pages": [], "repeat_page": pages[whole - 1]["inapp"], "repeat_last": YESTERDAYS[-1:]}[day_end]
    assert after == [expected] * len(after)


def test_overlapping_pages_start_with_the_previous_last_record(kahuna: EmulatorProcess) -> None:
    readings(kahuna, page_overlap=True)
    pages = follow(kahuna, body(number_of_records=30))
    assert pages[-1]["more_records"] is False
    for before, page in pairwise(pages):
        assert page["inapp"][0] == before["inapp"][-1]
        assert len(page["inapp"]) <= 30
    read_once = pages[0]["inapp"] + [record for page in pages[1:] for record in page["inapp"][1:]]
    assert read_once == YESTERDAYS


def test_records_in_a_stored_order_that_is_not_timestamp_order(kahuna: EmulatorProcess) -> None:
    readings(kahuna, order="stored")
    pages = follow(kahuna, body(number_of_records=1000))
    served = [record for page in pages for record in page["inapp"]]
    assert served == stored_order(YESTERDAYS, dataset().now_text)
    late = YESTERDAYS[3]  # every seventh record, from the 4th, arrives 45 minutes late
    assert served.index(late) > 3
    assert served[served.index(late) - 1]["timestamp"] > late["timestamp"], "stored after later records"
    assert served != YESTERDAYS
    assert Counter(json.dumps(r, sort_keys=True) for r in served) == Counter(
        json.dumps(r, sort_keys=True) for r in YESTERDAYS
    ), "the same records"
    # a timestamp request selects the records at or after it, in that same order
    minute = YESTERDAYS[len(YESTERDAYS) // 2]["timestamp"][11:16]
    later = [record for page in follow(kahuna, body(minute, 1000)) for record in page["inapp"]]
    assert later == [record for record in served if record["timestamp"][11:16] >= minute]


def test_one_late_record_is_stored_after_the_records_of_six_hours(kahuna: EmulatorProcess) -> None:
    readings(kahuna, order="one_late")
    served = [record for page in follow(kahuna, body(number_of_records=1000)) for record in page["inapp"]]
    late = YESTERDAYS[3]
    assert served == stored_order(YESTERDAYS, dataset().now_text, "one_late")
    assert [record for record in served if record != late] == YESTERDAYS[:3] + YESTERDAYS[4:]
    at = served.index(late)
    assert served[:at] == sorted(served[:at], key=lambda record: record["timestamp"]), "sorted before it"
    six_hours_on = f"{YESTERDAY.isoformat()} {int(late['timestamp'][11:13]) + 6:02d}{late['timestamp'][13:]}"
    assert served[at - 1]["timestamp"] <= six_hours_on < served[at + 1]["timestamp"]
    # a request from a minute after it never selects it
    minute = served[at - 1]["timestamp"][11:16]
    later = [record for page in follow(kahuna, body(minute, 1000)) for record in page["inapp"]]
    assert late not in later
    assert later == [record for record in served if record["timestamp"][11:16] >= minute]


def test_the_chain_cap_counts_a_repeated_page_once(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", "--records-cap", "chain", "--chain-page-size", "25")
    readings(emulator, day_end="repeat_page")
    pages = follow(emulator, body(number_of_records=1000), most=30)
    whole = -(-len(YESTERDAYS) // 25)
    assert [record for page in pages[:whole] for record in page["inapp"]] == YESTERDAYS
    assert all(page["inapp"] == pages[whole - 1]["inapp"] for page in pages[whole:]), "the same page, not shrinking"


def test_a_stored_order_day_only_grows_at_its_end(kahuna: EmulatorProcess) -> None:
    readings(kahuna, order="stored")
    today = dataset().days[-1]
    morning = f"{today.isoformat()}T09:00:00+00:00"
    kahuna.set_clock(now=morning)
    early = [r for page in follow(kahuna, {**body(number_of_records=1000), "timestamp": day_timestamp(today)})
             for r in page["inapp"]]  # fmt: skip
    kahuna.set_clock(now=f"{today.isoformat()}T15:30:00+00:00")
    later = [r for page in follow(kahuna, {**body(number_of_records=1000), "timestamp": day_timestamp(today)})
             for r in page["inapp"]]  # fmt: skip
    assert later[: len(early)] == early, "records only get appended in the stored order"
    assert len(later) > len(early)
    assert any(r["timestamp"] < morning.replace("T", " ")[:19] for r in later[len(early) :]), "late arrivals"
