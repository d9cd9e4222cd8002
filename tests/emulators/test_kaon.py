"""The Kaon Insights emulator over real HTTP: every endpoint, form, error, paging rule and knob."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests

from emulators.kaon_data import LANGUAGES, KaonDataset, week_of, week_start
from emulators.testing import EmulatorProcess

# tests/conftest.py's FIXED_NOW (not imported: another folder's conftest.py can shadow the module name)
NOW = datetime.fromisoformat("2026-11-18T15:30:00+00:00")
SMALL = {"weeks_before_now": 12, "devices_per_week": 40, "paths": 12, "external_ids": 3, "clicks_per_id": 250}
AUTH = {"apikey": "kaon-demo-key", "client": "demo-client"}


def expected(**overrides: Any) -> KaonDataset:
    return KaonDataset(seed=42, client="demo-client", now=NOW, **{**SMALL, **overrides})


def call(emulator: EmulatorProcess, name: str, **params: Any) -> requests.Response:
    return requests.get(f"{emulator.url}/api/{name}", params={**AUTH, **params}, timeout=30)


def test_week_arithmetic_matches_the_vendor_document() -> None:
    assert week_start(417) == date(2019, 12, 29)
    assert week_start(0) == date(2012, 1, 1)
    assert week_of(NOW) == 776
    assert week_start(776).weekday() == 6  # a Sunday


def test_the_fixture_clock_is_the_now_expected_data_uses(kaon_emulator: EmulatorProcess) -> None:
    assert datetime.fromisoformat(kaon_emulator.control("clock")["now"]) == NOW


def test_weeks_lists_every_full_week(kaon_emulator: EmulatorProcess) -> None:
    body = call(kaon_emulator, "weeks").json()
    data = expected()
    assert body["client"] == "demo-client"
    assert [w["week"] for w in body["weeks"]] == list(range(764, 777)) == data.full_weeks
    assert body["weeks"][-1]["weekname"] == data.weekname(776) == "Week of Nov 15, 2026"


@pytest.mark.parametrize(("endpoint", "key"), [("engagement", "engagements"), ("countries", "countries")])
def test_no_week_means_the_current_week(kaon_emulator: EmulatorProcess, endpoint: str, key: str) -> None:
    body = call(kaon_emulator, endpoint).json()
    assert body["week"] == 776
    assert body[key] == call(kaon_emulator, endpoint, week=776).json()[key]


def test_engagement_buckets_and_counts(kaon_emulator: EmulatorProcess) -> None:
    body = call(kaon_emulator, "engagement", week=770).json()
    assert body == {
        "client": "demo-client",
        "week": 770,
        "weekname": expected().weekname(770),
        "engagements": expected().engagement(770),
    }
    assert [e["bucket"] for e in body["engagements"]] == [
        "0-10s",
        "10-30s",
        "30-60s",
        "1-3m",
        "3-10m",
        "10-30m",
        "30m+",
    ]


def test_uid_string_holds_every_device(kaon_emulator: EmulatorProcess) -> None:
    body = call(kaon_emulator, "uid", week=770).json()
    uids = body["uids"]
    assert len(uids) == 40 * 18
    assert uids == expected().uids_string(770)
    devices = [uids[i : i + 18] for i in range(0, len(uids), 18)]
    assert devices == expected().device_uids(770)
    assert all(d.startswith("0x") and int(d[2:], 16) >= 0 for d in devices)
    assert len(set(devices)) == 40


def test_current_week_fills_up_as_the_clock_advances(kaon_emulator: EmulatorProcess) -> None:
    before = call(kaon_emulator, "engagement").json()["engagements"]
    devices_before = len(call(kaon_emulator, "uid").json()["uids"]) // 18
    kaon_emulator.set_clock(advance_seconds=2 * 86400)
    after = call(kaon_emulator, "engagement").json()["engagements"]
    devices_after = len(call(kaon_emulator, "uid").json()["uids"]) // 18
    assert sum(e["count"] for e in after) > sum(e["count"] for e in before)
    assert all(a["count"] >= b["count"] for a, b in zip(after, before, strict=True))
    assert devices_before < devices_after < 40
    # a finished week never changes
    assert call(kaon_emulator, "engagement", week=770).json()["engagements"] == expected().engagement(770)
    assert after == expected().at(NOW + timedelta(days=2)).engagement(776)


def test_countries_and_languages_list_form(kaon_emulator: EmulatorProcess) -> None:
    countries = call(kaon_emulator, "countries", week=768).json()["countries"]
    languages = call(kaon_emulator, "languages", week=768).json()["languages"]
    assert {c["country"]: c["count"] for c in countries} == expected().countries(768)
    assert {lang["language"]: lang["count"] for lang in languages} == expected().languages(768)
    assert set(expected().languages(768)) <= set(LANGUAGES)


def test_countries_and_languages_object_form(start_emulator: Callable[..., EmulatorProcess]) -> None:
    emulator = start_emulator("kaon", "--countries-form", "object")
    assert call(emulator, "countries", week=768).json()["countries"] == expected().countries(768)
    assert call(emulator, "languages", week=768).json()["languages"] == expected().languages(768)


def test_hits_of_a_week_carry_url_encoded_paths(kaon_emulator: EmulatorProcess) -> None:
    hits = call(kaon_emulator, "hits", week=770).json()["hits"]
    assert hits == expected().hits_for_week(770)
    paths = {hit["path"] for hit in hits} | set(expected().path_names)
    assert "tours/Main%20Lobby" in paths
    assert "Caf%C3%A9%20Men%C3%BC/Gr%C3%B6%C3%9Fe" in paths
    assert "math/a%2Bb%3Dc" in paths


def test_hits_of_a_path_go_back_to_launch(kaon_emulator: EmulatorProcess) -> None:
    path = "Caf%C3%A9%20Men%C3%BC/Gr%C3%B6%C3%9Fe"
    body = call(kaon_emulator, "hits", path=path).json()
    assert body["path"] == path
    assert body["hits"] == expected().path_history(path)
    assert body["hits"][0]["week"] < 764  # hit data predates the first full week
    one_week = call(kaon_emulator, "hits", path=path, week=770).json()["hits"]
    assert one_week == [h for h in body["hits"] if h["week"] == 770]


def test_hits_detail_country(kaon_emulator: EmulatorProcess) -> None:
    path = "math/a%2Bb%3Dc"
    hits = call(kaon_emulator, "hits", path=path, detail="country").json()["hits"]
    assert hits
    for hit in hits:
        assert hit["countries"] == expected().path_countries(path, hit["week"])
        assert all(len(code) == 2 for code in hit["countries"])


def read_clickstream(emulator: EmulatorProcess, external_id: str, limit: int) -> list[dict[str, Any]]:
    """Page as a correct client would: start = last timestamp (inclusive), skip what the last
    page already returned of that second, enlarge the page when one second fills it."""
    records: list[dict[str, Any]] = []
    start, seen_in_second, page_limit = None, 0, limit
    while True:
        params = {"id": external_id, "limit": page_limit}
        if start is not None:
            params["start"] = start
        page = call(emulator, "extid", **params).json()["records"]
        fresh = page[seen_in_second:] if start is not None else page
        if start is not None and page and all(r["timestamp"] == start for r in page) and len(page) == page_limit:
            page_limit *= 2  # one second fills the page: ask for more of it
            continue
        records.extend(fresh)
        if len(page) < page_limit:
            return records
        start = page[-1]["timestamp"]
        seen_in_second = sum(1 for r in page if r["timestamp"] == start)
        page_limit = limit


@pytest.mark.parametrize("limit", [7, 25, 1000])
def test_extid_paging_returns_every_record_once(kaon_emulator: EmulatorProcess, limit: int) -> None:
    for external_id in expected().external_id_names:
        assert read_clickstream(kaon_emulator, external_id, limit) == expected().clickstream(external_id)


def test_extid_start_is_inclusive_and_runs_straddle_pages(kaon_emulator: EmulatorProcess) -> None:
    clicks = expected().clickstream("EXT-0000")
    longest = Counter(r["timestamp"] for r in clicks).most_common(1)[0]
    assert longest[1] == 30  # the --same-second-run default
    page = call(kaon_emulator, "extid", id="EXT-0000", start=longest[0], limit=10).json()["records"]
    assert [r["timestamp"] for r in page] == [longest[0]] * 10  # one second fills a page
    assert any(set(r) - {"timestamp", "path"} for r in clicks)  # unknown extra fields appear


def test_extid_hides_future_clicks_until_the_clock_reaches_them(kaon_emulator: EmulatorProcess) -> None:
    data = expected()
    visible = data.clickstream("EXT-0001")
    assert len(visible) < 250
    kaon_emulator.set_clock(advance_seconds=7 * 86400)
    later = read_clickstream(kaon_emulator, "EXT-0001", 1000)
    assert later[: len(visible)] == visible
    assert len(later) > len(visible)


def test_unknown_external_id_has_no_records(kaon_emulator: EmulatorProcess) -> None:
    assert call(kaon_emulator, "extid", id="nobody").json() == {"client": "demo-client", "id": "nobody", "records": []}


@pytest.mark.parametrize(
    ("name", "params", "status", "message"),
    [
        ("weeks", {"apikey": "wrong"}, 403, "invalid apikey"),
        ("weeks", {"apikey": ""}, 403, "invalid apikey"),
        ("weeks", {"client": "someone-else"}, 404, "unknown client"),
        ("nothing", {}, 404, "unknown API"),
        ("engagement", {"week": "soon"}, 404, "week must be an integer"),
        ("engagement", {"week": 700}, 404, "no data for week 700"),
        ("uid", {"week": 777}, 404, "no data for week 777"),
        ("hits", {"detail": "country"}, 404, "needs a path"),
        ("hits", {"path": "home", "detail": "city"}, 404, "detail=country is the only detail"),
        ("hits", {"path": "nowhere"}, 404, "unknown path"),
        ("extid", {}, 404, "id is required"),
        ("extid", {"id": "EXT-0000", "limit": 0}, 404, "limit must be between"),
        ("extid", {"id": "EXT-0000", "start": "x"}, 404, "must be integers"),
        ("extid", {"id": "EXT-0000", "limit": 10_001}, 404, "limit must be between"),
        ("extid", {"id": "EXT-0000", "limit": "ten"}, 404, "must be integers"),
        ("countries", {"week": 763}, 404, "no data for week 763"),
        ("languages", {"week": "776.5"}, 404, "week must be an integer"),
        ("hits", {"week": 743}, 404, "no data for week 743"),  # before the launch week (764 - 20)
        ("hits", {"week": 777}, 404, "no data for week 777"),
        ("hits", {"path": "home", "week": 777}, 404, "no data for week 777"),
        ("hits", {"week": 770, "detail": "country"}, 404, "needs a path"),
    ],
)
def test_errors(kaon_emulator: EmulatorProcess, name: str, params: dict, status: int, message: str) -> None:
    response = call(kaon_emulator, name, **params)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert message in response.json()["error"]


def test_missing_apikey_is_403(kaon_emulator: EmulatorProcess) -> None:
    response = requests.get(f"{kaon_emulator.url}/api/weeks", params={"client": "demo-client"}, timeout=30)
    assert response.status_code == 403


def test_request_log_records_the_query(kaon_emulator: EmulatorProcess) -> None:
    call(kaon_emulator, "engagement", week=770)
    log = kaon_emulator.requests()
    assert log[-1]["path"] == "/api/engagement"
    assert log[-1]["query"] == {**AUTH, "week": "770"}
    assert log[-1]["status"] == 200


def test_error_rate_gives_about_half_5xx(start_emulator: Callable[..., EmulatorProcess]) -> None:
    emulator = start_emulator("kaon", "--error-rate", "0.5", "--fault-seed", "7")
    statuses = Counter(call(emulator, "weeks").status_code for _ in range(400))
    failures = statuses[500] + statuses[503]
    assert statuses[200] + failures == 400
    assert 0.35 * 400 <= failures <= 0.65 * 400


def test_rate_limit_carries_retry_after_and_drops_close_the_connection(kaon_emulator: EmulatorProcess) -> None:
    kaon_emulator.set_faults(rate_limit_rate=1.0, retry_after_seconds=3)
    response = call(kaon_emulator, "weeks")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    kaon_emulator.set_faults(rate_limit_rate=0.0, drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        call(kaon_emulator, "weeks")
    kaon_emulator.set_faults(drop_rate=0.0)
    assert call(kaon_emulator, "weeks").status_code == 200


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("html_200", lambda r: r.status_code == 200 and r.text.startswith("<html>")),
        ("truncated_json", lambda r: r.status_code == 200 and not r.text.rstrip().endswith("}")),
        ("malformed_json", lambda r: r.status_code == 200 and r.text.startswith("{'")),
        ("missing_key", lambda r: "uids" not in r.json()),
        ("bad_uids_length", lambda r: len(r.json()["uids"]) % 18 != 0),
    ],
)
def test_breakage_kinds(kaon_emulator: EmulatorProcess, kind: str, check: Callable[[requests.Response], bool]) -> None:
    kaon_emulator.control("kaon/breakage", {"endpoint": "uid", "week": 770, "kind": kind})
    assert check(call(kaon_emulator, "uid", week=770))
    assert call(kaon_emulator, "uid", week=771).json()["uids"] == expected().uids_string(771)  # other weeks unharmed
    kaon_emulator.reset()
    assert call(kaon_emulator, "uid", week=770).json()["uids"] == expected().uids_string(770)


def test_wrong_types_breakage_turns_counts_into_strings(kaon_emulator: EmulatorProcess) -> None:
    kaon_emulator.control("kaon/breakage", {"endpoint": "engagement", "kind": "wrong_types"})
    engagements = call(kaon_emulator, "engagement", week=770).json()["engagements"]
    assert all(isinstance(e["count"], str) for e in engagements)


@pytest.mark.slow
def test_a_week_with_two_million_devices(start_emulator: Callable[..., EmulatorProcess]) -> None:
    emulator = start_emulator("kaon", "--devices-per-week", "2000000")
    response = call(emulator, "uid", week=770)
    uids = response.json()["uids"]
    assert len(uids) == 36_000_000
    assert len(uids) // 18 == uids.count("0x") == 2_000_000  # hex digits never hold an "x"
    assert uids == expected(devices_per_week=2_000_000).uids_string(770)


def test_other_methods_and_paths_answer_json(kaon_emulator: EmulatorProcess) -> None:
    posted = requests.post(f"{kaon_emulator.url}/api/weeks", params=AUTH, timeout=30)
    assert posted.status_code == 405
    assert posted.headers["Allow"] == "GET"
    assert "GET only" in posted.json()["error"]
    for path in ("/nowhere", "/api/", "/api/weeks/extra"):
        response = requests.get(f"{kaon_emulator.url}{path}", params=AUTH, timeout=30)
        assert response.status_code == 404
        assert "no such path" in response.json()["error"]


def test_error_bodies_never_echo_the_apikey(kaon_emulator: EmulatorProcess) -> None:
    canary = "canary-key-5f3a"
    response = call(kaon_emulator, "weeks", apikey=canary)
    assert response.status_code == 403
    assert response.json() == {"error": "invalid apikey"}
    assert canary not in response.text


@pytest.mark.parametrize("path", expected().path_names[:7])
def test_every_hard_case_path_round_trips(kaon_emulator: EmulatorProcess, path: str) -> None:
    # requests encodes the (already URL-encoded) path once more; the server decodes once
    body = call(kaon_emulator, "hits", path=path).json()
    assert body["path"] == path
    assert body["hits"] == expected().path_history(path)
    assert body["hits"][0]["week"] == 744  # hard-case paths have hits from the launch week


def test_hard_case_paths_are_encoded_like_the_api() -> None:
    assert expected().path_names[:7] == [
        "home",
        "tours/Main%20Lobby",
        "Caf%C3%A9%20Men%C3%BC/Gr%C3%B6%C3%9Fe",
        "%E6%97%A5%E6%9C%AC%E8%AA%9E/%E3%83%9A%E3%83%BC%E3%82%B8",
        "products/shoes%20%26%20socks",
        "math/a%2Bb%3Dc",
        "sale/100%25%20cotton",
    ]


def test_a_decoded_path_is_not_the_api_form(kaon_emulator: EmulatorProcess) -> None:
    response = call(kaon_emulator, "hits", path="Café Menü/Größe")
    assert response.status_code == 404
    assert "unknown path" in response.json()["error"]


def test_hits_detail_country_for_one_week(kaon_emulator: EmulatorProcess) -> None:
    path = "products/shoes%20%26%20socks"
    hits = call(kaon_emulator, "hits", path=path, week=770, detail="country").json()["hits"]
    assert [hit["week"] for hit in hits] == [770]
    assert hits[0]["count"] == next(h["count"] for h in expected().path_history(path) if h["week"] == 770)
    assert hits[0]["countries"] == expected().path_countries(path, 770)


def test_hits_of_a_week_before_the_first_full_week(kaon_emulator: EmulatorProcess) -> None:
    hits = call(kaon_emulator, "hits", week=750).json()["hits"]
    assert hits == expected().hits_for_week(750)
    assert {"home", "math/a%2Bb%3Dc"} <= {hit["path"] for hit in hits}


def test_every_current_week_count_grows_with_the_clock(kaon_emulator: EmulatorProcess) -> None:
    path = "home"
    before = {
        "countries": call(kaon_emulator, "countries").json()["countries"],
        "languages": call(kaon_emulator, "languages").json()["languages"],
        "hits": call(kaon_emulator, "hits").json()["hits"],
        "history": call(kaon_emulator, "hits", path=path).json()["hits"],
    }
    assert before["history"][-1] == {"week": 776, "count": expected().path_history(path)[-1]["count"]}
    later = expected().at(NOW + timedelta(days=3))
    kaon_emulator.set_clock(advance_seconds=3 * 86400)
    countries = call(kaon_emulator, "countries").json()["countries"]
    languages = call(kaon_emulator, "languages").json()["languages"]
    hits = call(kaon_emulator, "hits").json()["hits"]
    history = call(kaon_emulator, "hits", path=path).json()["hits"]
    assert {c["country"]: c["count"] for c in countries} == later.countries(776)
    assert {lang["language"]: lang["count"] for lang in languages} == later.languages(776)
    assert hits == later.hits_for_week(776)
    assert history == later.path_history(path)
    assert history[:-1] == before["history"][:-1]  # finished weeks never change
    assert history[-1]["count"] > before["history"][-1]["count"]
    assert sum(c["count"] for c in countries) > sum(c["count"] for c in before["countries"])
    assert sum(h["count"] for h in hits) > sum(h["count"] for h in before["hits"])


def test_a_new_week_appears_when_the_clock_crosses_sunday(kaon_emulator: EmulatorProcess) -> None:
    kaon_emulator.set_clock(now="2026-11-22T00:00:01+00:00")
    weeks = [w["week"] for w in call(kaon_emulator, "weeks").json()["weeks"]]
    assert weeks == list(range(764, 778))
    assert call(kaon_emulator, "engagement").json()["week"] == 777
    # seconds into the new week: its devices have barely started to arrive
    assert call(kaon_emulator, "uid").json()["uids"] == ""
    assert len(call(kaon_emulator, "uid", week=776).json()["uids"]) == 40 * 18


def test_finished_weeks_of_hits_never_change_when_the_clock_moves_on(kaon_emulator: EmulatorProcess) -> None:
    before = {week: call(kaon_emulator, "hits", week=week).json()["hits"] for week in range(764, 776)}
    kaon_emulator.set_clock(now="2026-11-30T12:00:00+00:00")  # two weeks later
    after = {week: call(kaon_emulator, "hits", week=week).json()["hits"] for week in range(764, 776)}
    assert after == before
    assert before == {week: expected().hits_for_week(week) for week in range(764, 776)}
    for path in expected().path_names:
        history = call(kaon_emulator, "hits", path=path).json()["hits"]
        assert [h for h in history if h["week"] < 776] == [h for h in expected().path_history(path) if h["week"] < 776]


def test_a_client_that_never_enlarges_the_page_is_stuck_in_a_long_second(kaon_emulator: EmulatorProcess) -> None:
    clicks = expected().clickstream("EXT-0000")
    second, run = Counter(r["timestamp"] for r in clicks).most_common(1)[0]
    first = next(i for i, r in enumerate(clicks) if r["timestamp"] == second)
    page = call(kaon_emulator, "extid", id="EXT-0000", start=second, limit=10).json()["records"]
    again = call(kaon_emulator, "extid", id="EXT-0000", start=page[-1]["timestamp"], limit=10).json()["records"]
    assert again == page == clicks[first : first + 10]  # start=last timestamp cannot move past the second
    whole = call(kaon_emulator, "extid", id="EXT-0000", start=second, limit=2 * run).json()["records"]
    assert whole[:run] == clicks[first : first + run]
    assert whole[run]["timestamp"] > second


def test_every_external_id_has_the_hard_cases() -> None:
    data = expected()
    assert "user 42+test@example.com" in data.external_id_names
    for external_id in data.external_id_names:
        clicks = data.clickstream(external_id)
        runs = Counter(r["timestamp"] for r in clicks)
        assert max(runs.values()) == 30
        assert any(2 <= n <= 5 for n in runs.values())
        assert [r["timestamp"] for r in clicks] == sorted(r["timestamp"] for r in clicks)
        assert {"session", "device"} <= {key for r in clicks for key in r}


def test_the_hard_case_external_id_over_http(kaon_emulator: EmulatorProcess) -> None:
    external_id = "user 42+test@example.com"
    assert read_clickstream(kaon_emulator, external_id, 40) == expected().clickstream(external_id)


def test_data_knobs(start_emulator: Callable[..., EmulatorProcess]) -> None:
    knobs = ["--api-key", "k2", "--client", "c2", "--first-week", "770", "--launch-week", "700"]
    emulator = start_emulator("kaon", *knobs, "--same-second-run", "12", small=False)
    auth = {"apikey": "k2", "client": "c2"}

    def get(name: str, **params: Any) -> requests.Response:
        return requests.get(f"{emulator.url}/api/{name}", params={**auth, **params}, timeout=30)

    data = KaonDataset(seed=42, client="c2", now=NOW, first_week=770, launch_week=700, same_second_run=12)
    assert [w["week"] for w in get("weeks").json()["weeks"]] == list(range(770, 777))
    assert get("weeks").json()["client"] == "c2"
    assert len(get("uid", week=770).json()["uids"]) == 500 * 18
    assert get("hits", path="home").json()["hits"][0]["week"] == 700
    assert get("hits", week=700).json()["hits"] == data.hits_for_week(700)
    assert len(get("hits", week=776).json()["hits"]) <= 30
    assert len(data.path_names) == 30
    assert get("extid", id="EXT-0000").json()["records"] == data.clickstream("EXT-0000")[:1000]
    assert max(Counter(r["timestamp"] for r in data.clickstream("EXT-0000")).values()) == 12
    assert len(data.external_id_names) == 5
    assert requests.get(f"{emulator.url}/api/weeks", params=AUTH, timeout=30).status_code == 403


def test_breakage_for_every_week_and_clear(kaon_emulator: EmulatorProcess) -> None:
    kaon_emulator.control("kaon/breakage", {"endpoint": "hits", "kind": "missing_key"})
    kaon_emulator.control("kaon/breakage", {"endpoint": "countries", "kind": "wrong_types"})
    assert "hits" not in call(kaon_emulator, "hits", week=770).json()
    assert "hits" not in call(kaon_emulator, "hits").json()
    counts = call(kaon_emulator, "countries", week=768).json()["countries"]
    assert [c["count"] for c in counts] == [f"{n}a" for n in expected().countries(768).values()]
    kaon_emulator.control("kaon/breakage", {"clear": True})
    assert call(kaon_emulator, "hits", week=770).json()["hits"] == expected().hits_for_week(770)


def test_breakage_requests_are_checked(kaon_emulator: EmulatorProcess) -> None:
    request = urllib.request.Request(  # noqa: S310 (our own emulator on loopback)
        f"{kaon_emulator.url}/_emulator/kaon/breakage",
        data=json.dumps({"endpoint": "uid", "kind": "gibberish"}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert raised.value.code == 400
    assert "bad_uids_length" in json.loads(raised.value.read())["error"]
    assert call(kaon_emulator, "uid", week=770).json()["uids"] == expected().uids_string(770)


def test_clickstreams_do_not_depend_on_when_they_are_first_read() -> None:
    # the server generates a stream lazily, maybe only after its clock moved
    later = NOW + timedelta(days=7)
    read_late = expected().at(later).clickstream("user 42+test@example.com")
    read_early = expected().clickstream("user 42+test@example.com")
    assert read_late[: len(read_early)] == read_early
    assert len(read_late) > len(read_early)


def test_readings_switch_at_run_time(kaon_emulator: EmulatorProcess) -> None:
    data = expected()
    external_id = data.external_id_names[0]
    clicks = data.clickstream(external_id)
    second = clicks[40]["timestamp"]
    assert kaon_emulator.control("kaon/readings") == {
        "extid_cap": None,
        "extid_start": "inclusive",
        "extid_param": "id",
        "weeks_list": "with_filling",
        "path_form": "as_listed",
    }
    assert call(kaon_emulator, "extid", id=external_id, start=second, limit=50).json()["records"] == (
        data.clickstream_page(external_id, second, 50)
    )
    kaon_emulator.control("kaon/readings", {"extid_cap": 20, "extid_start": "exclusive", "extid_param": "extid"})
    assert call(kaon_emulator, "extid", id=external_id).status_code == 404
    records = call(kaon_emulator, "extid", extid=external_id, start=second, limit=50).json()["records"]
    assert records == data.clickstream_page(external_id, second + 1, 20)
    kaon_emulator.control("kaon/readings", {"weeks_list": "complete_only", "path_form": "decoded"})
    assert [w["week"] for w in call(kaon_emulator, "weeks").json()["weeks"]] == data.full_weeks[:-1]
    assert call(kaon_emulator, "engagement", week=data.current_week).status_code == 200
    assert call(kaon_emulator, "hits", path="tours/Main%20Lobby").status_code == 404
    history = call(kaon_emulator, "hits", path="tours/Main Lobby").json()
    assert history["hits"] == data.path_history("tours/Main%20Lobby")
    kaon_emulator.reset()
    assert kaon_emulator.control("kaon/readings")["weeks_list"] == "complete_only", "reset keeps the readings"


def test_readings_are_checked(kaon_emulator: EmulatorProcess) -> None:
    response = requests.post(f"{kaon_emulator.url}/_emulator/kaon/readings", json={"extid_cap": 0}, timeout=30)
    assert response.status_code == 400
    assert "extid_cap must be null or an integer from 1 to 10000" in response.json()["error"]
    response = requests.post(f"{kaon_emulator.url}/_emulator/kaon/readings", json={"paging": 1}, timeout=30)
    assert "unknown reading knob(s) ['paging']" in response.json()["error"]


def test_hits_exist_before_the_first_listed_week(kaon_emulator: EmulatorProcess) -> None:
    data = expected()
    assert data.launch_week == data.first_week - 20
    assert call(kaon_emulator, "hits", week=data.launch_week).json()["hits"] == data.hits_for_week(data.launch_week)
    assert data.hits_for_week(data.launch_week)
    assert call(kaon_emulator, "hits", week=data.launch_week - 1).status_code == 404


def test_the_emulators_own_vendor_facts_equal_the_taps() -> None:
    """The emulator keeps independent copies of the vendor's tables and week epoch; they must not drift."""
    from emulators import kaon_data
    from tap_kaon_insights import vendor_tables, week_numbers

    assert kaon_data.LANGUAGES == vendor_tables.LANGUAGE_NAMES
    assert tuple(kaon_data.BUCKETS) == vendor_tables.ENGAGEMENT_BUCKETS
    assert kaon_data.EPOCH == week_numbers.WEEK_ZERO
    assert [kaon_data.week_start(week) for week in (417, 776)] == [week_numbers.week_start(w) for w in (417, 776)]
