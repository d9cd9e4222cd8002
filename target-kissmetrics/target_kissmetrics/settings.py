"""target-kissmetrics' settings, declared once (types, defaults, descriptions, rules)."""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from singer_sdk import typing as th

from target_kissmetrics.connector_common.retry import (
    backoff_base_setting,
    backoff_max_setting,
    max_retries_setting,
    request_timeout_setting,
)
from target_kissmetrics.connector_common.setting_fields import setting
from target_kissmetrics.connector_common.settings import PluginSettings
from target_kissmetrics.connector_common.urls import service_url_rule
from target_kissmetrics.stream_mappings import KINDS, MappingError, mappings_for_stream

DEFAULT_TRACKING_URL = "https://trk.kissmetrics.io"
DEFAULT_DEAD_LETTER_PATH = "output/kissmetrics-dead-letters.jsonl"
# From bench/target_kissmetrics_throughput.py: the bare aiohttp sender's rate at 50 ms and most of it at 150 ms;
# more costs CPU per beacon and no longer fits a 1,024 open-file limit (see the README).
DEFAULT_MAX_CONCURRENCY = 512
#: A mapping that breaks every record dead-letters all of them; a few bad rows among many stay under it.
DEFAULT_MAX_DEAD_LETTER_RATIO = 0.1

_STRING_LIST = th.ArrayType(th.StringType)
_MAPPING = th.ObjectType(
    th.Property("kind", th.StringType, allowed_values=list(KINDS), description="event (/e), set (/s) or alias (/a)."),
    th.Property("person", th.StringType, description="Field sent as _p (default `person`)."),
    th.Property(
        "event", th.StringType, description="Event name: a constant or a `{field}` template (default `{event}`)."
    ),
    th.Property("alias", th.StringType, description="Field holding the second identity of an alias (default `alias`)."),
    th.Property("timestamp", th.StringType, description="Field sent as _t (default `timestamp` if the stream has it)."),
    th.Property("properties", _STRING_LIST, description="Fields to send as properties (default: all other fields)."),
    th.Property("exclude", _STRING_LIST, description="Fields (or flattened names) never sent."),
    additional_properties=False,
)
_STREAMS = th.ObjectType(additional_properties=th.CustomType({"anyOf": [_MAPPING.to_dict(), {"type": "array"}]}))


def _mapping_problem(streams: Mapping[str, t.Any]) -> str | None:
    """Why a ``streams`` setting cannot work (an unknown kind, a bad template), or None."""
    try:
        for stream_name in streams:
            mappings_for_stream(stream_name, streams, [])
    except MappingError as error:
        return f"is invalid: {error}"
    return None


class KissmetricsSettings(PluginSettings):
    """The target's settings with their defaults applied."""

    api_key: str = setting("Kissmetrics API key (_k).", required=True, secret=True)
    tracking_url: str = setting(
        "Tracking host; https is required except on 127.0.0.1/localhost.",
        default=DEFAULT_TRACKING_URL,
        rule=service_url_rule("the api_key travels in every beacon's query string"),
    )
    streams: Mapping[str, t.Any] | None = setting(
        'Per stream name (or "*" for all others): a mapping object, or a list of them (one beacon per mapping). '
        "Without it the kind is inferred from the field names (see README).",
        schema=_STREAMS,
        rule=_mapping_problem,
    )
    dead_letter_path: str = setting(
        "JSONL file that receives invalid records with their reasons.", default=DEFAULT_DEAD_LETTER_PATH
    )
    fail_on_invalid: bool = setting(
        "Stop the run at the first invalid record instead of dead-lettering it.", default=False
    )
    max_dead_letter_ratio: float = setting(
        "Largest share (0 to 1) of a stream's records that may be dead-lettered: above it no STATE is emitted and "
        "the run fails (0.1 tolerates a few bad rows and catches a broken mapping; 1 never fails).",
        default=DEFAULT_MAX_DEAD_LETTER_RATIO,
        minimum=0,
        maximum=1,
    )
    dry_run: bool = setting(
        "Print the beacon URLs (key redacted) to stderr instead of sending them; no STATE is emitted.", default=False
    )
    max_concurrency: int = setting(
        "Beacons in flight at once, each on its own keep-alive connection (see README: how the default was chosen).",
        default=DEFAULT_MAX_CONCURRENCY,
        minimum=1,
    )
    max_requests_per_second: float | None = setting(
        "Optional cap on requests per second (token bucket).", exclusive_minimum=0
    )
    request_timeout: float = request_timeout_setting("Seconds to connect and to read.", default=30)
    max_retries: int = max_retries_setting("a beacon", default=8)
    backoff_base_seconds: float = backoff_base_setting(default=0.5, deprecated_names=("backoff_base",))
    backoff_max_seconds: float = backoff_max_setting(default=30, deprecated_names=("backoff_max",))
    state_flush_seconds: float = setting(
        "Emit the latest STATE at most this often (seconds), each as soon as every beacon before it got a 200 "
        "(smaller: less re-sent after a crash; larger: fewer STATE lines). Reading never pauses for it.",
        default=2,
        minimum=0,
    )
