"""What every emulator shares: an aiohttp app with fault injection (``faults.py``, ``answer_corruption.py``), a
clock (``clock.py``), a request log and control routes under ``/_emulator/`` (a path no real client uses).

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

Answer corruption (the second half of the fault layer, ``answer_corruption.py``): a service declares the
fields that pick one of its answers (:meth:`AnswerCorruptions.declare_targets`) and passes each successful
answer through :meth:`Emulator.answer` with those fields (an :class:`AnswerTarget`); a rule whose target matches
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
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from emulators.answer_corruption import AnswerCorruptions, AnswerTarget, CorruptedResponse
from emulators.clock import Clock, parse_iso8601
from emulators.faults import DropConnectionError, Faults
from emulators.responses import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTROL_PREFIX = "/_emulator"


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
