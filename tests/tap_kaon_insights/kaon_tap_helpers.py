"""Run the real ``tap-kaon-insights`` CLI and read its Singer output; build expected rows from the dataset."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from emulators.kaon_data import KaonDataset  # the unit tests run without the emulator

REPO = Path(__file__).resolve().parents[2]
TAP = str(Path(sys.executable).with_name("tap-kaon-insights"))
FIXED_NOW_TEXT = "2026-11-18T15:30:00+00:00"  # as tests/conftest.py: week 776 is in progress
FIXED_NOW = datetime.fromisoformat(FIXED_NOW_TEXT)
API_KEY = "kaon-demo-key"
CLIENT = "demo-client"
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
#: The small data set of tests/conftest.py, as dataset arguments.
SMALL = {"weeks_before_now": 12, "devices_per_week": 40, "paths": 12, "external_ids": 3, "clicks_per_id": 250}
SMALL_ARGS = [f"--{name.replace('_', '-')}={value}" for name, value in SMALL.items()]


@dataclass
class TapRun:
    """What one tap run printed."""

    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> dict[str, Any]:
        """The last STATE message's value."""
        return self.states[-1]

    def rows(self, stream: str) -> list[dict[str, Any]]:
        """Records of one stream, in output order."""
        return self.records.get(stream, [])


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
) -> TapRun:
    """Run the real CLI with ``config`` (and ``state``), selecting ``streams``; parse its messages."""
    run_dir = Path(tmp_path) / f"run{len(list(Path(tmp_path).glob('run*')))}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "catalog.json").write_text(json.dumps(catalog_for(streams)))
    command = [TAP, "--config", str(run_dir / "config.json"), "--catalog", str(run_dir / "catalog.json"), *args]
    if state is not None:
        (run_dir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(run_dir / "state.json")]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, check=False
    )
    run = TapRun(result.returncode, result.stdout, result.stderr)
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


def error_lines(run: TapRun) -> list[str]:
    """The ERROR/CRITICAL lines on stderr."""
    return [line for line in run.stderr.splitlines() if "ERROR" in line or "CRITICAL" in line]


def dataset(now: datetime = FIXED_NOW, **overrides: Any) -> KaonDataset:
    """The emulator's data for the test fixtures' knobs (plus ``overrides``)."""
    from emulators.kaon_data import KaonDataset  # the unit tests run without the emulator

    return KaonDataset(seed=42, client=CLIENT, now=now, **{**SMALL, **overrides})


def listed_weeks(data: KaonDataset, first: int | None = None) -> list[int]:
    """The weeks the API lists, from ``first`` on."""
    weeks = list(range(data.first_week, data.current_week + 1))
    return [w for w in weeks if first is None or w >= first]


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
