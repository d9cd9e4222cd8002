"""Secret redaction on handlers, tracebacks and uncaught exceptions."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from connector_common.redaction import REDACTED, basic_auth_token, install_secret_redaction

CANARY = "canary-SECRET+key/42"


@pytest.fixture
def captured_root_log() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    old_hook = sys.excepthook
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)
    sys.excepthook = old_hook


def test_message_arguments_and_encoded_forms_are_redacted(captured_root_log: io.StringIO) -> None:
    install_secret_redaction([CANARY])
    log = logging.getLogger("urllib3.connectionpool")
    log.debug("GET /api/weeks?apikey=%s&client=demo", CANARY)
    log.debug("encoded: apikey=canary-SECRET%2Bkey%2F42 plus: canary-SECRET%2Bkey%2F42")
    text = captured_root_log.getvalue()
    assert CANARY not in text
    assert "canary-SECRET%2Bkey%2F42" not in text
    assert text.count(REDACTED) == 3
    assert "client=demo" in text


def test_formatted_exception_is_redacted(captured_root_log: io.StringIO) -> None:
    install_secret_redaction([CANARY])
    try:
        raise ConnectionError(f"Max retries exceeded with url: /api/uid?apikey={CANARY}")
    except ConnectionError:
        logging.getLogger("backoff").exception("Giving up")
    text = captured_root_log.getvalue()
    assert "Giving up" in text
    assert "Max retries exceeded" in text
    assert CANARY not in text


def test_basic_auth_token_is_redacted(captured_root_log: io.StringIO) -> None:
    token = basic_auth_token("secret-user", CANARY)
    install_secret_redaction(["secret-user", CANARY, token])
    logging.getLogger("x").warning("Authorization: Basic %s", token)
    text = captured_root_log.getvalue()
    assert token not in text
    assert "Basic " + REDACTED in text


def test_uncaught_exception_hook_redacts(captured_root_log: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    install_secret_redaction([CANARY])
    try:
        raise RuntimeError(f"boom {CANARY}")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    err = capsys.readouterr().err
    assert "RuntimeError: boom " + REDACTED in err
    assert CANARY not in err


def test_short_or_empty_secrets_are_ignored(captured_root_log: io.StringIO) -> None:
    install_secret_redaction(["", None, "ab"])
    logging.getLogger("x").warning("ab cd")
    assert "ab cd" in captured_root_log.getvalue()
