"""Exact rows per category against the emulator's dataset (under every reading of the seed in ``DAY_READINGS``),
and what the tap asks the API (under the contract's readings)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable

import pytest

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun, run_plugin
from tests.tap_kahuna_logs.kahuna_helpers import (
    API_KEY,
    CATEGORIES,
    DAY_READINGS,
    SECRET_KEY,
    STREAMS,
    TAP,
    DayReading,
    assert_bookmark,
    base_config,
    dataset,
    expected_rows,
    keys,
)

KNOWN = {
    "inapp": {
        "user_id",
        "credentials",
        "campaign",
        "campaign_id",
        "message",
        "timestamp",
        "action",
        "action_detail",
        "os",
    },
    "push": {
        "dev_id",
        "user_id",
        "campaign",
        "campaign_id",
        "timestamp",
        "action",
        "action_category",
        "action_detail",
        "push_token",
        "credentials",
        "message",
        "os",
        "ghost",
    },
    "email": {"user_id", "credentials", "campaign", "campaign_id", "timestamp", "action", "action_detail", "message"},
    "user_merge": {
        "timestamp",
        "surviving_user_id",
        "merged_user_id",
        "common_credentials",
        "surviving_credentials",
        "merged_credentials",
    },
}
CREDENTIAL_FIELDS = {"credentials", "common_credentials", "surviving_credentials", "merged_credentials"}


def iso(kahuna_timestamp: str) -> str:
    """``2026-11-18 00:00:00.000000`` -> ``2026-11-18T00:00:00.000000+00:00`` (written out independently)."""
    day, time = kahuna_timestamp.split(" ")
    if "." not in time:
        time += ".000000"
    return f"{day}T{time}+00:00"


def by_type(credentials: list) -> dict[str, list[str]]:
    """Independent reading of ``type:value`` credentials."""
    parsed: dict[str, list[str]] = {}
    for credential in credentials:
        text = str(credential)
        if ":" in text and not text.startswith(":"):
            kind, value = text.split(":", 1)
            parsed.setdefault(kind, []).append(value)
    return parsed


def assert_matches_raw(category: str, record: dict, raw: dict) -> None:
    """Every raw field is in the record: typed when known, as sent in ``extra`` when not."""
    assert record["timestamp"] == iso(raw["timestamp"])
    extra = {name: value for name, value in raw.items() if name not in KNOWN[category]}
    assert record["extra"] == extra
    for name, value in raw.items():
        if name not in KNOWN[category] or name == "timestamp":
            continue
        if name in CREDENTIAL_FIELDS:
            assert record[name] == [str(item) for item in value]
            assert record[f"{name}_by_type"] == by_type(value)
        elif isinstance(value, bool) or value is None:
            assert record[name] == value
        else:
            assert record[name] == str(value)
    for name in KNOWN[category] - set(raw):
        assert name not in record


def assert_exact_rows(run: PluginRun, category: str, reading: DayReading) -> None:
    """The stream holds exactly the records the server sends under ``reading``, in its order, each once, with the
    documented key."""
    rows = reading.rows(category)
    records = run.records.get(STREAMS[category], [])
    assert keys(records) == [(day, position) for day, position, _ in rows]
    for record, (_, _, raw) in zip(records, rows, strict=True):
        assert_matches_raw(category, record, raw)


@pytest.fixture(scope="module")
def full_run(kahuna: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[PluginRun, list[dict]]:
    """One run over every category and day under the contract's readings, and the requests it made."""
    DAY_READINGS["contract"].serve(kahuna).reset()
    run = run_plugin(TAP, base_config(kahuna), tmp_path_factory.mktemp("full"))
    return run, kahuna.requests()


@pytest.fixture(scope="module", params=list(DAY_READINGS))
def reading_run(
    request: pytest.FixtureRequest, kahuna: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PluginRun, DayReading]:
    """One run over every category and day under each reading of ``DAY_READINGS``."""
    reading = DAY_READINGS[request.param]
    reading.serve(kahuna).reset()
    run = run_plugin(TAP, reading.config(kahuna), tmp_path_factory.mktemp(request.param))
    DAY_READINGS["contract"].serve(kahuna)
    return run, reading


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_has_exactly_the_api_records(reading_run: tuple[PluginRun, DayReading], category: str) -> None:
    run, reading = reading_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert_exact_rows(run, category, reading)


def test_data_set_has_the_hard_cases(full_run: tuple[PluginRun, list[dict]]) -> None:
    run, _ = full_run
    records = [record for stream in STREAMS.values() for record in run.records.get(stream, [])]
    times = [record["timestamp"] for record in records]
    assert any(t.endswith("T00:00:00.000000+00:00") for t in times)
    assert any(t.endswith("T23:59:59.999999+00:00") for t in times)
    assert any(record["extra"] for record in records), "unknown fields are kept in extra"
    contents = [tuple(sorted((k, repr(v)) for k, v in r.items() if k != "log_position")) for r in records]
    assert len(set(contents)) < len(contents), "genuine repeats stay separate records"
    assert any(
        any(":" in value for values in record.get("credentials_by_type", {}).values() for value in values)
        for record in records
    ), "a value holding ':' is split on the first ':' only"


def test_requests_are_one_category_each_from_midnight_then_by_cursor(full_run: tuple[PluginRun, list[dict]]) -> None:
    _, requests = full_run
    assert requests
    token = base64.b64encode(f"{SECRET_KEY}:{API_KEY}".encode()).decode()
    for request in requests:
        assert request["method"] == "POST"
        assert request["query"] == {"env": "p"}
        assert request["headers"]["Authorization"] == f"Basic {token}"
        body = request["json"]
        assert len(body["categories_to_return"]) == 1
        assert body["number_of_records"] == 17
        assert ("cursor" in body) != ("timestamp" in body)
    categories = {request["json"]["categories_to_return"][0] for request in requests}
    assert categories == set(CATEGORIES)


def test_each_day_is_asked_from_midnight_then_once_more_from_its_last_minute(
    full_run: tuple[PluginRun, list[dict]],
) -> None:
    """Under the page-size reading (the emulator's default) the check for more costs one request per day."""
    _, requests = full_run
    for category in CATEGORIES:
        asked = [r["json"] for r in requests if r["json"]["categories_to_return"] == [category]]
        starts: dict[str, list[str]] = {}
        for body in asked:
            if "timestamp" in body:
                day_text, minute = body["timestamp"].split()
                starts.setdefault(day_text, []).append(minute)
        expected_requests = 0
        for day in dataset().days:
            records = dataset().records(category, day)
            last_minute = records[-1]["timestamp"][11:16]
            last_minute_records = sum(1 for r in records if r["timestamp"][11:16] == last_minute)
            assert starts[day.strftime("%m/%d/%Y")] == ["00:00", last_minute], (category, day)
            expected_requests += math.ceil(len(records) / 17) + math.ceil(last_minute_records / 17)
        assert len(asked) == expected_requests, category


def test_user_merge_is_never_combined(full_run: tuple[PluginRun, list[dict]]) -> None:
    _, requests = full_run
    merge_requests = [r for r in requests if "user_merge" in r["json"]["categories_to_return"]]
    assert merge_requests
    assert all(r["json"]["categories_to_return"] == ["user_merge"] for r in merge_requests)


def test_final_state_has_a_bookmark_per_stream_and_no_secret(reading_run: tuple[PluginRun, DayReading]) -> None:
    run, reading = reading_run
    bookmarks = run.final_state["bookmarks"]
    today = dataset().days[-1]
    for category in CATEGORIES:
        bookmark = bookmarks[STREAMS[category]]
        assert_bookmark(bookmark, reading.bookmark(category, today))
        if bookmark["last_timestamp"] is not None:
            assert bookmark["replication_key_value"] == bookmark["last_timestamp"]
    text = str(run.states)
    assert SECRET_KEY not in text
    assert API_KEY not in text


def test_the_bookmark_of_a_sorted_day_is_its_last_record_and_minute(full_run: tuple[PluginRun, list[dict]]) -> None:
    """Written out from the data set, independently of the readings' helper."""
    run, _ = full_run
    bookmarks = run.final_state["bookmarks"]
    for category in CATEGORIES:
        rows = expected_rows(category)
        last_day, last_timestamp = rows[-1][0], rows[-1][2]["timestamp"]
        bookmark = bookmarks[STREAMS[category]]
        assert bookmark["day"] == last_day
        assert bookmark["day_records_emitted"] == sum(1 for row in rows if row[0] == last_day)
        assert bookmark["last_timestamp"] == bookmark["replication_key_value"] == iso(last_timestamp)
        of_last_minute = [row for row in rows if row[2]["timestamp"][:16] == last_timestamp[:16]]
        assert bookmark["minute_records_emitted"] == len(of_last_minute)


def test_selected_categories_only(clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun]) -> None:
    run = run_tap(base_config(clean_emulator, categories=["user_merge", "email"], environment="s"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.records) == {"email_logs", "user_merge_logs"}
    requests = clean_emulator.requests()
    assert {r["json"]["categories_to_return"][0] for r in requests} == {"email", "user_merge"}
    assert {r["query"]["env"] for r in requests} == {"s"}


def test_the_tap_knows_every_category_the_emulator_serves(full_run: tuple[PluginRun, list[dict]]) -> None:
    """The emulator's own list of the vendor's categories and the tap's are one list, and a run with the default
    settings reads each (its own copy on each side, on purpose: the emulator stands for the service)."""
    from tap_kahuna_logs.settings import CATEGORIES as TAP_CATEGORIES

    assert TAP_CATEGORIES == CATEGORIES
    run, requests = full_run
    assert {request["json"]["categories_to_return"][0] for request in requests} == set(TAP_CATEGORIES)
    assert set(run.records) == {STREAMS[category] for category in TAP_CATEGORIES}


def test_fields_the_schema_does_not_name_are_reported_once_each(full_run: tuple[PluginRun, list[dict]]) -> None:
    run, _ = full_run
    reported_any = False
    for stream in STREAMS.values():
        unknown = {name for record in run.records.get(stream, []) for name in record["extra"] if name != "timestamp"}
        lines = [line for line in run.stderr.splitlines() if f"{stream}: the Logs API sent field(s) " in line]
        named = [
            name.strip()
            for line in lines
            for name in line.split("sent field(s) ", 1)[1].split(" that this tap", 1)[0].split(",")
        ]
        assert sorted(named) == sorted(unknown), stream  # every unknown field once, nothing else
        assert all("WARNING" in line or "warning" in line.lower() for line in lines)
        reported_any = reported_any or bool(unknown)
    assert reported_any, "the data set sends fields the schema does not name"


def test_field_kinds_come_from_the_schema() -> None:
    from tap_kahuna_logs.records import FieldKinds
    from tap_kahuna_logs.streams import STREAM_TYPES

    push = STREAM_TYPES["push"].field_kinds
    assert push.credentials == {"credentials"}
    assert push.booleans == {"ghost"}
    assert push.strings == KNOWN["push"] - {"credentials", "ghost", "timestamp"}
    merge = STREAM_TYPES["user_merge"].field_kinds
    assert merge.credentials == {"common_credentials", "surviving_credentials", "merged_credentials"}
    with pytest.raises(ValueError, match="'score' has a type the record builder does not know"):
        FieldKinds.of({"properties": {"score": {"type": ["number", "null"]}}})
