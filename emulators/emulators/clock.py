"""The emulator's clock: frozen at an instant (tests) or following real time, moved by the control route."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


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
