"""Fault-injection knobs of the service routes: latency, errors, 429 with Retry-After, drops, slow bodies."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


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


class DropConnectionError(Exception):
    """Raised by a handler (or the fault layer) to close the connection with no response."""
