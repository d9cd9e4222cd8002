"""The Kahuna Logs emulator over real HTTP: auth, every 400 rule, paging, cursor expiry, today's growth, faults."""

from __future__ import annotations

import base64
import itertools
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests

from emulators.kahuna_data import CATEGORIES, KahunaDataset
from emulators.testing import EmulatorProcess
from tests.emulators.kahuna_client import (
    AUTH,
    FIXED_NOW,
    KEY,
    SECRET,
    TODAY,
    YESTERDAY,
    StartEmulator,
    assert_error,
    by_category,
    dataset,
    day_timestamp,
    post,
    read_pages,
)


def first_cursor(emulator: EmulatorProcess, categories: list[str] | None = None, page_size: int = 5) -> str:
    """A fresh cursor: the first page of yesterday."""
    body = {"timestamp": day_timestamp(YESTERDAY), "number_of_records": page_size}
    response = post(emulator, {**body, "categories_to_return": categories or ["inapp"]})
    assert response.status_code == 200
    assert response.json()["more_records"] is True
    return response.json()["cursor"]


def follow(emulator: EmulatorProcess, cursor: str, categories: list[str] | None = None) -> requests.Response:
    """Use ``cursor`` once."""
    return post(emulator, {"cursor": cursor, "number_of_records": 5, "categories_to_return": categories or ["inapp"]})


# --- auth ---------------------------------------------------------------------------------------
def test_wrong_or_missing_credentials_get_401_without_echoing_them(kahuna_emulator: EmulatorProcess) -> None:
    body = {"timestamp": day_timestamp(YESTERDAY), "number_of_records": 5, "categories_to_return": ["inapp"]}
    cases = [None, ("wrong-secret-canary", KEY), (SECRET, "wrong-key-canary"), (KEY, SECRET)]
    for auth in cases:
        error = assert_error(post(kahuna_emulator, body, auth=auth), 401, "")
        assert "canary" not in str(error)
        assert SECRET not in str(error)
        assert KEY not in str(error)
    garbled = requests.post(
        f"{kahuna_emulator.url}/api/kahunalogs?env=p", json=body, headers={"Authorization": "Basic ***"}, timeout=10
    )
    assert_error(garbled, 401, "base64")
    no_pair = base64.b64encode(b"no-colon").decode()
    headers = {"Authorization": f"Basic {no_pair}"}
    response = requests.post(f"{kahuna_emulator.url}/api/kahunalogs?env=p", json=body, headers=headers, timeout=10)
    assert_error(response, 401, "username:password")


def test_not_enabled_api_key_gets_409_and_other_keys_are_configurable(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", "--secret-key", "s3", "--api-key", "k3", "--not-enabled-api-key", "off3")
    body = {"timestamp": day_timestamp(YESTERDAY), "number_of_records": 2, "categories_to_return": ["email"]}
    assert_error(post(emulator, body, auth=("s3", "off3")), 409, "not enabled for the Logs API")
    assert_error(post(emulator, body, auth=("other", "off3")), 401, "invalid credentials")
    assert_error(post(emulator, body, auth=AUTH), 401, "invalid credentials")
    response = post(emulator, body, auth=("s3", "k3"))
    assert response.status_code == 200
    assert response.json()["email"] == dataset().records("email", YESTERDAY)[:2]


# --- every 400 rule ---------------------------------------------------------------------------------
GOOD = {"timestamp": "11/17/2026 0:00", "number_of_records": 10, "categories_to_return": ["inapp"]}
BAD_BODIES = [
    ("neither", {"number_of_records": 10, "categories_to_return": ["inapp"]}, "either timestamp or cursor"),
    ("both", {**GOOD, "cursor": "abc"}, "not both"),
    ("iso-timestamp", {**GOOD, "timestamp": "2026-11-17T00:00:00"}, "m/dd/yyyy h:mm"),
    ("no-minutes", {**GOOD, "timestamp": "11/17/2026"}, "m/dd/yyyy h:mm"),
    ("number-timestamp", {**GOOD, "timestamp": 1763337600}, "m/dd/yyyy h:mm"),
    ("month-13", {**GOOD, "timestamp": "13/01/2026 0:00"}, "not a real UTC date"),
    ("hour-24", {**GOOD, "timestamp": "11/17/2026 24:00"}, "not a real UTC date"),
    ("no-page-size", {k: v for k, v in GOOD.items() if k != "number_of_records"}, "number_of_records is required"),
    ("page-size-string", {**GOOD, "number_of_records": "10"}, "number_of_records must be an integer"),
    ("page-size-float", {**GOOD, "number_of_records": 2.5}, "number_of_records must be an integer"),
    ("page-size-bool", {**GOOD, "number_of_records": True}, "number_of_records must be an integer"),
    ("page-size-0", {**GOOD, "number_of_records": 0}, "from 1 to 1000, got 0"),
    ("page-size-1001", {**GOOD, "number_of_records": 1001}, "from 1 to 1000, got 1001"),
    ("no-categories", {k: v for k, v in GOOD.items() if k != "categories_to_return"}, "categories_to_return is req"),
    ("categories-empty", {**GOOD, "categories_to_return": []}, "categories_to_return is empty"),
    ("categories-string", {**GOOD, "categories_to_return": "inapp"}, "must be a list"),
    ("category-unknown", {**GOOD, "categories_to_return": ["inapp", "sms"]}, 'unknown category "sms"'),
    ("user-merge-combined", {**GOOD, "categories_to_return": ["user_merge", "push"]}, "cannot be combined"),
    ("cursor-not-string", {**GOOD, "timestamp": None, "cursor": 12}, "cursor must be a non-empty string"),
    ("cursor-unknown", {**GOOD, "timestamp": None, "cursor": "bm90LW91cnM"}, "cursor bm90LW91cnM is unknown"),
]


@pytest.mark.parametrize(("body", "detail"), [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES])
def test_each_broken_body_rule_gets_its_own_400(kahuna_emulator: EmulatorProcess, body: Any, detail: str) -> None:
    assert_error(post(kahuna_emulator, body), 400, detail)


def test_body_that_is_not_a_json_object_and_bad_env_get_400(kahuna_emulator: EmulatorProcess) -> None:
    url = f"{kahuna_emulator.url}/api/kahunalogs"
    malformed = requests.post(url, params={"env": "p"}, data=b"{not json", auth=AUTH, timeout=10)
    assert_error(malformed, 400, "not valid JSON")
    empty = requests.post(url, params={"env": "p"}, data=b"", auth=AUTH, timeout=10)
    assert_error(empty, 400, "body is empty")
    assert_error(post(kahuna_emulator, [GOOD]), 400, "must be a JSON object")
    assert_error(post(kahuna_emulator, GOOD, env=None), 400, "env is required")
    assert_error(post(kahuna_emulator, GOOD, env="x"), 400, 'got "x"')
    assert_error(requests.get(url, params={"env": "p"}, auth=AUTH, timeout=10), 405, "POST")
    assert post(kahuna_emulator, GOOD).status_code == 200


def test_cursor_must_come_back_with_its_env_and_categories(kahuna_emulator: EmulatorProcess) -> None:
    cursor = first_cursor(kahuna_emulator, ["inapp", "push"])
    body = {"cursor": cursor, "number_of_records": 5}
    assert_error(post(kahuna_emulator, {**body, "categories_to_return": ["inapp"]}), 400, f"cursor {cursor} was")
    response = post(kahuna_emulator, {**body, "categories_to_return": ["inapp", "push"]}, env="s")
    assert_error(response, 400, f"cursor {cursor} belongs to env=p")
    assert post(kahuna_emulator, {**body, "categories_to_return": ["push", "inapp"]}).status_code == 200


# --- pagination ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("categories", "page_size"),
    [
        (["inapp"], 1),
        (["push"], 7),
        (["email"], 1000),
        (["user_merge"], 1),
        (["user_merge"], 7),
        (["inapp", "push", "email"], 7),
        (["email", "inapp"], 1000),
        (["inapp", "push", "email"], 1),
    ],
)
def test_following_cursors_returns_every_record_of_the_day_once(
    kahuna_emulator: EmulatorProcess, categories: list[str], page_size: int
) -> None:
    pages = read_pages(kahuna_emulator, categories, day_timestamp(YESTERDAY), page_size)
    expected = {category: dataset().records(category, YESTERDAY) for category in categories}
    assert by_category(pages, categories) == expected
    total = sum(len(records) for records in expected.values())
    assert len(pages) == -(-total // page_size)
    sizes = [sum(len(page[category]) for category in categories) for page in pages]
    assert all(size == page_size for size in sizes[:-1])
    assert 1 <= sizes[-1] <= page_size
    for page in pages:
        assert set(page) - {"more_records", "cursor"} == set(categories)


def test_combined_pages_hold_page_size_records_in_timestamp_order(kahuna_emulator: EmulatorProcess) -> None:
    categories = ["inapp", "push", "email"]
    pages = read_pages(kahuna_emulator, categories, day_timestamp(YESTERDAY), 7)
    for page in pages[:-1]:
        assert sum(len(page[category]) for category in categories) == 7
    assert 1 <= sum(len(pages[-1][category]) for category in categories) <= 7
    previous_last = ""
    for page in pages:
        stamps = sorted(record["timestamp"] for category in categories for record in page[category])
        assert stamps[0] >= previous_last, "a page starts no earlier than the previous page ended"
        previous_last = stamps[-1]


def test_a_timestamp_in_mid_day_starts_at_that_minute(kahuna_emulator: EmulatorProcess) -> None:
    for clock, start in (("9:05", "2026-11-17 09:05:00.000000"), ("09:05", "2026-11-17 09:05:00.000000")):
        pages = read_pages(kahuna_emulator, ["push", "email"], day_timestamp(YESTERDAY, clock), 11)
        got = by_category(pages, ["push", "email"])
        for category in ("push", "email"):
            expected = [r for r in dataset().records(category, YESTERDAY) if r["timestamp"] >= start]
            assert got[category] == expected
            assert 0 < len(expected) < len(dataset().records(category, YESTERDAY))
    late = read_pages(kahuna_emulator, ["inapp"], "11/17/2026 23:59", 5)
    assert [r["timestamp"] for r in by_category(late, ["inapp"])["inapp"]][-1] == "2026-11-17 23:59:59.999999"


def test_days_outside_the_window_answer_empty_pages(kahuna_emulator: EmulatorProcess) -> None:
    for day in (TODAY + timedelta(days=1), TODAY - timedelta(days=5), date(2016, 7, 30)):
        pages = read_pages(kahuna_emulator, ["inapp", "push"], day_timestamp(day), 10)
        assert pages == [{"more_records": False, "inapp": [], "push": []}]


def test_todays_partial_day_grows_as_the_clock_advances(kahuna_emulator: EmulatorProcess) -> None:
    before = by_category(read_pages(kahuna_emulator, ["inapp", "push"], day_timestamp(TODAY), 9), ["inapp", "push"])
    later = "2026-11-18T21:45:00+00:00"
    kahuna_emulator.set_clock(now=later)
    after = by_category(read_pages(kahuna_emulator, ["inapp", "push"], day_timestamp(TODAY), 9), ["inapp", "push"])
    for category in ("inapp", "push"):
        assert before[category] == dataset(FIXED_NOW).records(category, TODAY)
        assert after[category] == dataset(later).records(category, TODAY)
        assert all(r["timestamp"] <= "2026-11-18 15:30:00.000000" for r in before[category])
        assert after[category][: len(before[category])] == before[category]
        assert len(after[category]) > len(before[category])


def test_a_cursor_taken_before_the_clock_advances_continues_into_new_records(kahuna_emulator: EmulatorProcess) -> None:
    everything_now = dataset(FIXED_NOW).records("email", TODAY)
    page_size = len(everything_now) - 1
    first = post(
        kahuna_emulator,
        {"timestamp": day_timestamp(TODAY), "number_of_records": page_size, "categories_to_return": ["email"]},
    ).json()
    assert first["more_records"] is True
    kahuna_emulator.set_clock(advance_seconds=6 * 3600)
    rest = post(
        kahuna_emulator, {"cursor": first["cursor"], "number_of_records": 1000, "categories_to_return": ["email"]}
    ).json()
    later = dataset("2026-11-18T21:30:00+00:00").records("email", TODAY)
    assert first["email"] + rest["email"] == later
    assert len(later) > len(everything_now)


def test_sandbox_serves_a_different_smaller_data_set(kahuna_emulator: EmulatorProcess) -> None:
    for category in CATEGORIES:
        production = by_category(read_pages(kahuna_emulator, [category], day_timestamp(YESTERDAY), 50), [category])
        sandbox = by_category(
            read_pages(kahuna_emulator, [category], day_timestamp(YESTERDAY), 50, env="s"), [category]
        )
        assert production[category] == dataset().records(category, YESTERDAY)
        assert sandbox[category] == dataset(env="s").records(category, YESTERDAY)
        assert len(sandbox[category]) < len(production[category])
        assert sandbox[category] != production[category][: len(sandbox[category])]


def test_the_served_day_holds_the_hard_cases(kahuna_emulator: EmulatorProcess) -> None:
    pages = read_pages(kahuna_emulator, ["inapp", "push", "email"], day_timestamp(YESTERDAY), 1000)
    records = by_category(pages, ["inapp", "push", "email"])
    for category, day_records in records.items():
        stamps = [r["timestamp"] for r in day_records]
        assert stamps == sorted(stamps)
        assert stamps[0] == "2026-11-17 00:00:00.000000"
        assert stamps[-1] == "2026-11-17 23:59:59.999999"
        longest_run = max(stamps.count(stamp) for stamp in set(stamps))
        assert longest_run >= 15, f"{category}: a run of one timestamp longer than small pages"
        assert any(a == b for a, b in itertools.pairwise(day_records)), "a genuine repeat"
    every = [r for day_records in records.values() for r in day_records]
    credentials = [c for r in every for c in r.get("credentials", [])]
    assert any(c.startswith("email:a:b") for c in credentials), "a credential value holding ':'"
    assert any(":" not in c for c in credentials), "a credential without a type"
    assert any("experiment" in r for r in every), "an unknown extra field"
    assert any(not r.get("message", "").isascii() for r in every), "unicode in messages"
    push_fields = {"dev_id", "user_id", "campaign", "campaign_id", "push_token", "os", "ghost", "message"}
    assert any(not push_fields <= set(r) for r in records["push"]), "push records with missing fields"
    for record in records["inapp"]:
        assert record["action"] in ("ia_available", "ia_delivered", "ia_goal", "precomplete")
        assert ("message" in record) == (record["action"] in ("ia_available", "ia_delivered"))
        assert ("action_detail" in record) == (record["action"] in ("ia_goal", "precomplete"))


def test_user_merge_records_have_the_contract_fields(kahuna_emulator: EmulatorProcess) -> None:
    merges = by_category(read_pages(kahuna_emulator, ["user_merge"], day_timestamp(YESTERDAY), 13), ["user_merge"])
    assert merges["user_merge"]
    for record in merges["user_merge"]:
        assert {
            "timestamp",
            "surviving_user_id",
            "merged_user_id",
            "common_credentials",
            "surviving_credentials",
            "merged_credentials",
        } <= set(record)


# --- cursor expiry ----------------------------------------------------------------------------------
def restart_reads_the_whole_day(emulator: EmulatorProcess) -> None:
    """After an expiry, the day read again from 00:00 is complete."""
    emulator.control("kahuna/cursors", {"expire_after_uses": None, "ttl_seconds": None, "expire_rate": 0.0})
    pages = read_pages(emulator, ["inapp"], day_timestamp(YESTERDAY), 7)
    assert by_category(pages, ["inapp"])["inapp"] == dataset().records("inapp", YESTERDAY)


def test_a_cursor_expires_after_n_uses(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.control("kahuna/cursors", {"expire_after_uses": 2})
    cursor = first_cursor(kahuna_emulator)
    first_use, second_use = follow(kahuna_emulator, cursor), follow(kahuna_emulator, cursor)
    assert first_use.status_code == second_use.status_code == 200
    assert first_use.json()["inapp"] == second_use.json()["inapp"] == dataset().records("inapp", YESTERDAY)[5:10]
    assert first_use.json()["cursor"] != second_use.json()["cursor"]
    assert_error(follow(kahuna_emulator, cursor), 400, f"cursor {cursor} has expired")
    assert follow(kahuna_emulator, second_use.json()["cursor"]).status_code == 200
    assert kahuna_emulator.control("kahuna/cursors")["expired_answers"] == 1
    restart_reads_the_whole_day(kahuna_emulator)


def test_expire_at_uses_expires_exactly_the_kth_cursor_request(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.control("kahuna/cursors", {"expire_at_uses": [2]})
    cursor = first_cursor(kahuna_emulator)
    second = follow(kahuna_emulator, cursor)
    assert second.status_code == 200
    next_cursor = second.json()["cursor"]
    assert_error(follow(kahuna_emulator, next_cursor), 400, f"cursor {next_cursor} has expired")
    state = kahuna_emulator.control("kahuna/cursors")
    assert state["cursor_uses"] == 2
    assert state["expired_answers"] == 1
    restart_reads_the_whole_day(kahuna_emulator)
    assert kahuna_emulator.control("kahuna/cursors")["expired_answers"] == 1  # only the 2nd use expired
    bad = requests.post(f"{kahuna_emulator.url}/_emulator/kahuna/cursors", json={"expire_at_uses": [0]}, timeout=10)
    assert bad.status_code == 400
    assert "expire_at_uses must be a list of integers >= 1" in bad.json()["error"]


def test_expire_after_uses_from_the_command_line(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", "--cursor-expire-after-uses", "1")
    cursor = first_cursor(emulator)
    assert follow(emulator, cursor).status_code == 200
    assert_error(follow(emulator, cursor), 400, f"cursor {cursor} has expired; restart from the timestamp")


def test_a_cursor_expires_after_its_ttl(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.control("kahuna/cursors", {"ttl_seconds": 3600})
    assert follow(kahuna_emulator, first_cursor(kahuna_emulator)).status_code == 200
    kahuna_emulator.control("kahuna/cursors", {"ttl_seconds": 0})
    cursor = first_cursor(kahuna_emulator)
    assert_error(follow(kahuna_emulator, cursor), 400, f"cursor {cursor} has expired")
    restart_reads_the_whole_day(kahuna_emulator)


def test_ttl_from_the_command_line_counts_real_time_not_the_frozen_clock(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", "--cursor-ttl-seconds", "0")
    cursor = first_cursor(emulator)
    assert emulator.control("clock")["now"] == FIXED_NOW
    assert_error(follow(emulator, cursor), 400, f"cursor {cursor} has expired")


def test_cursors_expire_at_the_configured_rate(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.control("kahuna/cursors", {"expire_rate": 0.5, "seed": 7})
    expired = 0
    for _ in range(200):
        cursor = first_cursor(kahuna_emulator)
        response = follow(kahuna_emulator, cursor)
        if response.status_code == 400:
            assert_error(response, 400, f"cursor {cursor} has expired")
            assert_error(follow(kahuna_emulator, cursor), 400, f"cursor {cursor} has expired")
            expired += 1
        else:
            assert response.status_code == 200
    assert 70 <= expired <= 130
    kahuna_emulator.control("kahuna/cursors", {"expire_rate": 1.0})
    assert follow(kahuna_emulator, first_cursor(kahuna_emulator)).status_code == 400
    restart_reads_the_whole_day(kahuna_emulator)


def test_expire_all_expires_every_outstanding_cursor_once(kahuna_emulator: EmulatorProcess) -> None:
    cursors = [first_cursor(kahuna_emulator, categories) for categories in (["inapp"], ["push"], ["user_merge"])]
    state = kahuna_emulator.control("kahuna/cursors", {"expire_all": True})
    assert state["outstanding"] == 0
    assert state["issued"] == 3
    for cursor, categories in zip(cursors, (["inapp"], ["push"], ["user_merge"]), strict=True):
        assert_error(follow(kahuna_emulator, cursor, categories), 400, f"cursor {cursor} has expired")
    assert follow(kahuna_emulator, first_cursor(kahuna_emulator)).status_code == 200
    restart_reads_the_whole_day(kahuna_emulator)


def test_reset_forgets_cursors_and_the_control_route_rejects_bad_knobs(kahuna_emulator: EmulatorProcess) -> None:
    cursor = first_cursor(kahuna_emulator)
    kahuna_emulator.reset()
    assert_error(follow(kahuna_emulator, cursor), 400, f"cursor {cursor} has expired")
    for knobs in ({"expire_rate": 2}, {"expire_after_uses": 0}, {"ttl_seconds": "soon"}, {"expire_sometimes": 1}):
        response = requests.post(f"{kahuna_emulator.url}/_emulator/kahuna/cursors", json=knobs, timeout=10)
        assert response.status_code == 400
        assert "error" in response.json()
    assert kahuna_emulator.control("kahuna/cursors")["expire_rate"] == 0.0


# --- faults -------------------------------------------------------------------------------------------
def test_error_rate_half_gives_about_half_5xx(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.set_faults(error_rate=0.5, seed=3)
    statuses = [post(kahuna_emulator, GOOD).status_code for _ in range(400)]
    failures = sum(1 for status in statuses if status >= 500)
    assert set(statuses) <= {200, 500, 503}
    assert 0.35 * 400 <= failures <= 0.65 * 400
    log = kahuna_emulator.requests()
    assert [entry["status"] for entry in log] == statuses


# --- the dataset API ----------------------------------------------------------------------------------
def test_dataset_days_end_today_and_a_day_never_changes_with_now_or_window() -> None:
    data = KahunaDataset(seed=42, now=datetime.fromisoformat(FIXED_NOW), days=5, logs_per_day=120)
    assert data.days == [TODAY - timedelta(days=n) for n in (4, 3, 2, 1, 0)]
    wider = KahunaDataset(seed=42, now=datetime.fromisoformat("2026-11-20T01:00:00+00:00"), days=30, logs_per_day=120)
    for category in CATEGORIES:
        assert data.records(category, YESTERDAY) == wider.records(category, YESTERDAY)
        assert data.records(category, TODAY) == wider.records(category, TODAY)[: len(data.records(category, TODAY))]
        assert data.records(category, TODAY + timedelta(days=1)) == []
    other_seed = KahunaDataset(seed=43, now=datetime.fromisoformat(FIXED_NOW), days=5, logs_per_day=120)
    assert other_seed.records("inapp", YESTERDAY) != data.records("inapp", YESTERDAY)
    assert dataset().records("push", YESTERDAY) == data.records("push", YESTERDAY)
    with pytest.raises(ValueError, match="env must be"):
        KahunaDataset(env="x")
