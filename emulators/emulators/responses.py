"""JSON answers: every emulator's bodies are compact JSON."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
