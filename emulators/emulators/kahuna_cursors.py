"""Kahuna cursors: opaque tokens of server-side positions in a day's chain, and when they expire.

Expiry (after N uses, T seconds after issue, at chosen uses, at random) and the control route
``/_emulator/kahuna/cursors`` are described in ``kahuna.py``'s docstring.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from aiohttp import web

from emulators.kahuna_readings import KahunaReadings
from emulators.kahuna_requests import GENERIC_BAD_REQUEST, LogsAPIError, bad_request
from emulators.responses import json_response

MAX_OUTSTANDING_CURSORS = 100_000
_CURSOR_TOKEN = re.compile(r"kc\.([0-9]+)\.([0-9a-f]+)")


@dataclass
class ExpiryPolicy:
    """When cursors expire: after N uses, after T seconds, at random; ``None`` / 0 = never."""

    expire_after_uses: int | None = None
    ttl_seconds: float | None = None
    expire_rate: float | None = 0.0
    expire_at_uses: list[int] | None = None
    seed: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the known knobs of ``changes`` (``expire_all`` is handled by the store)."""
        known = {"expire_after_uses", "ttl_seconds", "expire_rate", "expire_at_uses", "seed", "expire_all"}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown cursor knob(s) {sorted(unknown)}; known: {sorted(known)}")
        for name in ("expire_after_uses", "ttl_seconds", "expire_rate", "expire_at_uses", "seed"):
            if name in changes:
                setattr(self, name, changes[name])
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for a knob of the wrong type or range."""
        uses = self.expire_after_uses
        if uses is not None and (isinstance(uses, bool) or not isinstance(uses, int) or uses < 1):
            raise ValueError(f"expire_after_uses must be an integer >= 1 or null, got {uses!r}")
        ttl = self.ttl_seconds
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0):
            raise ValueError(f"ttl_seconds must be a number >= 0 or null, got {ttl!r}")
        rate = self.expire_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1):
            raise ValueError(f"expire_rate must be a number from 0 to 1 or null, got {rate!r}")
        at_uses = self.expire_at_uses
        if at_uses is not None and (
            not isinstance(at_uses, list) or not all(isinstance(n, int) and n >= 1 for n in at_uses)
        ):
            raise ValueError(f"expire_at_uses must be a list of integers >= 1 or null, got {at_uses!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


@dataclass(frozen=True, slots=True)
class Chain:
    """Where a cursor chain is: its day and start minute, the next record's index in the day's merged list
    (a chain a timestamp starts finds its first by the timestamp), the page's number and what it sent of its cap."""

    day: date
    start: str
    next_index: int
    page: int = 0
    sent: int = 0
    cap: int | None = None
    first_index: int = 0  # where the chain's first page started (no page overlaps before it)
    select_from: str = ""  # the first timestamp the chain selects (``order: stored``)


@dataclass(slots=True)
class Cursor:
    """A server-side position in a cursor chain of one env and categories."""

    env: str
    categories: tuple[str, ...]
    chain: Chain
    issued_at: float
    uses: int = 0
    expired: bool = False


class CursorStore:
    """Issues opaque cursor tokens, keeps their positions and decides when they expire."""

    def __init__(self, policy: ExpiryPolicy, readings: KahunaReadings | None = None) -> None:
        self.policy = policy
        self.readings = readings or KahunaReadings()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._next_id = 0
        self._rng = random.Random(policy.seed)
        self.expired_answers = 0
        self.cursor_uses = 0  # every cursor request since the last reset: what expire_at_uses counts

    def issue(self, env: str, categories: tuple[str, ...], chain: Chain) -> str:
        """A new token for the position ``chain`` of that day's merged list."""
        body = f"kc.{self._next_id}.{secrets.token_hex(6)}"
        self._next_id += 1
        token = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        self._cursors[token] = Cursor(env, categories, chain, time.monotonic())
        if len(self._cursors) > MAX_OUTSTANDING_CURSORS:
            self._cursors.popitem(last=False)
        return token

    def use(self, token: str, env: str, categories: tuple[str, ...]) -> Cursor:
        """The cursor's position, counting one use; 400 naming the token if unknown, expired or mismatched."""
        self.cursor_uses += 1
        cursor = self._cursors.get(token)
        if cursor is None:
            if self._was_issued(token):
                raise self._expired(token)
            raise self._refused(f"cursor {token} is unknown to this server; restart from the timestamp")
        if cursor.expired or self._expires_now(cursor):
            cursor.expired = True
            raise self._expired(token)
        _check_cursor_matches(token, cursor, env, categories)
        cursor.uses += 1
        return cursor

    def _expires_now(self, cursor: Cursor) -> bool:
        policy = self.policy
        if policy.expire_at_uses and self.cursor_uses in policy.expire_at_uses:
            return True
        if policy.expire_after_uses is not None and cursor.uses >= policy.expire_after_uses:
            return True
        if policy.ttl_seconds is not None and time.monotonic() - cursor.issued_at > policy.ttl_seconds:
            return True
        rate = policy.expire_rate
        return rate is not None and rate > 0 and self._rng.random() < rate

    def _expired(self, token: str) -> LogsAPIError:
        self.expired_answers += 1
        return self._refused(f"cursor {token} has expired; restart from the timestamp")

    def _refused(self, naming_the_cursor: str) -> LogsAPIError:
        """The answer to a cursor the server no longer knows, under the ``cursor_error`` reading."""
        if self.readings.cursor_error == "names_cursor":
            return bad_request(naming_the_cursor)
        if self.readings.cursor_error == "not_found":
            return LogsAPIError(404, "Not Found")
        return bad_request(GENERIC_BAD_REQUEST)

    def _was_issued(self, token: str) -> bool:
        """An evicted token of ours (it decodes to an id we handed out) counts as expired."""
        try:
            body = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        match = _CURSOR_TOKEN.fullmatch(body)
        return match is not None and int(match.group(1)) < self._next_id

    def expire_all(self) -> None:
        """Expire every outstanding cursor now."""
        for cursor in self._cursors.values():
            cursor.expired = True

    def reset(self) -> None:
        """Forget every cursor and reseed the expiry dice."""
        self._cursors.clear()
        self._rng.seed(self.policy.seed)
        self.expired_answers = 0
        self.cursor_uses = 0

    def describe(self) -> dict[str, Any]:
        """The knobs and counters."""
        outstanding = sum(1 for cursor in self._cursors.values() if not cursor.expired)
        return {
            **asdict(self.policy),
            "outstanding": outstanding,
            "issued": self._next_id,
            "expired_answers": self.expired_answers,
            "cursor_uses": self.cursor_uses,
        }

    async def describe_handler(self, _: web.Request) -> web.Response:
        """``GET /_emulator/kahuna/cursors``."""
        return json_response(self.describe())

    async def update_handler(self, request: web.Request) -> web.Response:
        """``POST /_emulator/kahuna/cursors``: change knobs and/or expire every cursor."""
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of cursor knobs")
            candidate = ExpiryPolicy(**asdict(self.policy))
            candidate.update(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        self.policy.update(changes)
        self._rng.seed(self.policy.seed)
        if "expire_at_uses" in changes:
            self.cursor_uses = 0
        if changes.get("expire_all"):
            self.expire_all()
        return json_response(self.describe())


def _check_cursor_matches(token: str, cursor: Cursor, env: str, categories: tuple[str, ...]) -> None:
    if cursor.env != env:
        raise bad_request(f"cursor {token} belongs to env={cursor.env}; send it with the same env")
    if cursor.categories != categories:
        raise bad_request(
            f"cursor {token} was issued for categories_to_return {list(cursor.categories)}; send the same categories"
        )
