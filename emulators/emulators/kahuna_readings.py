"""The readings of the seed the Kahuna emulator serves, switchable at run time (``kahuna.py``'s docstring).

:class:`PagingPolicy`: ``number_of_records`` as the page size or the cap of a chain; :class:`KahunaReadings`: the
other readings; :func:`arrival_text` and :func:`stored_order`: when records arrive under ``order``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from emulators.kahuna_requests import MAX_RECORDS_PER_PAGE
from emulators.knobs import RuntimeKnobs

RECORDS_CAPS = ("page", "chain")
LAST_PAGE_MORE_RECORDS = ("false", "absent")
CURSOR_ERRORS = ("names_cursor", "generic", "not_found")
RESTARTS_FROM = ("minute", "day_start")
DAY_ENDS = ("ends", "empty_pages", "repeat_page", "repeat_last")
ORDERS = ("timestamp", "stored", "one_late")
LATE_MINUTES = 45  # ``order: stored``: how late every seventh record of a day arrives
ONE_LATE_HOURS = 6  # ``order: one_late``: how late the one late record of a day (its 4th) arrives
DEFAULT_CHAIN_PAGE_SIZE = 250


@dataclass
class PagingPolicy(RuntimeKnobs):
    """Which reading of ``number_of_records`` the server applies, and its own page size in chain mode."""

    KNOBS = "paging"

    records_cap: str = "page"
    chain_page_size: int = DEFAULT_CHAIN_PAGE_SIZE

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or range."""
        if self.records_cap not in RECORDS_CAPS:
            raise ValueError(f"records_cap must be one of {list(RECORDS_CAPS)}, got {self.records_cap!r}")
        size = self.chain_page_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RECORDS_PER_PAGE:
            raise ValueError(f"chain_page_size must be an integer from 1 to {MAX_RECORDS_PER_PAGE}, got {size!r}")

    def chain_cap(self, number_of_records: int) -> int | None:
        """The cap of a chain a timestamp request starts: None when ``number_of_records`` is the page size."""
        return number_of_records if self.records_cap == "chain" else None


@dataclass
class KahunaReadings(RuntimeKnobs):
    """The readings of the seed this emulator serves besides ``number_of_records`` (see the module docstring)."""

    KNOBS = "reading"

    last_page_more_records: str = "false"
    cursor_error: str = "names_cursor"
    restart_from: str = "minute"
    day_end: str = "ends"
    page_overlap: bool = False
    order: str = "timestamp"

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or value."""
        for name, allowed in (
            ("last_page_more_records", LAST_PAGE_MORE_RECORDS),
            ("cursor_error", CURSOR_ERRORS),
            ("restart_from", RESTARTS_FROM),
            ("day_end", DAY_ENDS),
            ("order", ORDERS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if not isinstance(self.page_overlap, bool):
            raise ValueError(f"page_overlap must be true or false, got {self.page_overlap!r}")


#: The readings the connectors' contract assumes (``KahunaReadings``' defaults), as ``/_emulator/kahuna/readings``
#: shows them.
CONTRACT_READINGS: dict[str, Any] = asdict(KahunaReadings())


def arrival_text(timestamp: str, index: int, order: str = "stored") -> str:
    """When a record arrived under ``order`` (its timestamp; under ``stored``, ``LATE_MINUTES`` later for every
    seventh record of its day by ``index``; under ``one_late``, ``ONE_LATE_HOURS`` later for the 4th), in the
    timestamp form."""
    if order == "one_late":
        if index != 3:
            return timestamp
        lateness = timedelta(hours=ONE_LATE_HOURS)
    elif index % 7 != 3:
        return timestamp
    else:
        lateness = timedelta(minutes=LATE_MINUTES)
    late = datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S.%f") + lateness
    return late.strftime("%Y-%m-%d %H:%M:%S.%f")


def stored_order(records: list[dict[str, Any]], now_text: str, order: str = "stored") -> list[dict[str, Any]]:
    """A day's records (all of it, or a prefix) as ``order`` (``stored`` or ``one_late``) serves them at
    ``now_text``: by arrival."""
    arrived = sorted((arrival_text(record["timestamp"], index, order), index) for index, record in enumerate(records))
    return [records[index] for arrival, index in arrived if arrival <= now_text]
