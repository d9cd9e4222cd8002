"""What a Logs API request must be: its credentials and its JSON body; each broken rule is one error answer."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from aiohttp import web

from emulators.kahuna_data import (
    CATEGORIES,
)
from emulators.responses import json_response

MAX_RECORDS_PER_PAGE = 1000
_REQUEST_TIMESTAMP = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?:\s*([AaPp][Mm]))?\s*")
GENERIC_BAD_REQUEST = "Invalid request parameters"
ERROR_NAMES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}


class LogsAPIError(Exception):
    """An error answer of the Logs API."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> web.Response:
        """The API's error body."""
        body = {
            "success": False,
            "error": ERROR_NAMES.get(self.status, "Error"),
            "error_code": self.status,
            "error_detail": self.detail,
        }
        headers = {"WWW-Authenticate": 'Basic realm="kahunalogs"'} if self.status == 401 else None
        return json_response(body, self.status, headers=headers)


def bad_request(detail: str) -> LogsAPIError:
    """A 400 with ``detail``."""
    return LogsAPIError(400, detail)


@dataclass(frozen=True)
class Credentials:
    """The accepted secret key (username), API key (password) and a not-enabled API key."""

    secret_key: str
    api_key: str
    not_enabled_api_key: str

    def check(self, authorization: str | None) -> None:
        """Raise 401 for missing or wrong credentials, 409 for the not-enabled API key. Never echoes them."""
        username, password = _basic_credentials(authorization)
        if not _same(username, self.secret_key):
            raise LogsAPIError(401, "invalid credentials: username must be the Secret Key, password the API Key")
        if _same(password, self.api_key):
            return
        if self.not_enabled_api_key and _same(password, self.not_enabled_api_key):
            raise LogsAPIError(409, "these credentials are not enabled for the Logs API")
        raise LogsAPIError(401, "invalid credentials: username must be the Secret Key, password the API Key")


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise LogsAPIError(401, "HTTP Basic authentication is required (username = Secret Key, password = API Key)")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise LogsAPIError(401, "the Basic authorization header is not valid base64 of username:password") from None
    username, separator, password = decoded.partition(":")
    if not separator:
        raise LogsAPIError(401, "the Basic authorization header holds no username:password pair")
    return username, password


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class LogsQuery:
    """A validated request body: a day and start minute, or a cursor token."""

    categories: tuple[str, ...]
    page_size: int
    day: date | None = None
    start_text: str = ""
    cursor: str | None = None

    @property
    def start_minute(self) -> str:
        """The timestamp's minute, ``HH:MM``."""
        return self.start_text[11:16]


def parse_body(raw: bytes) -> LogsQuery:
    """Validate the JSON body; raise a 400 naming the first broken rule."""
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    has_timestamp, has_cursor = body.get("timestamp") is not None, body.get("cursor") is not None
    if not has_timestamp and not has_cursor:
        raise bad_request("either timestamp or cursor is required")
    if has_timestamp and has_cursor:
        raise bad_request("send either timestamp or cursor, not both")
    page_size = _page_size(body)
    categories = _categories(body)
    if has_cursor:
        cursor = body["cursor"]
        if not isinstance(cursor, str) or not cursor.strip():
            raise bad_request("cursor must be a non-empty string (the cursor of the previous answer)")
        return LogsQuery(categories, page_size, cursor=cursor)
    day, start_text = parse_request_timestamp(body["timestamp"])
    return LogsQuery(categories, page_size, day=day, start_text=start_text)


def _page_size(body: dict[str, Any]) -> int:
    if "number_of_records" not in body:
        raise bad_request(f"number_of_records is required: an integer from 1 to {MAX_RECORDS_PER_PAGE}")
    value = body["number_of_records"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RECORDS_PER_PAGE:
        raise bad_request(
            f"number_of_records must be an integer from 1 to {MAX_RECORDS_PER_PAGE}, got {json.dumps(value)}"
        )
    return value


def _categories(body: dict[str, Any]) -> tuple[str, ...]:
    known = ", ".join(CATEGORIES)
    if "categories_to_return" not in body:
        raise bad_request(f"categories_to_return is required: a list of {known}")
    value = body["categories_to_return"]
    if not isinstance(value, list):
        raise bad_request(f"categories_to_return must be a list of {known}, got {json.dumps(value)}")
    if not value:
        raise bad_request(f"categories_to_return is empty; list at least one of {known}")
    for category in value:
        if category not in CATEGORIES:
            raise bad_request(f"unknown category {json.dumps(category)} in categories_to_return; known: {known}")
    requested = set(value)
    if "user_merge" in requested and len(requested) > 1:
        raise bad_request("user_merge cannot be combined with other categories in categories_to_return")
    return tuple(category for category in CATEGORIES if category in requested)


def parse_request_timestamp(value: Any) -> tuple[date, str]:
    """``m/dd/yyyy h:mm`` (UTC, hour 0-23) or ``m/dd/yyyy h:mm AM|PM`` -> (its day, the first record timestamp)."""
    match = _REQUEST_TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise bad_request(
            "timestamp must look like m/dd/yyyy h:mm (UTC, hour 0-23) or m/dd/yyyy h:mm AM|PM, "
            f"e.g. 7/30/2016 0:00 or 7/30/2016 1:05 PM; got {json.dumps(value)}"
        )
    month, day, year, hour, minute = (int(part) for part in match.groups()[:5])
    meridiem = match.group(6)
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise bad_request(f"timestamp {json.dumps(value)}: with AM/PM the hour must be 1 to 12")
        hour = hour % 12 + (12 if meridiem.lower() == "pm" else 0)
    try:
        start = datetime(year, month, day, hour, minute, tzinfo=timezone.utc)
    except ValueError as exc:
        raise bad_request(f"timestamp {json.dumps(value)} is not a real UTC date and time: {exc}") from None
    return start.date(), start.strftime("%Y-%m-%d %H:%M:%S.%f")
