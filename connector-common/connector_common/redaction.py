"""Keep secrets out of every log line, formatted traceback and uncaught-exception report.

Kaon and Kissmetrics carry the API key in the query string, so libraries that log a
request URL (urllib3 at DEBUG, backoff's "giving up" line, requests' connection
errors) would print it. Redaction therefore happens on the handlers, where every
record passes, and on ``sys.excepthook``, where uncaught tracebacks pass.
"""

from __future__ import annotations

import base64
import logging
import sys
import traceback
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***REDACTED***"
_MIN_SECRET_LENGTH = 4


def secret_variants(secrets: Iterable[str | None]) -> list[str]:
    """Return every form in which a secret may appear in text, longest first."""
    variants: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < _MIN_SECRET_LENGTH:
            continue
        variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
    return sorted(variants, key=len, reverse=True)


def basic_auth_token(username: str, password: str) -> str:
    """Return the base64 token an HTTP Basic ``Authorization`` header carries."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class SecretRedactor:
    """Replaces known secret values in text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.variants = secret_variants(secrets)

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret variant replaced by a placeholder."""
        for variant in self.variants:
            if variant in text:
                text = text.replace(variant, REDACTED)
        return text


class SecretRedactingFilter(logging.Filter):
    """A handler filter that redacts the message, its arguments and any traceback."""

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep what we can show safely
            message = str(record.msg)
        record.msg = self.redactor.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            formatted = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = self.redactor.redact(formatted.rstrip("\n"))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


_installed: list[tuple[logging.Handler, SecretRedactingFilter]] = []


def install_secret_redaction(secrets: Iterable[str | None]) -> SecretRedactor:
    """Redact ``secrets`` on every handler known now and in uncaught tracebacks.

    Call it again after logging is reconfigured; it replaces its earlier filters.
    """
    redactor = SecretRedactor(secrets)
    for handler, old_filter in _installed:
        handler.removeFilter(old_filter)
    _installed.clear()
    for handler in _all_handlers():
        redacting_filter = SecretRedactingFilter(redactor)
        handler.addFilter(redacting_filter)
        _installed.append((handler, redacting_filter))
    _install_excepthook(redactor)
    return redactor


def _all_handlers() -> list[logging.Handler]:
    handlers = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    unique: dict[int, logging.Handler] = {id(h): h for h in handlers}
    if not unique:  # nothing configured yet: the last-resort handler prints warnings
        fallback = logging.lastResort
        if fallback is not None:
            unique[id(fallback)] = fallback
    return list(unique.values())


def _install_excepthook(redactor: SecretRedactor) -> None:
    def redacting_excepthook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(redactor.redact(text))

    sys.excepthook = redacting_excepthook
