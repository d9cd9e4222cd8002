"""The URL rule every plugin applies to the addresses it sends credentials to."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def url_problem(url: str, *, why: str = "") -> str | None:
    """What is wrong with ``url`` as a service address ("must use https ..."), or None.

    https is required; plain http only for 127.0.0.1, localhost and ::1 (the emulators, a local proxy). ``why`` says
    what travels in the request (e.g. "the api_key travels in the query string").
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        reason = f" ({why})" if why else ""
        return (
            f"{url!r} must use https for {parts.hostname}{reason}: "
            "plain http is allowed only for 127.0.0.1, localhost and ::1"
        )
    return None


def service_url_rule(why: str = "") -> Callable[[str], str | None]:
    """The URL rule as a setting rule (see :func:`connector_common.settings.setting`)."""

    def rule(url: str) -> str | None:
        return url_problem(url, why=why)

    return rule
