"""Kaon Insights API emulator: ``GET /api/{name}?apikey=&client=&...`` per the project's contract.

Endpoints: ``weeks``, ``engagement``, ``uid``, ``countries``, ``languages``, ``hits`` (per week,
a path's history, one path-week, ``detail=country``) and ``extid`` (inclusive ``start``, ``limit``).
Errors: a missing or wrong ``apikey`` -> 403; an unknown ``client``, endpoint name or a bad
parameter (non-integer or out-of-range week, bad ``limit`` or ``detail``, unknown path) -> 404;
a method other than GET -> 405; any path outside ``/api/{name}`` -> 404; bodies are
``{"error": str}``. Data comes from :class:`emulators.kaon_data.KaonDataset` seen at the
emulator clock's now.

Bad answers come from the core fault layer (:class:`emulators.answer_corruption.AnswerCorruptions`): a Kaon
answer is targeted by ``endpoint`` and ``week`` (absent for ``weeks``, ``extid`` and a path's
history), its main key is the endpoint's array (:data:`MAIN_KEYS`), and Kaon adds the kind
``bad_uids_length``. ``POST /_emulator/corruptions`` takes any rule; the older control route
``POST /_emulator/kaon/breakage`` ``{"endpoint", "week"?, "kind"}`` (or ``{"clear": true}``) is
the same rule written shorter: ``{"kind", "target": {"endpoint", "week"?}}``. Kinds include
``html_200``, ``truncated_json``, ``malformed_json``, ``missing_key``, ``wrong_types`` and
``bad_uids_length``. ``/_emulator/reset`` clears them.

Readings the vendor document leaves open, switchable at run time (``/_emulator/reset`` keeps them):

- ``GET /_emulator/kaon/readings`` -> the knobs; ``POST /_emulator/kaon/readings`` with any of them:
  ``extid_cap`` (int or null, ``--extid-cap``): the most records an ``extid`` answer holds whatever
  ``limit`` asks (a silent server cap; null = ``limit`` is honoured);
  ``extid_start`` (``inclusive`` | ``exclusive``, ``--extid-start``): records ``>= start`` or ``> start``;
  ``extid_param`` (``id`` | ``extid`` | ``external_id``, ``--extid-param``): the query parameter naming the
  external ID (the others answer 404 "... is required");
  ``weeks_list`` (``with_filling`` | ``complete_only``, ``--weeks-list``): ``weeks`` lists the filling
  (current) week too, or only complete weeks (the current week still answers ``week=N`` and no-week calls);
  ``path_form`` (``as_listed`` | ``decoded``, ``--path-form``): ``hits?path=P`` knows P in the URL-encoded
  form the hits table shows (``tours/Main%20Lobby`` once the query is decoded) or decoded (``tours/Main Lobby``).
- Hits exist from ``--launch-week`` (default first listed week - 20), before the first listed week:
  ``hits?week=N`` answers them, and 404 below the launch week.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from emulators.answer_corruption import AnswerTarget, Corruption
from emulators.clock import Clock
from emulators.core import Emulator
from emulators.faults import Faults
from emulators.kaon_data import KaonDataset, dataset_from_options
from emulators.knobs import RuntimeKnobs
from emulators.responses import json_response

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
#: The array key of each endpoint's body (what ``missing_key`` drops).
MAIN_KEYS = {
    "weeks": "weeks",
    "engagement": "engagements",
    "uid": "uids",
    "countries": "countries",
    "languages": "languages",
    "hits": "hits",
    "extid": "records",
}


EXTID_STARTS = ("inclusive", "exclusive")
EXTID_PARAMS = ("id", "extid", "external_id")
WEEKS_LISTS = ("with_filling", "complete_only")
PATH_FORMS = ("as_listed", "decoded")


@dataclass
class KaonReadings(RuntimeKnobs):
    """The readings of the vendor document this emulator serves (see the module docstring)."""

    KNOBS = "reading"

    extid_cap: int | None = None
    extid_start: str = "inclusive"
    extid_param: str = "id"
    weeks_list: str = "with_filling"
    path_form: str = "as_listed"

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or value."""
        cap = self.extid_cap
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_LIMIT):
            raise ValueError(f"extid_cap must be null or an integer from 1 to {MAX_LIMIT}, got {cap!r}")
        for name, allowed in (
            ("extid_start", EXTID_STARTS),
            ("extid_param", EXTID_PARAMS),
            ("weeks_list", WEEKS_LISTS),
            ("path_form", PATH_FORMS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")


class BadParameterError(Exception):
    """A request parameter the API answers with 404."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Kaon emulator's own options."""
    group = parser.add_argument_group("kaon")
    group.add_argument("--api-key", default="kaon-demo-key", help="the only accepted apikey")
    group.add_argument("--client", default="demo-client", help="the only known client ID")
    group.add_argument("--first-week", type=int, default=417, help="first week with full data")
    group.add_argument("--weeks-before-now", type=int, default=None, help="first week = current week - N")
    group.add_argument("--launch-week", type=int, default=None, help="first week of hit data (default first-20)")
    group.add_argument("--devices-per-week", type=int, default=500, help="devices in a full week")
    group.add_argument("--paths", type=int, default=30, help="number of paths (hard cases included)")
    group.add_argument("--external-ids", type=int, default=5, help="external IDs with a clickstream")
    group.add_argument("--clicks-per-id", type=int, default=2000, help="clickstream length per external ID")
    group.add_argument("--same-second-run", type=int, default=30, help="longest run of clicks in one second")
    group.add_argument("--countries-form", choices=("list", "object"), default="list",
                       help="answer countries/languages as a list of objects or one object")  # fmt: skip
    readings = parser.add_argument_group("kaon readings (also /_emulator/kaon/readings)")
    readings.add_argument("--extid-cap", type=int, default=None, help="most records per extid answer, any limit")
    readings.add_argument("--extid-start", choices=EXTID_STARTS, default="inclusive", help="start is >= or >")
    readings.add_argument("--extid-param", choices=EXTID_PARAMS, default="id", help="name of the external-ID parameter")
    readings.add_argument(
        "--weeks-list", choices=WEEKS_LISTS, default="with_filling", help="weeks lists the filling week?"
    )
    readings.add_argument("--path-form", choices=PATH_FORMS, default="as_listed", help="form of P in hits?path=P")


class KaonService:
    """Routes and state of one Kaon emulator."""

    def __init__(self, options: argparse.Namespace, emulator: Emulator) -> None:
        self.options = options
        self.emulator = emulator
        self.base = dataset_from_options(options, emulator.clock.now())
        self.readings = KaonReadings(
            getattr(options, "extid_cap", None),
            getattr(options, "extid_start", "inclusive"),
            getattr(options, "extid_param", "id"),
            getattr(options, "weeks_list", "with_filling"),
            getattr(options, "path_form", "as_listed"),
        )
        self.readings.validate()
        self.handlers: dict[str, Callable[[KaonDataset, Any], dict[str, Any]]] = {
            "weeks": self.weeks,
            "engagement": self.engagement,
            "uid": self.uid,
            "countries": self.countries,
            "languages": self.languages,
            "hits": self.hits,
            "extid": self.extid,
        }

    # --- request handling -------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, dispatch and (maybe) break one API call."""
        if request.method != "GET":
            message = f"method {request.method} not allowed: the API is GET only"
            return json_response({"error": message}, 405, headers={"Allow": "GET"})
        query = request.query
        if query.get("apikey") != self.options.api_key:
            return json_response({"error": "invalid apikey"}, 403)
        if query.get("client") != self.options.client:
            return json_response({"error": f"unknown client {query.get('client')!r}"}, 404)
        name = request.match_info["name"]
        handler = self.handlers.get(name)
        if handler is None:
            return json_response({"error": f"unknown API {name!r}"}, 404)
        data = self.base.at(self.emulator.clock.now())
        try:
            payload = handler(data, query)
        except BadParameterError as exc:
            return json_response({"error": str(exc)}, 404)
        return self.emulator.answer(_encode(name, payload), answer_target(name, payload))

    # --- parameters ---------------------------------------------------------------
    @staticmethod
    def _week(data: KaonDataset, query: Any, first: int) -> int:
        raw = query.get("week")
        if raw is None:
            return data.current_week
        try:
            week = int(raw)
        except ValueError:
            raise BadParameterError(f"week must be an integer, got {raw!r}") from None
        if week < first or week > data.current_week:
            raise BadParameterError(f"no data for week {week} (weeks {first}..{data.current_week})")
        return week

    def _header(self, data: KaonDataset, week: int) -> dict[str, Any]:
        return {"client": self.options.client, "week": week, "weekname": data.weekname(week)}

    def _code_counts(self, counts: dict[str, int], code_name: str) -> Any:
        if self.options.countries_form == "object":
            return dict(counts)
        return [{code_name: code, "count": count} for code, count in counts.items()]

    # --- endpoints ------------------------------------------------------------------
    def weeks(self, data: KaonDataset, _: Any) -> dict[str, Any]:
        """Weeks with full data (the filling week too, unless ``weeks_list`` is ``complete_only``)."""
        weeks = data.full_weeks
        if self.readings.weeks_list == "complete_only":
            weeks = [week for week in weeks if week != data.current_week]
        return {
            "client": self.options.client,
            "weeks": [{"week": week, "weekname": data.weekname(week)} for week in weeks],
        }

    def engagement(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """The engagement histogram of a week."""
        week = self._week(data, query, data.first_week)
        return {**self._header(data, week), "engagements": data.engagement(week)}

    def uid(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """The devices of a week as one string."""
        week = self._week(data, query, data.first_week)
        return {**self._header(data, week), "uids": data.uids_string(week)}

    def countries(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """Engagements per country."""
        week = self._week(data, query, data.first_week)
        return {**self._header(data, week), "countries": self._code_counts(data.countries(week), "country")}

    def languages(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """Engagements per language."""
        week = self._week(data, query, data.first_week)
        return {**self._header(data, week), "languages": self._code_counts(data.languages(week), "language")}

    def hits(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """Hits of a week, or of one path (all weeks or one), optionally per country."""
        detail = query.get("detail")
        path = query.get("path")
        if detail is not None and (path is None or detail != "country"):
            raise BadParameterError("detail=country is the only detail and needs a path")
        if path is None:
            week = self._week(data, query, data.launch_week)
            return {**self._header(data, week), "hits": data.hits_for_week(week)}
        # aiohttp decoded the query once: P arrives as the API's (URL-encoded) path form, or decoded
        known = data.path_names if self.readings.path_form == "as_listed" else [unquote(p) for p in data.path_names]
        if path not in known:
            raise BadParameterError(f"unknown path {path!r}")
        path = data.path_names[known.index(path)]
        history = data.path_history(path)
        if "week" in query:
            week = self._week(data, query, data.launch_week)
            history = [hit for hit in history if hit["week"] == week]
        if detail == "country":
            history = [{**hit, "countries": data.path_countries(path, hit["week"])} for hit in history]
        return {"client": self.options.client, "path": path, "hits": history}

    def extid(self, data: KaonDataset, query: Any) -> dict[str, Any]:
        """A page of an external ID's clickstream, from ``start`` (inclusive)."""
        external_id = query.get(self.readings.extid_param)
        if not external_id:
            raise BadParameterError(f"{self.readings.extid_param} is required")
        try:
            start = int(query["start"]) if "start" in query else None
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise BadParameterError("start and limit must be integers") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameterError(f"limit must be between 1 and {MAX_LIMIT}")
        if start is not None and self.readings.extid_start == "exclusive":
            start += 1
        if self.readings.extid_cap is not None:
            limit = min(limit, self.readings.extid_cap)
        records = data.clickstream_page(external_id, start, limit)
        return {"client": self.options.client, "id": external_id, "records": records}

    # --- bad answers ----------------------------------------------------------------------
    def check_target(self, target: dict[str, Any]) -> None:
        """A corruption target must name a Kaon endpoint."""
        if "endpoint" in target and target["endpoint"] not in self.handlers:
            raise ValueError(f"endpoint must be one of {sorted(self.handlers)}, got {target['endpoint']!r}")

    async def set_breakage(self, request: web.Request) -> web.Response:
        """``POST /_emulator/kaon/breakage``: a corruption rule for one endpoint (and week), or ``{"clear": true}``."""
        corruptions = self.emulator.corruptions
        body = await request.json()
        if isinstance(body, dict) and body.get("clear"):
            corruptions.clear()
            return json_response({"breakages": []})
        try:
            if not isinstance(body, dict) or body.get("endpoint") not in self.handlers:
                raise ValueError("endpoint is required")
            target = {"endpoint": body["endpoint"]}
            if body.get("week") is not None:
                target["week"] = body["week"]
            options = {name: value for name, value in body.items() if name not in ("endpoint", "week")}
            corruptions.add(corruptions.parse_rule({**options, "target": target}))
        except ValueError as exc:
            message = f"endpoint in {sorted(self.handlers)}, kind in {corruptions.kinds}: {exc}"
            return json_response({"error": message}, 400)
        return json_response({"breakages": [_breakage(rule) for rule in corruptions.rules]})


def answer_target(name: str, payload: dict[str, Any]) -> AnswerTarget:
    """How corruption rules pick a Kaon answer: its endpoint and (when it has one) its week."""
    fields: dict[str, Any] = {"endpoint": name}
    if isinstance(payload.get("week"), int):
        fields["week"] = payload["week"]
    return AnswerTarget(fields, main_key=MAIN_KEYS[name])


def _encode(name: str, payload: dict[str, Any]) -> web.Response:
    if name == "uid":  # millions of devices: skip json.dumps of a huge string
        head = json.dumps({k: v for k, v in payload.items() if k != "uids"})[:-1]
        return web.Response(body=f'{head},"uids":"{payload["uids"]}"}}'.encode(), content_type="application/json")
    return json_response(payload)


def _breakage(rule: Corruption) -> list[Any]:
    return [rule.target.get("endpoint"), rule.target.get("week"), rule.kind]


def bad_uids_length(body: Any, _: str | None, __: Corruption) -> Any:
    """Kaon's own kind: a ``uids`` string whose length is not a multiple of 18."""
    if isinstance(body, dict):
        body["uids"] = str(body.get("uids", "")) + "0x12ab"
    return body


async def not_found(request: web.Request) -> web.Response:
    """A JSON 404 for any path the API does not have."""
    return json_response({"error": f"no such path {request.path!r}: the API is /api/{{name}}"}, 404)


def create_emulator(options: argparse.Namespace, clock: Clock, faults: Faults) -> Emulator:
    """The Kaon Insights emulator for parsed command-line options."""
    emulator = Emulator("kaon", clock=clock, faults=faults)
    service = KaonService(options, emulator)
    emulator.add_route("*", "/api/{name}", service.handle)
    emulator.add_control_route("POST", "kaon/breakage", service.set_breakage)
    emulator.add_control_route("GET", "kaon/readings", service.readings.describe_handler)
    emulator.add_control_route("POST", "kaon/readings", service.readings.update_handler)
    emulator.add_route("*", "/{tail:.*}", not_found)  # last: every other path answers JSON too
    emulator.corruptions.declare_targets({"endpoint": str, "week": int}, service.check_target)
    emulator.corruptions.add_kind(
        "bad_uids_length", bad_uids_length, "a uids string whose length is not a multiple of 18"
    )
    return emulator
