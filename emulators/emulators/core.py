"""What every emulator shares: an aiohttp app with fault injection, a clock, a request log
and control routes under ``/_emulator/`` (a path no real client uses).

Control routes (never subject to faults):

- ``GET  /_emulator/health``           -> ``{"service": name, "ok": true}``
- ``GET  /_emulator/faults``           -> the current fault knobs
- ``POST /_emulator/faults``           -> merge a JSON object of knobs, returns them
- ``GET  /_emulator/clock``            -> ``{"now": iso8601}``
- ``POST /_emulator/clock``            -> ``{"now": iso8601}`` or ``{"advance_seconds": n}``
- ``GET  /_emulator/requests``         -> the request log (method, path, query, json body, status)
- ``POST /_emulator/reset``            -> clears the request log, the corruption rules and service state
- ``GET  /_emulator/corruptions``      -> the corruption kinds, target fields, rules and the answers corrupted so far
- ``POST /_emulator/corruptions``      -> add a rule ``{"kind", "target": {...}, "key"?, "value"?, "index"?, "times"?}``
                                          or ``{"clear": true}``; returns the same as GET

Answer corruption (the second half of the fault layer): a service declares the fields that pick one of
its answers (:meth:`AnswerCorruptions.declare_targets`) and passes each successful answer through
:meth:`Emulator.answer` with those fields (an :class:`AnswerTarget`); a rule whose target matches
rewrites the body, keeping the status. Kinds every service has: :data:`CORE_KINDS`; a service adds its
own with :meth:`AnswerCorruptions.add_kind`.

Services add their own routes with :meth:`Emulator.add_route` and their own control routes
with :meth:`Emulator.add_control_route`.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTROL_PREFIX = "/_emulator"


@dataclass
class Faults:
    """Fault-injection knobs, applied to service routes only.

    Rates are probabilities in [0, 1] drawn per request from a seeded RNG.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    rate_limit_rate: float = 0.0
    retry_after_seconds: float = 1.0
    drop_rate: float = 0.0
    slow_body_ms: float = 0.0
    seed: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Merge known knobs from ``changes``; unknown names raise ``ValueError``."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault knob {name!r}; known: {sorted(known)}")
            setattr(self, name, value)


class Clock:
    """The emulator's notion of now: frozen at a given instant, or following real time."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen_at = frozen_at
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """Return the current emulated UTC time."""
        if self._frozen_at is not None:
            return self._frozen_at
        return datetime.now(timezone.utc) + self._offset

    def set(self, when: datetime) -> None:
        """Freeze the clock at ``when``."""
        self._frozen_at = when.astimezone(timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (frozen or running)."""
        if self._frozen_at is not None:
            self._frozen_at += timedelta(seconds=seconds)
        else:
            self._offset += timedelta(seconds=seconds)


def parse_iso8601(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive value is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class RuntimeKnobs:
    """A dataclass of knobs a control route reads (GET) and changes (POST); subclasses define ``validate``.

    ``KNOBS`` names them in messages ("reading", "paging"). A POST with unknown knobs, a value of the wrong type or
    range, or no JSON object gets a 400 naming the problem and changes nothing."""

    KNOBS = "knob"

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or value."""

    async def describe_handler(self, _: web.Request) -> web.Response:
        """``GET``: the knobs."""
        return json_response(asdict(self))  # type: ignore[call-overload]

    async def update_handler(self, request: web.Request) -> web.Response:
        """``POST`` with any of the knobs."""
        current = asdict(self)  # type: ignore[call-overload]
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError(f"send a JSON object of {self.KNOBS} knobs")
            unknown = set(changes) - set(current)
            if unknown:
                raise ValueError(f"unknown {self.KNOBS} knob(s) {sorted(unknown)}; known: {', '.join(sorted(current))}")
            candidate = type(self)(**{**current, **changes})
            candidate.validate()
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        for name, value in asdict(candidate).items():  # type: ignore[call-overload]
            setattr(self, name, value)
        return json_response(asdict(self))  # type: ignore[call-overload]


class DropConnectionError(Exception):
    """Raised by a handler (or the fault layer) to close the connection with no response."""


# --- answer corruption ----------------------------------------------------------------------------
HTML_ERROR_PAGE = "<html><head><title>Service Unavailable</title></head><body>Try again later</body></html>"
#: ``edit(body, key, rule) -> new body``: a corruption of the parsed JSON body; ``key`` is the body key it
#: acts on (the rule's ``key``, else the answer's main key).
JsonEdit = Callable[[Any, "str | None", "Corruption"], Any]
#: Kinds that need a ``value`` in their rule.
KINDS_WITH_VALUE = frozenset({"set_key", "replace_body", "insert_item"})


@dataclass(frozen=True)
class AnswerTarget:
    """What a service says about one successful answer so that corruption rules can pick it.

    ``fields`` are the service's declared target fields for this answer (a list value matches a rule
    naming any one of its items); ``main_key`` is the body key ``missing_key``, ``wrong_types``,
    ``set_key`` and ``insert_item`` act on by default; when the rule's target names ``key_field``
    (Kahuna: ``category``), that value is the main key instead.
    """

    fields: Mapping[str, Any]
    main_key: str | None = None
    key_field: str | None = None


@dataclass
class Corruption:
    """One rule: break every answer whose target matches (at most ``times`` answers when set)."""

    kind: str
    target: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    value: Any = None
    index: int = 0
    times: int | None = None

    def matches(self, target: AnswerTarget) -> bool:
        """Whether every field this rule names has the wanted value in ``target``."""
        return all(_field_matches(target.fields.get(name), wanted) for name, wanted in self.target.items())

    def key_for(self, target: AnswerTarget) -> str | None:
        """The body key this rule acts on for ``target``."""
        if self.key is not None:
            return self.key
        if target.key_field and target.key_field in self.target:
            return str(self.target[target.key_field])
        return target.main_key


def _field_matches(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, list | tuple):
        return wanted in actual
    return bool(actual == wanted)


class CorruptedResponse(web.Response):
    """A corrupted answer: the request log records its ``kind``."""

    def __init__(self, *, kind: str, body: bytes, status: int, content_type: str) -> None:
        super().__init__(body=body, status=status, content_type=content_type)
        self.kind = kind


def _truncated(body: bytes) -> bytes:
    return body[: max(len(body) // 2, 1)]


def _malformed(body: bytes) -> bytes:
    return body.replace(b'"', b"'", 4)  # single-quoted keys: JSON parsers fail at the first one


def _missing_key(body: Any, key: str | None, _: Corruption) -> Any:
    if isinstance(body, dict):
        body.pop(key, None)
    return body


def _wrong_types(body: Any, key: str | None, _: Corruption) -> Any:
    if isinstance(body, dict) and key in body:
        body[key] = _numbers_as_strings(body[key])
    return body


def _numbers_as_strings(value: Any) -> Any:
    """Every number inside ``value`` as a string that is not one (``12`` -> ``"12a"``)."""
    if isinstance(value, list):
        return [_numbers_as_strings(item) for item in value]
    if isinstance(value, dict):
        return {name: _numbers_as_strings(item) for name, item in value.items()}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}a"
    return value


def _set_key(body: Any, key: str | None, rule: Corruption) -> Any:
    if isinstance(body, dict) and key is not None:
        body[key] = rule.value
    return body


def _replace_body(_: Any, __: str | None, rule: Corruption) -> Any:
    return rule.value


def _insert_item(body: Any, key: str | None, rule: Corruption) -> Any:
    if isinstance(body, dict) and isinstance(body.get(key), list):
        body[key].insert(rule.index, rule.value)
    return body


#: Kinds every service has, with what they do (the text kinds work on any body, the others on a JSON object).
CORE_KINDS = {
    "html_200": "an HTML error page with status 200 and Content-Type text/html",
    "truncated_json": "the first half of the body",
    "malformed_json": "the first four double quotes become single quotes",
    "missing_key": "the key is removed",
    "wrong_types": 'every number inside the key\'s value becomes a string ("12a")',
    "set_key": "the key is set to value (any JSON value, null included)",
    "replace_body": 'the whole body becomes value (e.g. [] or {"more_records": false})',
    "insert_item": "value is inserted at position index of the key's array",
}
_TEXT_KINDS: dict[str, Callable[[bytes], bytes]] = {"truncated_json": _truncated, "malformed_json": _malformed}
_CORE_EDITS: dict[str, JsonEdit] = {
    "missing_key": _missing_key,
    "wrong_types": _wrong_types,
    "set_key": _set_key,
    "replace_body": _replace_body,
    "insert_item": _insert_item,
}


class AnswerCorruptions:
    """Corruption rules, the kinds they may use, and a log of every answer they broke."""

    def __init__(self) -> None:
        self.rules: list[Corruption] = []
        self.applied: list[dict[str, Any]] = []
        self.descriptions = dict(CORE_KINDS)
        self._edits: dict[str, JsonEdit] = dict(_CORE_EDITS)
        self._target_fields: dict[str, type | tuple[type, ...]] = {}
        self._check_target: Callable[[dict[str, Any]], None] | None = None
        self._declared = False

    # --- what a service declares ------------------------------------------------------------
    def declare_targets(
        self, fields: Mapping[str, type | tuple[type, ...]], check: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """The fields a rule's target may name, with their JSON types; ``check`` rejects bad values (ValueError)."""
        self._target_fields = dict(fields)
        self._check_target = check
        self._declared = True

    def add_kind(self, name: str, edit: JsonEdit, description: str) -> None:
        """A service's own kind: ``edit`` changes the parsed JSON body."""
        self._edits[name] = edit
        self.descriptions[name] = description

    @property
    def kinds(self) -> list[str]:
        """Every kind a rule may use."""
        return sorted(self.descriptions)

    # --- rules ----------------------------------------------------------------------------------
    def parse_rule(self, spec: Any) -> Corruption:
        """A rule from its JSON form; ``ValueError`` naming the first bad part."""
        if not self._declared:
            raise ValueError("this emulator declares no answers that can be corrupted")
        if not isinstance(spec, dict):
            raise ValueError('send a JSON object: {"kind", "target", "key"?, "value"?, "index"?, "times"?}')
        unknown = set(spec) - {"kind", "target", "key", "value", "index", "times"}
        if unknown:
            raise ValueError(f"unknown rule field(s) {sorted(unknown)}; known: kind, target, key, value, index, times")
        kind = spec.get("kind")
        if kind not in self.descriptions:
            raise ValueError(f"kind must be one of {self.kinds}, got {json.dumps(kind)}")
        if kind in KINDS_WITH_VALUE and "value" not in spec:
            raise ValueError(f"kind {kind} needs a value")
        target = spec.get("target", {})
        self._validate_target(target)
        key, index, times = spec.get("key"), spec.get("index", 0), spec.get("times")
        if key is not None and not isinstance(key, str):
            raise ValueError(f"key must be a string, got {json.dumps(key)}")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"index must be an integer, got {json.dumps(index)}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be an integer >= 1 or null, got {json.dumps(times)}")
        return Corruption(kind, dict(target), key, spec.get("value"), index, times)

    def _validate_target(self, target: Any) -> None:
        if not isinstance(target, dict):
            raise ValueError(f"target must be an object of {sorted(self._target_fields)}, got {json.dumps(target)}")
        for name, value in target.items():
            wanted = self._target_fields.get(name)
            if wanted is None:
                raise ValueError(f"unknown target field {name!r}; known: {sorted(self._target_fields)}")
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise ValueError(f"target field {name} must be {_type_names(wanted)}, got {json.dumps(value)}")
        if self._check_target is not None:
            self._check_target(target)

    def add(self, rule: Corruption) -> None:
        """Add ``rule``; it replaces a rule with the same target (one answer breaks one way)."""
        self.rules = [existing for existing in self.rules if existing.target != rule.target]
        self.rules.append(rule)

    def clear(self) -> None:
        """Forget every rule and the log of corrupted answers."""
        self.rules.clear()
        self.applied.clear()

    def rule_for(self, target: AnswerTarget) -> Corruption | None:
        """The matching rule naming the most fields (the latest of equals), or None."""
        best: Corruption | None = None
        for rule in self.rules:
            if rule.matches(target) and (best is None or len(rule.target) >= len(best.target)):
                best = rule
        return best

    def describe(self) -> dict[str, Any]:
        """Kinds, target fields, rules and the corrupted answers so far."""
        return {
            "kinds": self.descriptions,
            "target_fields": sorted(self._target_fields),
            "rules": [asdict(rule) for rule in self.rules],
            "applied": self.applied,
        }

    # --- applying -------------------------------------------------------------------------------
    def corrupt(self, response: web.Response, target: AnswerTarget) -> web.Response:
        """``response`` broken by the rule matching ``target``; unchanged without one or unless it is a 200."""
        if not self.rules or response.status != 200:
            return response
        rule = self.rule_for(target)
        if rule is None:
            return response
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self.rules.remove(rule)
        self.applied.append({"kind": rule.kind, "target": _jsonable(target.fields)})
        body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
        if rule.kind == "html_200":
            return CorruptedResponse(
                kind=rule.kind, body=HTML_ERROR_PAGE.encode(), status=200, content_type="text/html"
            )
        if rule.kind in _TEXT_KINDS:
            broken = _TEXT_KINDS[rule.kind](body)
        else:
            edited = self._edits[rule.kind](json.loads(body), rule.key_for(target), rule)
            broken = json.dumps(edited, separators=(",", ":")).encode()
        return CorruptedResponse(kind=rule.kind, body=broken, status=200, content_type="application/json")

    # --- control routes -------------------------------------------------------------------------
    async def describe_handler(self, _: web.Request) -> web.Response:
        """``GET /_emulator/corruptions``."""
        return json_response(self.describe())

    async def update_handler(self, request: web.Request) -> web.Response:
        """``POST /_emulator/corruptions``: add a rule, or ``{"clear": true}``."""
        try:
            spec = await request.json()
            if isinstance(spec, dict) and spec.get("clear"):
                self.clear()
            else:
                self.add(self.parse_rule(spec))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.describe())


def _type_names(wanted: type | tuple[type, ...]) -> str:
    types = wanted if isinstance(wanted, tuple) else (wanted,)
    names = {int: "an integer", str: "a string", float: "a number"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in fields.items()}


class Emulator:
    """One emulated service: its routes, faults, clock and request log."""

    def __init__(
        self, service: str, *, clock: Clock | None = None, faults: Faults | None = None, log_requests: bool = True
    ) -> None:
        self.service = service
        self.clock = clock or Clock()
        self.faults = faults or Faults()
        self.log_requests = log_requests
        self.request_log: list[dict[str, Any]] = []
        self._rng = random.Random(self.faults.seed)
        self._reset_hooks: list[Callable[[], None]] = []
        self.corruptions = AnswerCorruptions()
        self.app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        self._add_control_routes()

    # --- extension points -------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Register a service route (faults apply)."""
        self.app.router.add_route(method, path, handler)

    def add_control_route(self, method: str, name: str, handler: Handler) -> None:
        """Register a control route at ``/_emulator/<name>`` (no faults)."""
        self.app.router.add_route(method, f"{CONTROL_PREFIX}/{name}", handler)

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on ``POST /_emulator/reset``."""
        self._reset_hooks.append(hook)

    def answer(self, response: web.Response, target: AnswerTarget) -> web.Response:
        """A service's successful answer, broken when a corruption rule targets it."""
        return self.corruptions.corrupt(response, target)

    # --- fault layer --------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {
                k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type", "user-agent")
            },
            "time": self.clock.now().isoformat(),
        }
        if request.can_read_body:
            raw = await request.read()
            try:
                entry["json"] = json.loads(raw) if raw else None
            except ValueError:
                entry["body"] = raw.decode(errors="replace")
        if self.log_requests:
            self.request_log.append(entry)
        faults = self.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        roll = self._rng.random()
        if roll < faults.drop_rate:
            entry["status"] = "dropped"
            return self._drop(request)
        roll -= faults.drop_rate
        if roll < faults.rate_limit_rate:
            entry["status"] = 429
            return json_response(
                {"error": "rate limited"}, 429, headers={"Retry-After": f"{faults.retry_after_seconds:g}"}
            )
        roll -= faults.rate_limit_rate
        if roll < faults.error_rate:
            status = self._rng.choice(faults.error_statuses or [500])
            entry["status"] = status
            return json_response({"error": f"injected fault {status}"}, status)
        try:
            response = await handler(request)
        except DropConnectionError:
            entry["status"] = "dropped"
            return self._drop(request)
        entry["status"] = response.status
        if isinstance(response, CorruptedResponse):
            entry["corrupted"] = response.kind
        if faults.slow_body_ms > 0 and isinstance(response, web.Response) and response.body is not None:
            return await self._slow(request, response)
        return response

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # aiohttp treats this as a closed connection, no response

    async def _slow(self, request: web.Request, response: web.Response) -> web.StreamResponse:
        body = bytes(response.body)  # type: ignore[arg-type]
        slow = web.StreamResponse(status=response.status, headers=response.headers)
        slow.content_length = len(body)
        await slow.prepare(request)
        half = len(body) // 2
        await slow.write(body[:half])
        await asyncio.sleep(self.faults.slow_body_ms / 1000.0)
        await slow.write(body[half:])
        await slow.write_eof()
        return slow

    # --- control routes -----------------------------------------------------
    def _add_control_routes(self) -> None:
        async def health(_: web.Request) -> web.Response:
            return json_response({"service": self.service, "ok": True})

        async def get_faults(_: web.Request) -> web.Response:
            return json_response(asdict(self.faults))

        async def set_faults(request: web.Request) -> web.Response:
            try:
                self.faults.update(await request.json())
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            self._rng.seed(self.faults.seed)
            return json_response(asdict(self.faults))

        async def get_clock(_: web.Request) -> web.Response:
            return json_response({"now": self.clock.now().isoformat()})

        async def set_clock(request: web.Request) -> web.Response:
            body = await request.json()
            if "now" in body:
                self.clock.set(parse_iso8601(body["now"]))
            if "advance_seconds" in body:
                self.clock.advance(float(body["advance_seconds"]))
            return json_response({"now": self.clock.now().isoformat()})

        async def get_requests(_: web.Request) -> web.Response:
            return json_response(self.request_log)

        async def reset(_: web.Request) -> web.Response:
            self.request_log.clear()
            self.corruptions.clear()
            for hook in self._reset_hooks:
                hook()
            return json_response({"ok": True})

        self.add_control_route("GET", "health", health)
        self.add_control_route("GET", "faults", get_faults)
        self.add_control_route("POST", "faults", set_faults)
        self.add_control_route("GET", "clock", get_clock)
        self.add_control_route("POST", "clock", set_clock)
        self.add_control_route("GET", "requests", get_requests)
        self.add_control_route("POST", "reset", reset)
        self.add_control_route("GET", "corruptions", self.corruptions.describe_handler)
        self.add_control_route("POST", "corruptions", self.corruptions.update_handler)


async def serve(emulator: Emulator, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve ``emulator`` until cancelled; call ``on_ready`` with its base URL once bound."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    runner = web.AppRunner(emulator.app, access_log=None, handle_signals=in_main_thread)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    addresses = runner.addresses
    bound_port = addresses[0][1] if addresses else port
    on_ready(f"http://{host}:{bound_port}")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
