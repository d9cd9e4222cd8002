"""The Singer input of the target benchmarks: "Played Song" events of 5,000 people, one stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

BASE_TIME = 1262304000  # 2010-01-01, so every event carries its own _t
SCHEMA = {
    "type": "SCHEMA",
    "stream": "plays",
    "key_properties": ["n"],
    "schema": {
        "type": "object",
        "properties": {
            "person": {"type": "string"},
            "event": {"type": "string"},
            "timestamp": {"type": "integer"},
            "n": {"type": "integer"},
            "plan": {"type": "string"},
        },
    },
}


def play(n: int) -> dict:
    """Event row ``n`` (distinct by timestamp; ``plan`` needs URL-encoding)."""
    return {"person": f"user-{n % 5000}", "event": "Played Song", "timestamp": BASE_TIME + n, "n": n, "plan": "pro+"}


def singer_lines(count: int, state_every: int = 1000) -> Iterator[str]:
    """SCHEMA, ``count`` records and a STATE ``{"sent": records so far}`` every ``state_every`` records."""
    yield json.dumps(SCHEMA) + "\n"
    for n in range(count):
        yield json.dumps({"type": "RECORD", "stream": "plays", "record": play(n)}) + "\n"
        if (n + 1) % state_every == 0:
            yield json.dumps({"type": "STATE", "value": {"sent": n + 1}}) + "\n"
