"""Kissmetrics tracking API: ``/e`` events, ``/s`` properties, ``/a`` aliases (GET or POST), always a GIF.

Every beacon on ``/e``, ``/s`` or ``/a`` is answered ``200`` with a 1x1 transparent GIF, even when its
parameters are missing or wrong (the real server never says a beacon was wrong). Other paths answer 404
(a real beacon host answers anything; 404 here makes a client's wrong path visible). A request whose
path and query are longer than :data:`MAX_REQUEST_TARGET_BYTES` (8,000) answers ``400`` and is not recorded:
the real server answered 400 to a 16 KB URL (and aiohttp refuses request lines over 8,190 bytes anyway).

Parameters come from the query string and, for POST, also from the form-encoded body (body after
query: a key repeated in both keeps the body's value). A key repeated in one beacon keeps its last value,
and the raw view lists it under ``repeated_keys``.

The emulator keeps two views, both readable over HTTP (control routes, never subject to faults):

- ``GET /_emulator/beacons?offset=N&limit=M`` -> ``{"total", "raw_log", "beacons": [{"index", "kind",
  "method", "params", "repeated_keys", "received_at", "received_unix"}]}``, oldest first (limit default 1000).
  Stored compactly (the raw parameter string, kind, method and receive time) and decoded when read.
  With ``--raw-log count`` only the counters are kept and ``beacons`` is always empty.
- ``GET /_emulator/dedup`` -> ``{"events": [{"person", "event", "time", "properties"}],
  "properties": [{"person", "name", "time", "value"}], "aliases": [[a, b]]}``, sorted, by these rules:

  * a beacon counts only with ``_k`` equal to ``--api-key``, a ``_p`` of at most 255 characters and,
    on ``/e`` and ``/a``, an ``_n`` of at most 255 characters; others are ignored (counted by reason);
  * its time is ``_t`` when ``_d=1`` and ``_t`` is an integer, else the receive time (emulator clock);
  * event and property names are case-insensitive and ``,`` and ``:`` become spaces; property names
    longer than 255 characters are dropped and values longer than 512 are cut to 512 (both counted);
  * events with the same person, name, time and properties are one event;
  * properties (from ``/s`` and from the properties of ``/e``) keep one value, the last received, per
    person, name and time;
  * aliases are unordered pairs ``{_p, _n}``.
- ``GET /_emulator/stats`` -> raw counts by kind and method, dedup counts, ignored beacons by reason,
  ``values_truncated``, ``property_names_dropped`` and ``refused_too_long`` (beacons answered 400 for their length).

``POST /_emulator/reset`` clears both views and the counters.
"""

from __future__ import annotations

import argparse
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from emulators.clock import Clock
from emulators.core import Emulator
from emulators.faults import Faults
from emulators.responses import json_response

# The standard 43-byte transparent 1x1 GIF89a that beacon servers answer with.
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
GIF_HEADERS = {"Content-Type": "image/gif", "Cache-Control": "no-cache, no-store, must-revalidate"}

BEACON_KINDS = {"e": "event", "s": "set", "a": "alias"}
MAX_IDENTITY_CHARS = 255
MAX_NAME_CHARS = 255
MAX_VALUE_CHARS = 512
#: The longest path and query string a beacon may have; longer ones answer 400 (as the real server did at 16 KB).
MAX_REQUEST_TARGET_BYTES = 8000
DEFAULT_PAGE_LIMIT = 1000
_INTEGER = re.compile(r"-?[0-9]+")
_NAME_SEPARATORS = str.maketrans({",": " ", ":": " "})

# An event's dedup key: (person, normalised name, time, ((normalised property name, value), ...)).
EventKey = tuple[str, str, int, tuple[tuple[str, str], ...]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Kissmetrics knobs: the accepted API key and how much of the raw log to keep."""
    parser.add_argument(
        "--api-key", default="km-demo-key", help="the only _k counted in the dedup view (default km-demo-key)"
    )
    parser.add_argument(
        "--raw-log",
        choices=("full", "count"),
        default="full",
        help="full: keep every raw beacon; count: keep only counters and the dedup view (big benchmarks)",
    )
    parser.add_argument(
        "--request-log",
        action="store_true",
        help="also keep the shared request log (every request with its status, faults included: retry tests)",
    )


def create_emulator(options: argparse.Namespace, clock: Clock, faults: Faults) -> Emulator:
    """Build the Kissmetrics tracking emulator."""
    tracker = BeaconTracker(api_key=options.api_key, keep_raw=options.raw_log == "full")
    # Beacons are kept compactly below; core's request log is a second, bulkier copy (off unless asked for).
    emulator = Emulator("kissmetrics", clock=clock, faults=faults, log_requests=options.request_log)
    routes = KissmetricsRoutes(tracker, clock)
    for kind in BEACON_KINDS:
        emulator.add_route("GET", f"/{kind}", routes.beacon_handler(kind))
        emulator.add_route("POST", f"/{kind}", routes.beacon_handler(kind))
    emulator.add_control_route("GET", "beacons", routes.beacons)
    emulator.add_control_route("GET", "dedup", routes.dedup)
    emulator.add_control_route("GET", "stats", routes.stats)
    emulator.on_reset(tracker.reset)
    return emulator


def normalise_name(name: str) -> tuple[str, str]:
    """Return (display name, dedup key) of an event or property name: `,` and `:` become spaces, case ignored."""
    display = name.translate(_NAME_SEPARATORS)
    return display, display.casefold()


def effective_time(params: dict[str, str], received_unix: int) -> int:
    """``_t`` when ``_d=1`` and ``_t`` is an integer, else the receive time."""
    timestamp = params.get("_t")
    if params.get("_d") == "1" and timestamp is not None and _INTEGER.fullmatch(timestamp):
        return int(timestamp)
    return received_unix


def _unquote_form(text: str) -> str:
    # Most names and many values need no decoding: skip unquote's work for them.
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text) if "%" in text else text


def decode_pairs(raw: str) -> list[tuple[str, str]]:
    """Decode a form-encoded string like ``urllib.parse.parse_qsl(raw, keep_blank_values=True)``, faster."""
    pairs = []
    for form_field in raw.split("&"):
        if form_field:
            name, _, value = form_field.partition("=")
            pairs.append((_unquote_form(name), _unquote_form(value)))
    return pairs


def decode_params(raw: str) -> tuple[dict[str, str], list[str]]:
    """Decode a form-encoded parameter string: (params with the last value of each key, repeated keys)."""
    pairs = decode_pairs(raw)
    params = dict(pairs)
    if len(params) == len(pairs):
        return params, []
    counts = Counter(key for key, _ in pairs)
    return params, sorted(key for key, count in counts.items() if count > 1)


@dataclass
class DedupView:
    """What Kissmetrics would keep after its duplicate rules."""

    # event key -> (display event name, display property names in key order)
    events: dict[EventKey, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # (person, property key, time) -> (display name, value)
    properties: dict[tuple[str, str, int], tuple[str, str]] = field(default_factory=dict)
    aliases: set[tuple[str, str]] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """The sorted, JSON-ready view."""
        events = []
        for (person, _, time, props), (name, prop_names) in sorted(self.events.items(), key=lambda kv: kv[0]):
            event_properties = {display: value for display, (_, value) in zip(prop_names, props, strict=True)}
            events.append({"person": person, "event": name, "time": time, "properties": event_properties})
        properties = [
            {"person": person, "name": name, "time": time, "value": value}
            for (person, _, time), (name, value) in sorted(self.properties.items(), key=lambda kv: kv[0])
        ]
        return {"events": events, "properties": properties, "aliases": [list(pair) for pair in sorted(self.aliases)]}


class BeaconTracker:
    """Keeps every beacon (compactly) and the deduplicated view."""

    def __init__(self, api_key: str, keep_raw: bool = True) -> None:
        self.api_key = api_key
        self.keep_raw = keep_raw
        self._interned: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every beacon and counter."""
        self._raw_params: list[str] = []
        self._kinds = bytearray()
        self._posted = bytearray()
        self._received = array("d")
        self.raw_counts: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.values_truncated = 0
        self.property_names_dropped = 0
        self.beacons_with_repeated_keys = 0
        self.too_long = 0
        self.dedup = DedupView()
        self._interned.clear()

    # --- recording ----------------------------------------------------------
    def record(self, kind: str, method: str, raw_params: str, received_unix: float) -> None:
        """Keep one beacon and apply it to the dedup view."""
        self.raw_counts[kind] += 1
        self.raw_counts[method] += 1
        if self.keep_raw:
            self._raw_params.append(raw_params)
            self._kinds.append(ord(kind))
            self._posted.append(method == "POST")
            self._received.append(received_unix)
        params, repeated = decode_params(raw_params)
        if repeated:
            self.beacons_with_repeated_keys += 1
        reason = self._ignore_reason(kind, params)
        if reason:
            self.ignored[reason] += 1
        elif kind == "a":
            self._apply_alias(params["_p"], params["_n"])
        else:
            self._apply_event_or_set(kind, params, effective_time(params, int(received_unix)))

    def _apply_alias(self, person: str, identity: str) -> None:
        self.dedup.aliases.add((person, identity) if person <= identity else (identity, person))

    def _apply_event_or_set(self, kind: str, params: dict[str, str], time: int) -> None:
        person = params["_p"]
        properties = self._properties(params)
        for prop_key, (display, value) in properties.items():
            self.dedup.properties[(person, prop_key, time)] = (display, value)
        if kind != "e":
            return
        display_name, name_key = normalise_name(params["_n"])
        ordered = sorted(properties.items())
        event_key = (person, self._intern(name_key), time, tuple((key, value) for key, (_, value) in ordered))
        if event_key not in self.dedup.events:
            self.dedup.events[event_key] = (self._intern(display_name), tuple(d for _, (d, _) in ordered))

    def _ignore_reason(self, kind: str, params: dict[str, str]) -> str | None:
        key = params.get("_k")
        if not key:
            return "missing_key"
        if key != self.api_key:
            return "wrong_key"
        person = params.get("_p")
        if not person:
            return "missing_person"
        if len(person) > MAX_IDENTITY_CHARS:
            return "person_too_long"
        if kind in ("e", "a"):
            name = params.get("_n")
            if not name:
                return "missing_name"
            if len(name) > MAX_NAME_CHARS:
                return "name_too_long"
        return None

    def _properties(self, params: dict[str, str]) -> dict[str, tuple[str, str]]:
        """Property key -> (display name, value) for every non-underscore parameter (last one wins)."""
        properties: dict[str, tuple[str, str]] = {}
        for name, value in params.items():
            if name.startswith("_"):
                continue
            if len(name) > MAX_NAME_CHARS:
                self.property_names_dropped += 1
                continue
            if len(value) > MAX_VALUE_CHARS:
                self.values_truncated += 1
                value = value[:MAX_VALUE_CHARS]
            display, prop_key = normalise_name(name)
            properties[self._intern(prop_key)] = (self._intern(display), value)
        return properties

    def _intern(self, text: str) -> str:
        # Names repeat across millions of beacons: share one string object per distinct name.
        return self._interned.setdefault(text, text)

    # --- reading --------------------------------------------------------------
    @property
    def total(self) -> int:
        """Number of beacons received since the last reset."""
        return sum(self.raw_counts[kind] for kind in BEACON_KINDS)

    def beacons(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Decoded raw beacons ``[offset, offset + limit)``, oldest first."""
        page = []
        for index in range(offset, min(offset + limit, len(self._raw_params))):
            params, repeated = decode_params(self._raw_params[index])
            received = self._received[index]
            page.append(
                {
                    "index": index,
                    "kind": chr(self._kinds[index]),
                    "method": "POST" if self._posted[index] else "GET",
                    "params": params,
                    "repeated_keys": repeated,
                    "received_at": datetime.fromtimestamp(received, timezone.utc).isoformat(),
                    "received_unix": received,
                }
            )
        return page

    def stats(self) -> dict[str, Any]:
        """Counters of both views."""
        return {
            "raw_log": "full" if self.keep_raw else "count",
            "raw": {
                "total": self.total,
                **{kind: self.raw_counts[kind] for kind in BEACON_KINDS},
                "GET": self.raw_counts["GET"],
                "POST": self.raw_counts["POST"],
            },
            "dedup": {
                "events": len(self.dedup.events),
                "properties": len(self.dedup.properties),
                "aliases": len(self.dedup.aliases),
            },
            "ignored": dict(sorted(self.ignored.items())),
            "ignored_total": sum(self.ignored.values()),
            "values_truncated": self.values_truncated,
            "property_names_dropped": self.property_names_dropped,
            "beacons_with_repeated_keys": self.beacons_with_repeated_keys,
            "refused_too_long": self.too_long,
        }


class KissmetricsRoutes:
    """The HTTP side: beacon handlers and the control routes that read the tracker."""

    def __init__(self, tracker: BeaconTracker, clock: Clock) -> None:
        self.tracker = tracker
        self.clock = clock

    def beacon_handler(self, kind: str) -> Any:
        """The handler of ``/<kind>`` for GET and POST."""

        async def handle(request: web.Request) -> web.Response:
            target_bytes = len(request.raw_path.encode("utf-8", errors="replace"))
            if target_bytes > MAX_REQUEST_TARGET_BYTES:
                self.tracker.too_long += 1
                return web.Response(
                    status=400, text=f"request target of {target_bytes} bytes is over {MAX_REQUEST_TARGET_BYTES}"
                )
            raw_params = request.rel_url.raw_query_string
            if request.method == "POST" and request.body_exists:
                body = (await request.read()).decode("utf-8", errors="replace")
                if body:
                    raw_params = f"{raw_params}&{body}" if raw_params else body
            self.tracker.record(kind, request.method, raw_params, self.clock.now().timestamp())
            return web.Response(body=TRANSPARENT_GIF, headers=GIF_HEADERS)

        return handle

    async def beacons(self, request: web.Request) -> web.Response:
        """``GET /_emulator/beacons?offset=N&limit=M``."""
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", str(DEFAULT_PAGE_LIMIT)))
        except ValueError:
            return json_response({"error": "offset and limit must be integers"}, 400)
        if offset < 0 or limit < 0:
            return json_response({"error": "offset and limit must be >= 0"}, 400)
        return json_response(
            {
                "total": self.tracker.total,
                "raw_log": "full" if self.tracker.keep_raw else "count",
                "beacons": self.tracker.beacons(offset, limit),
            }
        )

    async def dedup(self, _: web.Request) -> web.Response:
        """``GET /_emulator/dedup``."""
        return json_response(self.tracker.dedup.as_json())

    async def stats(self, _: web.Request) -> web.Response:
        """``GET /_emulator/stats``."""
        return json_response(self.tracker.stats())
