"""The warehouse leg: what the dbt marts hold, and the Kissmetrics view those rows must produce.

A mart row is one beacon: an event row an ``/e``, a people row an ``/s``, an alias row an ``/a``
(target-kissmetrics--warehouse in meltano.yml). From the marts alone this module computes the
deduplicated view Kissmetrics keeps (the emulator's ``/_emulator/dedup``), so a test can demand
that the view equals exactly what the marts hold.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulators.testing import EmulatorProcess

Query = Callable[[str], list[tuple[Any, ...]]]

# Per mart: its columns in the order read, and the columns the warehouse mapping sends as properties.
MART_COLUMNS = {
    "kissmetrics_events": (
        "replay_sequence",
        "event_id",
        "source",
        "person",
        "event",
        "timestamp",
        "campaign",
        "campaign_id",
        "action_detail",
        "os",
        "sequence_in_second",
    ),
    "kissmetrics_people": ("replay_sequence", "person", "timestamp", "platform", "email"),
    "kissmetrics_aliases": ("replay_sequence", "person", "alias", "source", "first_seen_at"),
}
PROPERTY_COLUMNS = {
    "kissmetrics_events": ("campaign", "campaign_id", "action_detail", "os", "sequence_in_second"),
    "kissmetrics_people": ("platform", "email"),
}
BEACON_KIND = {"kissmetrics_events": "e", "kissmetrics_people": "s", "kissmetrics_aliases": "a"}

Row = dict[str, Any]
Marts = dict[str, list[Row]]


def read_marts(query: Query) -> Marts:
    """Every row of the three marts (schema ``marts``), by mart, ordered by replay_sequence."""
    return {
        mart: [
            dict(zip(columns, row, strict=True))
            for row in query(f"select {', '.join(columns)} from marts.{mart} order by replay_sequence")  # noqa: S608
        ]
        for mart, columns in MART_COLUMNS.items()
    }


def unix(value: datetime) -> int:
    """Unix seconds as target-kissmetrics sends ``_t`` (whole seconds)."""
    return int(value.timestamp())


def sent_properties(mart: str, row: Row) -> dict[str, str]:
    """The properties a row's beacon carries, as strings (NULLs are not sent)."""
    return {name: str(row[name]) for name in PROPERTY_COLUMNS.get(mart, ()) if row[name] is not None}


@dataclass
class KissmetricsView:
    """A deduplicated Kissmetrics view: events, property values by (person, name, time), alias pairs.

    ``properties`` maps each key to the values it may hold: Kissmetrics keeps one value per person,
    name and time (the last received), so when two rows give one key different values (two events of
    one person in one second), either is right.
    """

    events: set[tuple[str, str, int, frozenset[tuple[str, str]]]]
    properties: dict[tuple[str, str, int], set[str]]
    aliases: set[frozenset[str]]


def expected_view(marts: Marts) -> KissmetricsView:
    """The view Kissmetrics keeps after receiving every mart row once (or more: duplicates merge)."""
    events = set()
    properties: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for mart in ("kissmetrics_events", "kissmetrics_people"):
        for row in marts[mart]:
            time = unix(row["timestamp"])
            props = sent_properties(mart, row)
            for name, value in props.items():
                properties[row["person"], name.casefold(), time].add(value)
            if mart == "kissmetrics_events":
                events.add((row["person"], row["event"].casefold(), time, frozenset(props.items())))
    aliases = {frozenset((row["person"], row["alias"])) for row in marts["kissmetrics_aliases"]}
    return KissmetricsView(events, dict(properties), aliases)


def received_view(kissmetrics: EmulatorProcess) -> KissmetricsView:
    """The emulator's deduplicated view."""
    dedup = kissmetrics.control("dedup")
    events = {
        (item["person"], item["event"].casefold(), item["time"], frozenset(item["properties"].items()))
        for item in dedup["events"]
    }
    properties = {
        (item["person"], item["name"].casefold(), item["time"]): {item["value"]} for item in dedup["properties"]
    }
    return KissmetricsView(events, properties, {frozenset(pair) for pair in dedup["aliases"]})


def assert_view_matches_marts(kissmetrics: EmulatorProcess, marts: Marts) -> None:
    """The emulator's deduplicated view is exactly what the marts hold: no row missing, nothing else."""
    expected, received = expected_view(marts), received_view(kissmetrics)
    assert received.events == expected.events, (
        f"events: {len(received.events - expected.events)} unexpected, {len(expected.events - received.events)} missing"
    )
    assert set(received.properties) == set(expected.properties), "property keys differ"
    wrong = {key: values for key, values in received.properties.items() if not values <= expected.properties[key]}
    assert not wrong, f"property values no mart row holds: {list(wrong.items())[:3]}"
    assert received.aliases == expected.aliases


def received_beacons(kissmetrics: EmulatorProcess, offset: int = 0) -> list[dict[str, Any]]:
    """Every beacon the emulator received from ``offset`` on (decoded, oldest first)."""
    beacons: list[dict[str, Any]] = []
    while True:
        page = kissmetrics.control(f"beacons?offset={offset + len(beacons)}&limit=5000")["beacons"]
        if not page:
            return beacons
        beacons.extend(page)


def beacon_of(mart: str, row: Row) -> tuple[Any, ...]:
    """The beacon a mart row becomes, as (kind, person, name, time, properties) to compare with the raw log."""
    kind = BEACON_KIND[mart]
    if kind == "a":
        return (kind, row["person"], row["alias"], None, frozenset())
    name = row["event"] if kind == "e" else None
    return (kind, row["person"], name, unix(row["timestamp"]), frozenset(sent_properties(mart, row).items()))


def beacon_key(beacon: dict[str, Any]) -> tuple[Any, ...]:
    """A received beacon as (kind, person, name, time, properties)."""
    params = beacon["params"]
    properties = frozenset((name, value) for name, value in params.items() if not name.startswith("_"))
    time = int(params["_t"]) if "_t" in params else None
    return (beacon["kind"], params["_p"], params.get("_n"), time, properties)


def beacons_of(marts: Marts, rows: Callable[[str, list[Row]], Iterable[Row]]) -> Counter[tuple[Any, ...]]:
    """The beacons of the rows ``rows(mart, mart_rows)`` picks from each mart, counted."""
    return Counter(beacon_of(mart, row) for mart, mart_rows in marts.items() for row in rows(mart, mart_rows))
