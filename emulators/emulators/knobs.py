"""Run-time knobs a service serves on its own control route: GET shows them, POST changes them or names the problem."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from emulators.responses import json_response


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
