"""Reading Singer messages: msgspec straight from stdin's bytes, the SDK's own JSON parser for the rare rest."""

from __future__ import annotations

import decimal
import sys
import typing as t

import msgspec
from singer_sdk.io_base import GenericSingerReader
from singer_sdk.singerlib.json import deserialize_json
from typing_extensions import override

from target_kissmetrics.connector_common.errors import ConnectorError

#: Numbers with a fraction become Decimal, exactly as singer-sdk's own reader reads them.
_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)
_SHOWN_CHARACTERS = 120


class InvalidInputError(ConnectorError):
    """An input line that is not a JSON object (the tap's output is broken or truncated)."""


class MessageReader(GenericSingerReader[bytes]):
    """Decodes each line with msgspec (about ten times faster than ``json.loads``); a line msgspec refuses but
    the standard library accepts (``NaN``, a lone UTF-16 surrogate escape) is read the way singer-sdk reads it.
    A line neither accepts ends the run with one line naming its number.
    """

    @override
    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0

    @property
    @override
    def default_input(self) -> t.IO[bytes]:
        """Standard input as bytes (no text decoding step)."""
        return sys.stdin.buffer

    @override
    def deserialize_json(self, line: bytes | str) -> dict:
        """One Singer message as a dict."""
        self.line_number += 1
        try:
            message = decode_json(line)
        except ValueError as error:
            raise InvalidInputError(
                f"input line {self.line_number} is not valid JSON ({error}): {shown(line)}; "
                "check the tap's output (a Singer message per line)"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputError(f"input line {self.line_number} is not a JSON object: {shown(line)}")
        return message


def decode_json(line: bytes | str) -> t.Any:
    """One JSON document, read with msgspec, or the way singer-sdk reads it when msgspec refuses it (``NaN``, a lone
    UTF-16 surrogate escape); ``ValueError`` when neither reads it. Used for input lines and BATCH file lines."""
    try:
        return _DECODER.decode(line)
    except msgspec.DecodeError:
        return deserialize_json(line)  # its errors (JSONDecodeError, UnicodeDecodeError) are ValueErrors


def shown(line: bytes | str) -> str:
    """The start of a line, quoted, for an error message."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    return repr(text[:_SHOWN_CHARACTERS] + ("..." if len(text) > _SHOWN_CHARACTERS else ""))
