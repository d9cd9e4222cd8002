"""A Kaon weekly table is one class: declared here (endpoint, keys, schema, check, rows), it syncs through the
emulator with the tap's own week selection, parallel fetching, bookmark and errors."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest
from singer_sdk import typing as th
from typing_extensions import override

from emulators.testing import EmulatorProcess
from tap_kaon_insights import payloads
from tap_kaon_insights.client import KaonError
from tap_kaon_insights.records import Row
from tap_kaon_insights.streams import WEEKLY_COLUMNS
from tap_kaon_insights.tap import TapKaonInsights
from tap_kaon_insights.weekly_stream import WeeklyStream
from tests.support.cli import parse_messages
from tests.tap_kaon_insights.kaon_tap_helpers import base_config, dataset, expected_weekly, listed_weeks

if t.TYPE_CHECKING:
    from singer_sdk import Stream

DATA = dataset()


class CountryTotalsStream(WeeklyStream):
    """Each week's number of countries and their total of unique engagements (from the ``countries`` endpoint)."""

    name = "country_totals"
    endpoint = "countries"
    primary_keys = ("client", "week")
    schema = th.PropertiesList(
        *WEEKLY_COLUMNS,
        th.Property("countries", th.IntegerType),
        th.Property("engagements", th.IntegerType),
    ).to_dict()
    check_payload = payloads.code_counts("countries", "country")

    @staticmethod
    def build_rows(base: Row, pairs: list[tuple[str, int]]) -> Iterator[Row]:
        yield {**base, "countries": len(pairs), "engagements": sum(count for _, count in pairs)}


class TapWithCountryTotals(TapKaonInsights):
    @override
    def discover_streams(self) -> list[Stream]:
        return [*super().discover_streams(), CountryTotalsStream(tap=self)]


def sync(config: dict[str, t.Any], capfd: pytest.CaptureFixture[str], state: dict | None = None) -> list[dict]:
    """Run the tap in this process with only ``country_totals`` selected; its Singer messages."""
    catalog = TapWithCountryTotals(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "country_totals"
    capfd.readouterr()
    TapWithCountryTotals(config=config, catalog=catalog, state=state).sync_all()
    return parse_messages(capfd.readouterr().out)


def totals(weeks: list[int]) -> list[dict[str, t.Any]]:
    """The rows due: the ``countries`` rows of each week, summed."""
    rows = []
    for week in weeks:
        countries = expected_weekly(DATA, "countries", [week])
        base = {key: countries[0][key] for key in ("client", "week", "week_start")}
        rows.append({**base, "countries": len(countries), "engagements": sum(row["count"] for row in countries)})
    return rows


def test_a_weekly_table_declared_in_one_class_syncs(
    module_kaon: EmulatorProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    messages = sync(base_config(module_kaon.url, start_week=770, max_concurrency=3), capfd)
    rows = [m["record"] for m in messages if m["type"] == "RECORD"]
    weeks = listed_weeks(DATA, 770)
    assert len(weeks) >= 5
    assert rows == totals(weeks)
    assert {m["stream"] for m in messages if m["type"] in ("RECORD", "SCHEMA")} == {"country_totals"}
    state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    assert state["bookmarks"]["country_totals"]["replication_key_value"] == weeks[-1]
    calls = [entry for entry in module_kaon.requests() if entry["path"].endswith("/countries")]
    assert sorted(int(call["query"]["week"]) for call in calls[-len(weeks) :]) == weeks


def test_the_declared_table_resumes_from_its_bookmark(
    module_kaon: EmulatorProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    state = {"bookmarks": {"country_totals": {"replication_key": "week", "replication_key_value": 774}}}
    messages = sync(base_config(module_kaon.url), capfd, state)
    assert [m["record"] for m in messages if m["type"] == "RECORD"] == totals(listed_weeks(DATA, 774))


def test_the_declared_check_stops_a_bad_answer(
    kaon_emulator: EmulatorProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    kaon_emulator.control("kaon/breakage", {"endpoint": "countries", "week": 775, "kind": "missing_key"})
    with pytest.raises(KaonError, match=r"endpoint 'countries' \(week 775\) with no 'countries' key"):
        sync(base_config(kaon_emulator.url, start_week=774), capfd)
