"""Run tap-kaon-insights with a catalog of chosen streams; the expected rows of the emulator's dataset."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tests.support.cli import TAP_KAON, PluginRun, run_plugin
from tests.support.datasets import FIXED_NOW, KAON_API_KEY, KAON_CLIENT, SMALL_DATA, kaon_dataset

if TYPE_CHECKING:
    from emulators.kaon_data import KaonDataset  # the unit tests run without the emulator

TAP = TAP_KAON
API_KEY = KAON_API_KEY
CLIENT = KAON_CLIENT
ALL_STREAMS = (
    "weeks",
    "engagement",
    "devices",
    "countries",
    "languages",
    "hits",
    "path_hits",
    "external_id_hits",
)
SMALL_ARGS = SMALL_DATA["kaon"]


def base_config(url: str, **overrides: Any) -> dict[str, Any]:
    """A config for the emulator at ``url`` (its base, without /api)."""
    return {"api_key": API_KEY, "client": CLIENT, "api_url": f"{url}/api", "backoff_base_seconds": 0.05, **overrides}


@cache
def _discovered_catalog() -> str:
    config = {"api_key": "x" * 8, "client": CLIENT}
    result = subprocess.run(
        [TAP, "--config", "ENV", "--discover"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **{f"TAP_KAON_INSIGHTS_{k.upper()}": v for k, v in config.items()}},
    )
    return result.stdout


def catalog_for(streams: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The discovered catalog with only ``streams`` selected."""
    catalog = copy.deepcopy(json.loads(_discovered_catalog()))
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def run_tap(
    tmp_path: Path,
    config: dict[str, Any],
    *,
    streams: tuple[str, ...] | list[str] = ALL_STREAMS,
    state: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> PluginRun:
    """Run the real CLI with ``config`` (and ``state``), selecting ``streams``."""
    return run_plugin(TAP, config, tmp_path, catalog=catalog_for(streams), state=state, env=env, args=args)


def dataset(now: datetime = FIXED_NOW, **overrides: Any) -> KaonDataset:
    """The emulator's data for the test fixtures' knobs (plus ``overrides``)."""
    return kaon_dataset(now, **overrides)


def listed_weeks(data: KaonDataset, first: int | None = None) -> list[int]:
    """The weeks the API lists, from ``first`` on."""
    weeks = list(range(data.first_week, data.current_week + 1))
    return [w for w in weeks if first is None or w >= first]


def hit_weeks(data: KaonDataset, first: int) -> list[int]:
    """The weeks ``hits`` reads from ``start_week`` ``first`` on a first run: back to the launch, before the list."""
    return list(range(max(first, data.launch_week), data.current_week + 1))


def expected_weekly(data: KaonDataset, stream: str, weeks: list[int]) -> list[dict[str, Any]]:
    """Rows the tap must emit for a weekly stream over ``weeks``, in order."""
    from emulators.kaon_data import week_start

    rows: list[dict[str, Any]] = []
    for week in weeks:
        base = {"client": CLIENT, "week": week, "week_start": week_start(week).isoformat()}
        if stream == "weeks":
            rows.append({**base, "weekname": data.weekname(week), "is_current": week == data.current_week})
        elif stream == "engagement":
            rows.extend(
                {**base, "bucket": item["bucket"], "bucket_order": i, "count": item["count"]}
                for i, item in enumerate(data.engagement(week))
            )
        elif stream == "devices":
            rows.extend({**base, "device_uid": uid} for uid in data.device_uids(week))
        elif stream == "countries":
            rows.extend({**base, "code": code, "count": count} for code, count in data.countries(week).items())
        elif stream == "languages":
            rows.extend({**base, "code": code, "count": count} for code, count in data.languages(week).items())
        elif stream == "hits":
            rows.extend(
                {**base, "path": hit["path"], "path_decoded": unquote(hit["path"]), "count": hit["count"]}
                for hit in data.hits_for_week(week)
            )
    return rows


def expected_path_hits(data: KaonDataset, path: str, first: int = 0) -> list[dict[str, Any]]:
    """Rows of path_hits for one path from week ``first`` on."""
    from emulators.kaon_data import week_start

    return [
        {
            "client": CLIENT,
            "week": hit["week"],
            "week_start": week_start(hit["week"]).isoformat(),
            "path": path,
            "path_decoded": unquote(path),
            "count": hit["count"],
            "countries": None,
        }
        for hit in data.path_history(path)
        if hit["week"] >= first
    ]


def expected_clicks(data: KaonDataset, external_id: str) -> list[dict[str, Any]]:
    """Rows of external_id_hits for one id, with the per-second sequence."""
    rows = []
    previous, sequence = None, 0
    for record in data.clickstream(external_id):
        sequence = sequence + 1 if record["timestamp"] == previous else 0
        previous = record["timestamp"]
        rows.append(
            {
                "client": CLIENT,
                "external_id": external_id,
                "timestamp": datetime.fromtimestamp(record["timestamp"], tz=timezone.utc).isoformat(),
                "timestamp_unix": record["timestamp"],
                "sequence_in_second": sequence,
                "path": record.get("path"),
                "extra": {k: v for k, v in record.items() if k not in ("timestamp", "path")},
            }
        )
    return rows


def without_languages_names(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without ``language_name`` (checked separately against the seed's table)."""
    return [{k: v for k, v in row.items() if k != "language_name"} for row in rows]
