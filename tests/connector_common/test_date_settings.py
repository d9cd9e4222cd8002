"""Date settings are read strictly (YYYY-MM-DD or an ISO date-time), and a start in the future is refused.

Python's ``date.fromisoformat`` alone accepts ``20260131`` and ISO week dates (``2026-W05-1``), and Meltano's
``date_iso8601`` parsing guessed ``2026-31-01`` into 2026-01-31: both are ways of syncing another range than the
user meant, so only the one written form is taken.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from connector_common.setting_fields import not_in_future, setting
from connector_common.settings import PluginSettings
from tap_kahuna_logs.settings import KahunaSettings
from tap_kaon_insights.settings import KaonSettings
from tap_kaon_insights.week_numbers import week_of


class DatedSettings(PluginSettings):
    start: date = setting("First day.", required=True, rule=not_in_future)


TODAY = datetime.now(timezone.utc).date()


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("2026-01-31", date(2026, 1, 31)),
        (" 2026-01-31 ", date(2026, 1, 31)),
        ("2026-01-31T00:00:00Z", date(2026, 1, 31)),
        ("2026-01-31T23:59:59.5+02:00", date(2026, 1, 31)),
        ("2026-01-31 10:00", date(2026, 1, 31)),
        (date(2026, 1, 31), date(2026, 1, 31)),  # what YAML makes of an unquoted date
        (datetime(2026, 1, 31, 5, tzinfo=timezone.utc), date(2026, 1, 31)),
    ],
)
def test_the_written_forms_of_a_day_are_read(typed: object, day: date) -> None:
    assert DatedSettings.from_config({"start": typed}).start == day


@pytest.mark.parametrize(
    "typed", ["2026-31-01", "01/12/2026", "12/01/2026", "yesterday", "20260131", "2026-W05-1", "2026-02-30", "2026-1-5"]
)
def test_every_other_form_is_one_line_naming_the_setting_and_the_text(typed: str) -> None:
    parsed = DatedSettings.parse({"start": typed})
    assert parsed.errors == [f"start must be a date like 2026-11-01 (got {typed!r})"]


def test_a_day_after_today_is_refused_and_today_is_not() -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert DatedSettings.parse({"start": tomorrow}).errors == [
        f"start is in the future ({tomorrow}; today is {TODAY.isoformat()} UTC): nothing could be synced"
    ]
    assert DatedSettings.parse({"start": TODAY.isoformat()}).errors == []


def test_each_taps_start_date_is_refused_in_the_future() -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    kahuna = KahunaSettings.parse({"secret_key": "s", "api_key": "k", "start_date": tomorrow})
    kaon = KaonSettings.parse({"api_key": "k", "client": "c", "start_date": tomorrow})
    for parsed in (kahuna, kaon):
        assert [error for error in parsed.errors if error.startswith("start_date is in the future")], parsed.errors


def test_kaon_start_week_after_this_week_is_refused() -> None:
    this_week = week_of(TODAY)
    with pytest.raises(ValueError, match=rf"start_week {this_week + 1} is in the future \(this is week {this_week}\)"):
        KaonSettings.from_config({"api_key": "k", "client": "c", "start_week": this_week + 1})
    assert KaonSettings.from_config({"api_key": "k", "client": "c", "start_week": this_week}).start_week == this_week
