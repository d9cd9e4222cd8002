"""The plugins' fatal errors: one line that says what to fix, never a URL with a key in it, never a secret."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class ConnectorError(Exception):
    """A fatal, user-facing error: the run stops with this one line and exit code 1 (see ``plugin.py``)."""


class ServiceError(ConnectorError, FatalAPIError):
    """A service answered in a way the plugin cannot go on from (refused credentials, a broken body, retries spent)."""


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of white space folded into single spaces."""
    return " ".join(text.split()) or "unknown error"
