"""The core fault layer's answer corruption: every kind, targeting per service, rule precedence, checks and logs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulators.testing import EmulatorProcess
from tests.emulators.kahuna_client import (
    YESTERDAY,
    StartEmulator,
    by_category,
    dataset,
    day_timestamp,
    post,
    read_pages,
)

DAY = YESTERDAY.isoformat()
WHOLE_DAY = {"timestamp": day_timestamp(YESTERDAY), "number_of_records": 1000, "categories_to_return": ["inapp"]}


def kahuna_page(emulator: EmulatorProcess, body: dict[str, Any] = WHOLE_DAY, env: str = "p") -> requests.Response:
    """One Logs API answer (the whole of yesterday's in-app logs fit one page: no cursor, so a stable body)."""
    return post(emulator, body, env)


def rule_error(emulator: EmulatorProcess, rule: Any) -> str:
    """The 400 error a bad rule gets."""
    response = requests.post(f"{emulator.url}/_emulator/corruptions", json=rule, timeout=10)
    assert response.status_code == 400, response.text
    return response.json()["error"]


def numbers_as_strings(value: Any) -> Any:
    """What ``wrong_types`` makes of a value."""
    if isinstance(value, list):
        return [numbers_as_strings(item) for item in value]
    if isinstance(value, dict):
        return {name: numbers_as_strings(item) for name, item in value.items()}
    return f"{value}a" if isinstance(value, int | float) and not isinstance(value, bool) else value


# --- Kahuna: every kind --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "broken"),
    [
        ("truncated_json", lambda clean: clean[: len(clean) // 2]),
        ("malformed_json", lambda clean: clean.replace(b'"', b"'", 4)),
    ],
)
def test_text_kinds_rewrite_the_body_bytes_and_keep_status_200(
    kahuna_emulator: EmulatorProcess, kind: str, broken: Callable[[bytes], bytes]
) -> None:
    clean = kahuna_page(kahuna_emulator).content
    kahuna_emulator.corrupt(kind, {"day": DAY})
    response = kahuna_page(kahuna_emulator)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == broken(clean)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_html_200_is_an_html_page_with_status_200(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("html_200", {"category": "inapp"})
    response = kahuna_page(kahuna_emulator)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<html>")
    assert "Service Unavailable" in response.text


@pytest.mark.parametrize(
    ("rule", "edit"),
    [
        ({"kind": "missing_key"}, lambda page: {k: v for k, v in page.items() if k != "inapp"}),
        ({"kind": "missing_key", "key": "more_records"}, lambda page: {"inapp": page["inapp"]}),
        ({"kind": "wrong_types"}, lambda page: {**page, "inapp": numbers_as_strings(page["inapp"])}),
        ({"kind": "set_key", "value": None}, lambda page: {**page, "inapp": None}),
        ({"kind": "set_key", "key": "more_records", "value": "no"}, lambda page: {**page, "more_records": "no"}),
        ({"kind": "replace_body", "value": []}, lambda page: []),
        ({"kind": "replace_body", "value": {"more_records": False}}, lambda page: {"more_records": False}),
        (
            {"kind": "insert_item", "index": 3, "value": "oops"},
            lambda page: {**page, "inapp": [*page["inapp"][:3], "oops", *page["inapp"][3:]]},
        ),
    ],
)
def test_json_kinds_edit_the_main_key_or_the_named_key(
    kahuna_emulator: EmulatorProcess, rule: dict[str, Any], edit: Callable[[dict], Any]
) -> None:
    clean = kahuna_page(kahuna_emulator).json()
    assert clean["inapp"] == dataset().records("inapp", YESTERDAY)
    kahuna_emulator.corrupt(target={"category": "inapp", "day": DAY}, **rule)
    response = kahuna_page(kahuna_emulator)
    assert response.status_code == 200
    assert response.json() == edit(clean)
    if rule["kind"] == "wrong_types":
        assert all(isinstance(record["user_id"], str) for record in response.json()["inapp"])


def test_kahuna_wrong_types_leaves_booleans_and_strings_alone(kahuna_emulator: EmulatorProcess) -> None:
    body = {**WHOLE_DAY, "categories_to_return": ["push"]}
    clean = kahuna_page(kahuna_emulator, body).json()["push"]
    kahuna_emulator.corrupt("wrong_types", {"category": "push"})
    broken = kahuna_page(kahuna_emulator, body).json()["push"]
    ghosts = [record["ghost"] for record in clean if "ghost" in record]
    assert ghosts
    assert [record["ghost"] for record in broken if "ghost" in record] == ghosts
    assert [record["timestamp"] for record in broken] == [record["timestamp"] for record in clean]
    assert [record.get("campaign_id") for record in broken] == [
        f"{record['campaign_id']}a" if "campaign_id" in record else None for record in clean
    ]


# --- Kahuna: targeting -------------------------------------------------------------------------------------
def test_a_rule_breaks_one_page_of_one_days_chain_of_one_category(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("missing_key", {"category": "inapp", "day": DAY, "page": 2})
    pages = read_pages(kahuna_emulator, ["inapp"], day_timestamp(YESTERDAY), 10)
    expected = dataset().records("inapp", YESTERDAY)
    assert "inapp" not in pages[2]
    assert pages[2]["more_records"] is True
    for number, page in enumerate(pages):
        if number != 2:
            assert page["inapp"] == expected[number * 10 : number * 10 + 10], f"page {number} unharmed"
    assert len(pages) > 3
    other_day = read_pages(kahuna_emulator, ["inapp"], day_timestamp(YESTERDAY.replace(day=16)), 10)
    other_category = read_pages(kahuna_emulator, ["push"], day_timestamp(YESTERDAY), 10)
    assert all("inapp" in page for page in other_day)
    assert all("push" in page for page in other_category)

    applied = kahuna_emulator.corrupted_answers()
    assert applied == [
        {
            "kind": "missing_key",
            "target": {"env": "p", "category": ["inapp"], "day": DAY, "page": 2, "start": "00:00"},
        }
    ]
    log = kahuna_emulator.requests()
    assert [entry.get("corrupted") for entry in log].count("missing_key") == 1
    assert log[2]["corrupted"] == "missing_key"
    assert log[2]["status"] == 200


def test_env_start_and_times_pick_answers_and_a_spent_rule_is_gone(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("html_200", {"env": "s", "start": "09:05", "page": 0}, times=1)
    body = {**WHOLE_DAY, "timestamp": day_timestamp(YESTERDAY, "9:05")}
    assert kahuna_page(kahuna_emulator, body, env="p").json()["inapp"], "production is not targeted"
    assert kahuna_page(kahuna_emulator, {**body, "timestamp": day_timestamp(YESTERDAY, "9:06")}, env="s").json()
    assert kahuna_page(kahuna_emulator, body, env="s").text.startswith("<html>")
    again = kahuna_page(kahuna_emulator, body, env="s").json()["inapp"]
    assert again == [r for r in dataset(env="s").records("inapp", YESTERDAY) if r["timestamp"][11:16] >= "09:05"]
    assert kahuna_emulator.control("corruptions")["rules"] == []
    assert [answer["target"]["env"] for answer in kahuna_emulator.corrupted_answers()] == ["s"]


def test_a_combined_request_is_targeted_by_any_of_its_categories_and_loses_that_array(
    kahuna_emulator: EmulatorProcess,
) -> None:
    kahuna_emulator.corrupt("missing_key", {"category": "push"})
    body = {**WHOLE_DAY, "categories_to_return": ["inapp", "push"]}
    page = kahuna_page(kahuna_emulator, body).json()
    assert "push" not in page
    assert page["inapp"] == dataset().records("inapp", YESTERDAY)
    assert kahuna_page(kahuna_emulator).json()["inapp"], "a request without push is not targeted"


def test_pages_count_per_chain_in_chain_mode_and_start_tells_chains_apart(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kahuna", "--records-cap", "chain", "--chain-page-size", "5")
    emulator.corrupt("set_key", {"start": "09:05", "page": 1}, key="more_records", value="no")
    first_chain = read_pages(emulator, ["inapp"], day_timestamp(YESTERDAY), 15)
    assert [len(page["inapp"]) for page in first_chain] == [5, 5, 5]
    assert by_category(first_chain, ["inapp"])["inapp"] == dataset().records("inapp", YESTERDAY)[:15]
    opened = post(emulator, {**WHOLE_DAY, "timestamp": day_timestamp(YESTERDAY, "9:05"), "number_of_records": 15})
    second = post(
        emulator, {"cursor": opened.json()["cursor"], "number_of_records": 15, "categories_to_return": ["inapp"]}
    )
    assert second.json()["more_records"] == "no"
    assert [answer["target"]["page"] for answer in emulator.corrupted_answers()] == [1]


def test_the_most_specific_rule_wins_and_the_same_target_replaces_a_rule(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("missing_key", {"category": "inapp"})
    kahuna_emulator.corrupt("set_key", {"category": "inapp", "page": 0}, key="more_records", value=1)
    pages = read_pages(kahuna_emulator, ["inapp"], day_timestamp(YESTERDAY), 50)
    assert pages[0]["more_records"] == 1
    assert pages[0]["inapp"] == dataset().records("inapp", YESTERDAY)[:50]
    assert "inapp" not in pages[1]
    rules = kahuna_emulator.corrupt("html_200", {"page": 0, "category": "inapp"})["rules"]
    assert [rule["kind"] for rule in rules] == ["missing_key", "html_200"]
    assert kahuna_page(kahuna_emulator).text.startswith("<html>")


def test_error_answers_are_never_corrupted(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("html_200")
    response = post(kahuna_emulator, {**WHOLE_DAY, "number_of_records": 0})
    assert response.status_code == 400
    assert response.json()["error_code"] == 400
    assert kahuna_emulator.corrupted_answers() == []


def test_reset_and_clear_forget_the_rules_and_the_log(kahuna_emulator: EmulatorProcess) -> None:
    kahuna_emulator.corrupt("html_200")
    assert kahuna_page(kahuna_emulator).text.startswith("<html>")
    kahuna_emulator.reset()
    described = kahuna_emulator.control("corruptions")
    assert (described["rules"], described["applied"]) == ([], [])
    assert described["target_fields"] == ["category", "day", "env", "page", "start"]
    assert {"html_200", "truncated_json", "malformed_json", "missing_key", "wrong_types"} <= set(described["kinds"])
    assert kahuna_page(kahuna_emulator).json()["inapp"]
    kahuna_emulator.corrupt("truncated_json")
    kahuna_emulator.clear_corruptions()
    assert kahuna_page(kahuna_emulator).json()["inapp"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "gibberish"}, "kind must be one of"),
        ({"kind": "bad_uids_length"}, "kind must be one of"),
        ({"kind": "html_200", "target": {"week": 3}}, "unknown target field 'week'"),
        ({"kind": "html_200", "target": {"page": "2"}}, "target field page must be an integer"),
        ({"kind": "html_200", "target": {"page": True}}, "target field page must be an integer"),
        ({"kind": "html_200", "target": {"page": -1}}, "page must be 0 or more"),
        ({"kind": "html_200", "target": {"day": "yesterday"}}, "day must be a UTC day YYYY-MM-DD"),
        ({"kind": "html_200", "target": {"category": "sms"}}, "category must be one of"),
        ({"kind": "html_200", "target": {"env": "x"}}, "env must be"),
        ({"kind": "html_200", "target": {"start": "9:5"}}, "a minute must look like HH:MM"),
        ({"kind": "html_200", "target": []}, "target must be an object"),
        ({"kind": "set_key", "key": "cursor"}, "kind set_key needs a value"),
        ({"kind": "missing_key", "key": 5}, "key must be a string"),
        ({"kind": "insert_item", "value": 1, "index": "3"}, "index must be an integer"),
        ({"kind": "html_200", "times": 0}, "times must be an integer >= 1"),
        ({"kind": "html_200", "when": "now"}, "unknown rule field(s) ['when']"),
        (["html_200"], "send a JSON object"),
    ],
)
def test_bad_rules_get_a_400_naming_the_problem(kahuna_emulator: EmulatorProcess, rule: Any, message: str) -> None:
    assert message in rule_error(kahuna_emulator, rule)
    assert kahuna_emulator.control("corruptions")["rules"] == []


# --- Kaon ------------------------------------------------------------------------------------------------
def kaon_call(emulator: EmulatorProcess, endpoint: str, **params: Any) -> requests.Response:
    """One Kaon API call with the emulator's demo credentials."""
    query = {"apikey": "kaon-demo-key", "client": "demo-client", **params}
    return requests.get(f"{emulator.url}/api/{endpoint}", params=query, timeout=30)


def test_kaon_breakage_route_is_a_core_rule_targeting_endpoint_and_week(kaon_emulator: EmulatorProcess) -> None:
    answer = kaon_emulator.control("kaon/breakage", {"endpoint": "uid", "week": 770, "kind": "bad_uids_length"})
    assert answer == {"breakages": [["uid", 770, "bad_uids_length"]]}
    rules = kaon_emulator.control("corruptions")["rules"]
    assert rules == [
        {"kind": "bad_uids_length", "target": {"endpoint": "uid", "week": 770}, "key": None, "value": None}
        | {"index": 0, "times": None}
    ]
    assert len(kaon_call(kaon_emulator, "uid", week=770).json()["uids"]) % 18 != 0
    assert len(kaon_call(kaon_emulator, "uid", week=771).json()["uids"]) % 18 == 0
    assert kaon_emulator.corrupted_answers() == [
        {"kind": "bad_uids_length", "target": {"endpoint": "uid", "week": 770}}
    ]
    assert [entry.get("corrupted") for entry in kaon_emulator.requests()] == ["bad_uids_length", None]


def test_kaon_answers_take_every_core_kind_and_a_week_rule_beats_the_endpoint_rule(
    kaon_emulator: EmulatorProcess,
) -> None:
    clean = kaon_call(kaon_emulator, "engagement", week=770).json()["engagements"]
    assert clean
    kaon_emulator.corrupt("set_key", {"endpoint": "engagement"}, value=None)
    kaon_emulator.corrupt("insert_item", {"endpoint": "engagement", "week": 770}, value="oops", index=1)
    everywhere = kaon_call(kaon_emulator, "engagement", week=771).json()
    assert everywhere["engagements"] is None
    assert everywhere["week"] == 771
    one_week = kaon_call(kaon_emulator, "engagement", week=770).json()["engagements"]
    assert one_week[1] == "oops"
    assert [item for item in one_week if item != "oops"] == clean
    kaon_emulator.control("kaon/breakage", {"endpoint": "weeks", "kind": "replace_body", "value": [], "times": 1})
    assert kaon_call(kaon_emulator, "weeks").json() == []
    assert kaon_call(kaon_emulator, "weeks").json()["weeks"], "times: 1 breaks one answer"


def test_kaon_targets_are_checked_on_both_routes(kaon_emulator: EmulatorProcess) -> None:
    assert "endpoint must be one of" in rule_error(kaon_emulator, {"kind": "html_200", "target": {"endpoint": "x"}})
    assert "unknown target field 'day'" in rule_error(kaon_emulator, {"kind": "html_200", "target": {"day": "x"}})
    assert "target field week must be an integer" in rule_error(
        kaon_emulator, {"kind": "html_200", "target": {"week": "770"}}
    )
    response = requests.post(
        f"{kaon_emulator.url}/_emulator/kaon/breakage", json={"endpoint": "uid", "kind": "set_key"}, timeout=10
    )
    assert response.status_code == 400
    assert "kind set_key needs a value" in response.json()["error"]
    assert kaon_emulator.control("corruptions")["rules"] == []


def test_an_emulator_without_targets_refuses_rules(kissmetrics_emulator: EmulatorProcess) -> None:
    assert "declares no answers that can be corrupted" in rule_error(kissmetrics_emulator, {"kind": "html_200"})
