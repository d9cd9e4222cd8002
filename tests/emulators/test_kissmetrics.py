"""The Kissmetrics tracking emulator over real HTTP: GIF answers, raw log, dedup rules, ignored beacons, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from hypothesis import given, strategies as st
from KISSmetrics import Client as OfficialClient, request as official_request

from emulators.kissmetrics import MAX_REQUEST_TARGET_BYTES, MAX_VALUE_CHARS, TRANSPARENT_GIF, decode_pairs
from emulators.testing import EmulatorProcess
from tests.support.datasets import FIXED_NOW_TEXT

KEY = "km-demo-key"
FIXED_NOW = FIXED_NOW_TEXT
FIXED_NOW_UNIX = int(datetime.fromisoformat(FIXED_NOW).timestamp())
StartEmulator = Callable[..., EmulatorProcess]


def beacon(emulator: EmulatorProcess, kind: str, method: str = "GET", **params: Any) -> requests.Response:
    """Send one beacon the way a client does: GET with a query string, or POST with a form body."""
    url = f"{emulator.url}/{kind}"
    if method == "POST":
        return requests.post(url, data=params, timeout=10)
    return requests.get(url, params=params, timeout=10)


def event(emulator: EmulatorProcess, person: str, name: str, when: int | None = None, **props: Any) -> None:
    """Record an event with an explicit time (``_t`` + ``_d=1``) unless ``when`` is None."""
    timing = {} if when is None else {"_t": when, "_d": 1}
    response = beacon(emulator, "e", _k=KEY, _p=person, _n=name, **timing, **props)
    assert response.status_code == 200


def raw_beacons(emulator: EmulatorProcess, **query: int) -> dict[str, Any]:
    response = requests.get(f"{emulator.url}/_emulator/beacons", params=query, timeout=10)
    assert response.status_code == 200
    return response.json()


def dedup(emulator: EmulatorProcess) -> dict[str, Any]:
    return emulator.control("dedup")


def stats(emulator: EmulatorProcess) -> dict[str, Any]:
    return emulator.control("stats")


def assert_gif(response: requests.Response) -> None:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert response.content == TRANSPARENT_GIF
    assert len(response.content) == 43


@given(st.text(alphabet=st.sampled_from(list("ab=&+%2F0E9C3A ✓ü;")), max_size=40))
def test_fast_form_decoder_matches_parse_qsl(raw: str) -> None:
    assert decode_pairs(raw) == parse_qsl(raw, keep_blank_values=True)


def test_gif_bytes_are_a_1x1_transparent_image() -> None:
    width = int.from_bytes(TRANSPARENT_GIF[6:8], "little")
    height = int.from_bytes(TRANSPARENT_GIF[8:10], "little")
    graphic_control = TRANSPARENT_GIF[13 + 6 : 13 + 6 + 8]  # after the header and a 2-colour palette
    assert (width, height) == (1, 1)
    assert graphic_control[:3] == b"!\xf9\x04"
    assert graphic_control[3] & 1 == 1  # the transparency flag
    assert TRANSPARENT_GIF.endswith(b";")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("kind", ["e", "s", "a"])
def test_every_beacon_route_answers_a_gif_even_without_params(
    kissmetrics_emulator: EmulatorProcess, kind: str, method: str
) -> None:
    assert_gif(requests.request(method, f"{kissmetrics_emulator.url}/{kind}", timeout=10))
    assert_gif(beacon(kissmetrics_emulator, kind, method, _k=KEY, _p="bob", _n="Signed Up", plan="pro"))

    recorded = raw_beacons(kissmetrics_emulator)
    assert [(b["kind"], b["method"]) for b in recorded["beacons"]] == [(kind, method), (kind, method)]
    assert recorded["beacons"][0]["params"] == {}
    assert stats(kissmetrics_emulator)["ignored"] == {"missing_key": 1}


def test_unknown_path_is_404_and_not_recorded(kissmetrics_emulator: EmulatorProcess) -> None:
    response = requests.get(f"{kissmetrics_emulator.url}/track?_k={KEY}&_p=bob&_n=x", timeout=10)

    assert response.status_code == 404
    assert raw_beacons(kissmetrics_emulator)["total"] == 0


def test_raw_log_keeps_every_beacon_in_order_including_repeats(kissmetrics_emulator: EmulatorProcess) -> None:
    for _ in range(3):
        event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, gender="male")
    beacon(kissmetrics_emulator, "s", _k=KEY, _p="bob", plan="pro", _t=1262304001, _d=1)
    beacon(kissmetrics_emulator, "a", "POST", _k=KEY, _p="bob", _n="bob@bob.com")

    recorded = raw_beacons(kissmetrics_emulator)
    assert recorded["total"] == 5
    assert [b["index"] for b in recorded["beacons"]] == [0, 1, 2, 3, 4]
    assert [b["kind"] for b in recorded["beacons"]] == ["e", "e", "e", "s", "a"]
    assert [b["method"] for b in recorded["beacons"]] == ["GET"] * 4 + ["POST"]
    assert recorded["beacons"][0]["params"] == {
        "_k": KEY,
        "_p": "bob",
        "_n": "Signed Up",
        "_t": "1262304000",
        "_d": "1",
        "gender": "male",
    }
    assert recorded["beacons"][1]["params"] == recorded["beacons"][0]["params"]
    assert {b["received_at"] for b in recorded["beacons"]} == {FIXED_NOW}
    assert {b["received_unix"] for b in recorded["beacons"]} == {FIXED_NOW_UNIX}
    assert len(dedup(kissmetrics_emulator)["events"]) == 1

    page = raw_beacons(kissmetrics_emulator, offset=2, limit=2)
    assert [b["index"] for b in page["beacons"]] == [2, 3]
    assert page["total"] == 5


def test_special_characters_round_trip(kissmetrics_emulator: EmulatorProcess) -> None:
    person = "bob+1@example.com"
    name = "Paid & Left = yes?"
    note = "a+b c&d=e %20 ✓ Zürich 東京"
    event(kissmetrics_emulator, person, name, 1262304000, note=note)

    params = raw_beacons(kissmetrics_emulator)["beacons"][0]["params"]
    assert (params["_p"], params["_n"], params["note"]) == (person, name, note)
    assert dedup(kissmetrics_emulator)["events"] == [
        {"person": person, "event": name, "time": 1262304000, "properties": {"note": note}}
    ]


def test_plus_in_a_raw_query_string_is_a_space(kissmetrics_emulator: EmulatorProcess) -> None:
    requests.get(f"{kissmetrics_emulator.url}/e?_k={KEY}&_p=bob%2B1%40x.com&_n=Signed+Up", timeout=10)

    params = raw_beacons(kissmetrics_emulator)["beacons"][0]["params"]
    assert (params["_p"], params["_n"]) == ("bob+1@x.com", "Signed Up")


def test_post_form_body_is_merged_with_the_query_and_the_body_wins(kissmetrics_emulator: EmulatorProcess) -> None:
    response = requests.post(
        f"{kissmetrics_emulator.url}/s",
        params={"_k": KEY, "plan": "from-query"},
        data={"_p": "alice", "plan": "from-body", "_t": 1262304000, "_d": 1},
        timeout=10,
    )

    assert_gif(response)
    recorded = raw_beacons(kissmetrics_emulator)["beacons"][0]
    assert recorded["method"] == "POST"
    assert recorded["params"] == {"_k": KEY, "plan": "from-body", "_p": "alice", "_t": "1262304000", "_d": "1"}
    assert recorded["repeated_keys"] == ["plan"]
    assert dedup(kissmetrics_emulator)["properties"] == [
        {"person": "alice", "name": "plan", "time": 1262304000, "value": "from-body"}
    ]


def test_same_person_name_time_and_properties_is_one_event(kissmetrics_emulator: EmulatorProcess) -> None:
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, gender="male", plan="pro")
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, plan="pro", gender="male")
    event(kissmetrics_emulator, "bob", "signed up", 1262304000, Gender="male", PLAN="pro")

    assert dedup(kissmetrics_emulator)["events"] == [
        {"person": "bob", "event": "Signed Up", "time": 1262304000, "properties": {"gender": "male", "plan": "pro"}}
    ]
    assert stats(kissmetrics_emulator)["raw"]["e"] == 3


def test_different_properties_person_name_or_time_are_different_events(kissmetrics_emulator: EmulatorProcess) -> None:
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, plan="pro")
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, plan="basic")
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000)
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304001, plan="pro")
    event(kissmetrics_emulator, "ann", "Signed Up", 1262304000, plan="pro")
    event(kissmetrics_emulator, "bob", "Logged In", 1262304000, plan="pro")

    events = dedup(kissmetrics_emulator)["events"]
    assert [(e["person"], e["event"], e["time"], e["properties"]) for e in events] == [
        ("ann", "Signed Up", 1262304000, {"plan": "pro"}),
        ("bob", "Logged In", 1262304000, {"plan": "pro"}),
        ("bob", "Signed Up", 1262304000, {}),
        ("bob", "Signed Up", 1262304000, {"plan": "basic"}),
        ("bob", "Signed Up", 1262304000, {"plan": "pro"}),
        ("bob", "Signed Up", 1262304001, {"plan": "pro"}),
    ]


def test_names_are_case_insensitive_and_commas_and_colons_become_spaces(
    kissmetrics_emulator: EmulatorProcess,
) -> None:
    event(kissmetrics_emulator, "bob", "Checkout:Step,2", 1262304000, **{"Cart:Size": "3"})
    event(kissmetrics_emulator, "bob", "checkout step 2", 1262304000, **{"cart size": "3"})

    assert dedup(kissmetrics_emulator)["events"] == [
        {"person": "bob", "event": "Checkout Step 2", "time": 1262304000, "properties": {"Cart Size": "3"}}
    ]


def test_without_d_flag_the_receive_time_is_used(kissmetrics_emulator: EmulatorProcess) -> None:
    beacon(kissmetrics_emulator, "e", _k=KEY, _p="bob", _n="Viewed", _t=1262304000)
    kissmetrics_emulator.set_clock(advance_seconds=1)
    beacon(kissmetrics_emulator, "e", _k=KEY, _p="bob", _n="Viewed", _t=1262304000)
    beacon(kissmetrics_emulator, "e", _k=KEY, _p="bob", _n="Viewed", _t="yesterday", _d=1)
    beacon(kissmetrics_emulator, "e", _k=KEY, _p="bob", _n="Viewed", _t=1262304000, _d=1)

    times = [e["time"] for e in dedup(kissmetrics_emulator)["events"]]
    assert times == [1262304000, FIXED_NOW_UNIX, FIXED_NOW_UNIX + 1]
    assert raw_beacons(kissmetrics_emulator)["beacons"][1]["received_unix"] == FIXED_NOW_UNIX + 1


def test_properties_keep_the_last_value_per_person_name_and_time(kissmetrics_emulator: EmulatorProcess) -> None:
    beacon(kissmetrics_emulator, "s", _k=KEY, _p="bob", _t=1262304000, _d=1, plan="basic")
    beacon(kissmetrics_emulator, "s", _k=KEY, _p="bob", _t=1262304000, _d=1, Plan="pro")
    beacon(kissmetrics_emulator, "s", _k=KEY, _p="bob", _t=1262304005, _d=1, plan="gold")
    beacon(kissmetrics_emulator, "s", _k=KEY, _p="ann", _t=1262304000, _d=1, plan="free")
    event(kissmetrics_emulator, "ann", "Upgraded", 1262304000, PLAN="team")

    assert dedup(kissmetrics_emulator)["properties"] == [
        {"person": "ann", "name": "PLAN", "time": 1262304000, "value": "team"},
        {"person": "bob", "name": "Plan", "time": 1262304000, "value": "pro"},
        {"person": "bob", "name": "plan", "time": 1262304005, "value": "gold"},
    ]


def test_alias_pairs_are_unordered(kissmetrics_emulator: EmulatorProcess) -> None:
    beacon(kissmetrics_emulator, "a", _k=KEY, _p="bob", _n="bob@bob.com")
    beacon(kissmetrics_emulator, "a", _k=KEY, _p="bob@bob.com", _n="bob")
    beacon(kissmetrics_emulator, "a", "POST", _k=KEY, _p="ann", _n="12345")

    assert dedup(kissmetrics_emulator)["aliases"] == [["12345", "ann"], ["bob", "bob@bob.com"]]
    assert stats(kissmetrics_emulator)["dedup"]["aliases"] == 2


def test_invalid_beacons_are_kept_raw_but_ignored_with_reasons(kissmetrics_emulator: EmulatorProcess) -> None:
    long_id = "p" * 256
    sent = [
        ("e", {"_p": "bob", "_n": "x"}),
        ("e", {"_k": "someone-elses-key", "_p": "bob", "_n": "x"}),
        ("s", {"_k": KEY, "plan": "pro"}),
        ("s", {"_k": KEY, "_p": long_id, "plan": "pro"}),
        ("e", {"_k": KEY, "_p": "bob"}),
        ("e", {"_k": KEY, "_p": "bob", "_n": "n" * 256}),
        ("a", {"_k": KEY, "_p": "bob"}),
        ("a", {"_k": KEY, "_p": "bob", "_n": long_id}),
    ]
    for kind, params in sent:
        assert_gif(beacon(kissmetrics_emulator, kind, **params))
    event(kissmetrics_emulator, "p" * 255, "n" * 255, 1262304000)

    counters = stats(kissmetrics_emulator)
    assert counters["ignored"] == {
        "missing_key": 1,
        "wrong_key": 1,
        "missing_person": 1,
        "person_too_long": 1,
        "missing_name": 2,
        "name_too_long": 2,
    }
    assert counters["ignored_total"] == len(sent)
    assert counters["raw"]["total"] == len(sent) + 1
    assert [(e["person"], e["event"]) for e in dedup(kissmetrics_emulator)["events"]] == [("p" * 255, "n" * 255)]
    assert dedup(kissmetrics_emulator)["properties"] == []


def test_api_key_knob(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kissmetrics", "--api-key", "other-key")
    beacon(emulator, "e", _k=KEY, _p="bob", _n="x", _t=1, _d=1)
    beacon(emulator, "e", _k="other-key", _p="bob", _n="y", _t=1, _d=1)

    assert [e["event"] for e in dedup(emulator)["events"]] == ["y"]
    assert stats(emulator)["ignored"] == {"wrong_key": 1}


def test_long_values_are_cut_to_512_and_counted(kissmetrics_emulator: EmulatorProcess) -> None:
    event(kissmetrics_emulator, "bob", "Wrote", 1262304000, essay="x" * 600, title="short")

    (recorded,) = dedup(kissmetrics_emulator)["events"]
    assert recorded["properties"] == {"essay": "x" * MAX_VALUE_CHARS, "title": "short"}
    assert raw_beacons(kissmetrics_emulator)["beacons"][0]["params"]["essay"] == "x" * 600
    assert stats(kissmetrics_emulator)["values_truncated"] == 1


def test_reset_clears_beacons_dedup_and_counters(kissmetrics_emulator: EmulatorProcess) -> None:
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, plan="pro")
    beacon(kissmetrics_emulator, "a", _k=KEY, _p="bob", _n="bob@bob.com")
    beacon(kissmetrics_emulator, "e", _p="nokey")

    kissmetrics_emulator.reset()

    assert raw_beacons(kissmetrics_emulator) == {"total": 0, "raw_log": "full", "beacons": []}
    assert dedup(kissmetrics_emulator) == {"events": [], "properties": [], "aliases": []}
    counters = stats(kissmetrics_emulator)
    assert counters["raw"]["total"] == 0
    assert counters["ignored"] == {}
    event(kissmetrics_emulator, "bob", "Signed Up", 1262304000, plan="pro")
    assert raw_beacons(kissmetrics_emulator)["beacons"][0]["index"] == 0


def test_count_mode_keeps_counters_and_dedup_but_no_raw_beacons(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("kissmetrics", "--raw-log", "count")
    event(emulator, "bob", "Signed Up", 1262304000)
    event(emulator, "bob", "Signed Up", 1262304000)

    assert raw_beacons(emulator) == {"total": 2, "raw_log": "count", "beacons": []}
    assert stats(emulator)["raw"]["e"] == 2
    assert len(dedup(emulator)["events"]) == 1


def test_error_rate_answers_about_half_5xx_and_records_only_answered_beacons(
    kissmetrics_emulator: EmulatorProcess,
) -> None:
    kissmetrics_emulator.set_faults(error_rate=0.5, seed=7)
    with requests.Session() as session:
        statuses = [
            session.get(
                f"{kissmetrics_emulator.url}/e",
                params={"_k": KEY, "_p": f"user{i}", "_n": "Tick", "_t": 1262304000, "_d": 1},
                timeout=10,
            ).status_code
            for i in range(400)
        ]

    failed = sum(status >= 500 for status in statuses)
    assert set(statuses) <= {200, 500, 503}
    assert 0.35 * 400 <= failed <= 0.65 * 400
    answered = statuses.count(200)
    assert stats(kissmetrics_emulator)["raw"]["total"] == answered
    assert len(dedup(kissmetrics_emulator)["events"]) == answered


def test_dropped_connections_record_nothing(kissmetrics_emulator: EmulatorProcess) -> None:
    kissmetrics_emulator.set_faults(drop_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        beacon(kissmetrics_emulator, "e", _k=KEY, _p="bob", _n="Signed Up", _t=1262304000, _d=1)

    assert dedup(kissmetrics_emulator)["events"] == []
    assert stats(kissmetrics_emulator)["raw"]["total"] == 0


def test_beacons_built_by_the_official_client_are_recorded(kissmetrics_emulator: EmulatorProcess) -> None:
    host = kissmetrics_emulator.url.removeprefix("http://")
    url = official_request.record(
        KEY, "bob@bob.com", "Signed Up", timestamp=1262304000, properties={"plan": "pro+"}, scheme="http", host=host
    )
    assert_gif(requests.get(url, timeout=10))
    client = OfficialClient(KEY, trk_host=host, trk_scheme="http")
    assert client.set("bob@bob.com", {"Plan": "team"}, timestamp=1262304001).status == 200
    assert client.alias("bob@bob.com", "bob").status == 200

    assert dedup(kissmetrics_emulator) == {
        "events": [{"person": "bob@bob.com", "event": "Signed Up", "time": 1262304000, "properties": {"plan": "pro+"}}],
        "properties": [
            {"person": "bob@bob.com", "name": "plan", "time": 1262304000, "value": "pro+"},
            {"person": "bob@bob.com", "name": "Plan", "time": 1262304001, "value": "team"},
        ],
        "aliases": [["bob", "bob@bob.com"]],
    }
    assert stats(kissmetrics_emulator)["ignored"] == {}


def test_a_beacon_over_the_url_limit_answers_400_and_is_not_recorded(kissmetrics_emulator: EmulatorProcess) -> None:
    base = f"/e?_k={KEY}&_p=p&_n=E&v="
    at_limit = "x" * (MAX_REQUEST_TARGET_BYTES - len(base))
    assert requests.get(kissmetrics_emulator.url + base + at_limit, timeout=10).status_code == 200
    over = requests.get(kissmetrics_emulator.url + base + at_limit + "x", timeout=10)
    assert over.status_code == 400
    assert f"over {MAX_REQUEST_TARGET_BYTES}" in over.text
    counters = stats(kissmetrics_emulator)
    assert counters["raw"]["total"] == 1
    assert counters["refused_too_long"] == 1
