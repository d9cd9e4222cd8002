"""The fixed clock and the small data sets every test folder uses (the emulators' knobs and their datasets)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from emulators.kahuna_data import CATEGORIES as EMULATED_KAHUNA_CATEGORIES  # stdlib only: cheap to import

if TYPE_CHECKING:  # the unit tests run without building the emulators' data sets
    from emulators.kahuna_data import KahunaDataset
    from emulators.kaon_data import KaonDataset

FIXED_NOW_TEXT = "2026-11-18T15:30:00+00:00"  # a Wednesday: week 776 (starts Sunday 2026-11-15) is in progress
FIXED_NOW = datetime.fromisoformat(FIXED_NOW_TEXT)

# The emulators' demo credentials (no secrets: every emulator accepts them by default).
KAON_API_KEY = "kaon-demo-key"
KAON_CLIENT = "demo-client"
KAHUNA_SECRET_KEY = "kahuna-demo-secret"  # noqa: S105
KAHUNA_API_KEY = "kahuna-demo-key"
KM_API_KEY = "km-demo-key"

#: The small data sets: fast to serve and to check, with every hard case the emulators know.
KAON_SMALL = {"weeks_before_now": 12, "devices_per_week": 40, "paths": 12, "external_ids": 3, "clicks_per_id": 250}
KAHUNA_SMALL = {"days": 5, "logs_per_day": 120}
#: The categories the Kahuna emulator serves (its own copy of the vendor's list, independent of the tap's).
KAHUNA_CATEGORIES = EMULATED_KAHUNA_CATEGORIES
KAHUNA_STREAMS = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}


def emulator_args(knobs: dict[str, Any]) -> list[str]:
    """Data knobs as an emulator's command-line arguments."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in knobs.items()]


SMALL_DATA = {"kaon": emulator_args(KAON_SMALL), "kahuna": emulator_args(KAHUNA_SMALL), "kissmetrics": []}


def kaon_dataset(now: datetime = FIXED_NOW, **overrides: Any) -> KaonDataset:
    """The Kaon emulator's data for the small knobs (plus ``overrides``) at ``now``."""
    from emulators.kaon_data import KaonDataset

    return KaonDataset(seed=42, client=KAON_CLIENT, now=now, **{**KAON_SMALL, **overrides})


def kahuna_dataset(now: datetime = FIXED_NOW, env: str = "p", **overrides: Any) -> KahunaDataset:
    """The Kahuna emulator's data for the small knobs (plus ``overrides``) at ``now``."""
    from emulators.kahuna_data import KahunaDataset

    return KahunaDataset(seed=42, now=now, env=env, **{**KAHUNA_SMALL, **overrides})


def kahuna_emulator_dataset(*args: str, now: datetime = FIXED_NOW, env: str = "p") -> KahunaDataset:
    """The data a Kahuna emulator started with the small data set and ``args`` (its data knobs, later args win)
    serves at ``now``: built from the emulator's own parsed options, so the test and the server agree."""
    from emulators.__main__ import build_parser
    from emulators.kahuna_data import dataset_from_options

    options = build_parser().parse_args(["kahuna", *SMALL_DATA["kahuna"], *args])
    return dataset_from_options(options, now, env)


class StoredOrder:
    """A Kahuna data set as the emulator's ``order: stored`` reading serves it: each day's records by arrival
    (today's late ones only once they arrived), so ``records`` gives the server's order and positions."""

    def __init__(self, data: KahunaDataset) -> None:
        self.days = data.days
        self.now_text = data.now_text
        self._data = data

    def records(self, category: str, day: date) -> list[dict[str, Any]]:
        """``category``'s records of ``day`` in the stored order."""
        from emulators.kahuna_readings import stored_order

        return stored_order(self._data.records(category, day), self._data.now_text)
