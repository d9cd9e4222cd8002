"""Week arithmetic, uids checking and settings parsing (no emulator needed)."""

from __future__ import annotations

from datetime import date

import pytest

from tap_kaon_insights.client import KaonError
from tap_kaon_insights.payloads import PayloadChecker, check_uids
from tap_kaon_insights.settings import KaonSettings
from tap_kaon_insights.vendor_tables import bucket_order
from tap_kaon_insights.week_numbers import unix_to_iso, week_of, week_start


def test_week_417_starts_on_2019_12_29() -> None:
    assert week_start(417) == date(2019, 12, 29)
    assert week_start(776) == date(2026, 11, 15)


@pytest.mark.parametrize(
    ("day", "week"), [(date(2026, 11, 15), 776), (date(2026, 11, 21), 776), (date(2026, 11, 22), 777)]
)
def test_week_of_a_day(day: date, week: int) -> None:
    assert week_of(day) == week


def test_bucket_order_known_then_unknown() -> None:
    assert [bucket_order(label, i) for i, label in enumerate(["0-10s", "30m+", "weird"])] == [0, 6, 9]


def test_unix_to_iso_is_utc() -> None:
    assert unix_to_iso(0) == "1970-01-01T00:00:00+00:00"


def uids_error(uids: str) -> str:
    with pytest.raises(KaonError) as failure:
        check_uids(uids, PayloadChecker("uid", 775))
    return str(failure.value)


def test_well_formed_uids_pass() -> None:
    check_uids("0x0123456789abcdef0xFEDCBA9876543210", PayloadChecker("uid", 775))
    check_uids("", PayloadChecker("uid", 775))


@pytest.mark.parametrize(
    ("uids", "fragment"),
    [
        ("0x0123456789abcdef0x12", "length 22, which is not a multiple of 18"),
        ("0x0123456789abcdef0x0123456789abcdeg", "'0x0123456789abcdeg' at offset 18"),
        ("0x0123456789abcdef000123456789abcdef", "'000123456789abcdef' at offset 18"),
    ],
)
def test_malformed_uids_name_the_week_and_offset(uids: str, fragment: str) -> None:
    message = uids_error(uids)
    assert "endpoint 'uid' (week 775)" in message
    assert fragment in message


def test_settings_defaults() -> None:
    settings = KaonSettings.from_config({"api_key": "k" * 8, "client": "c"})
    assert (settings.api_url, settings.start_week, settings.max_concurrency) == (
        "https://insights.v-central.com/api",
        417,
        8,
    )
    assert settings.endpoints["uid"] == "uid"
    assert settings.external_id_page_size == 1000


def test_start_date_becomes_its_week() -> None:
    assert KaonSettings.from_config({"api_key": "k", "client": "c", "start_date": "2019-12-31"}).start_week == 417


def test_endpoint_override_keeps_the_other_defaults() -> None:
    settings = KaonSettings.from_config({"api_key": "k", "client": "c", "endpoints": {"uid": "uids"}})
    assert settings.endpoints["uid"] == "uids"
    assert settings.endpoints["weeks"] == "weeks"


@pytest.mark.parametrize(
    "api_url", ["http://127.0.0.1:8000/api", "http://localhost/api", "https://insights.example.com/api"]
)
def test_allowed_api_urls(api_url: str) -> None:
    assert KaonSettings.parse({"api_key": "k", "client": "c", "api_url": api_url}).errors == []


def test_plain_http_to_a_real_host_says_why() -> None:
    (error,) = KaonSettings.parse(
        {"api_key": "k", "client": "c", "api_url": "http://insights.v-central.com/api"}
    ).errors
    assert "must use https" in error
    assert "query string" in error
