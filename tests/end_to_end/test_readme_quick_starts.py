"""Each plugin README's quick start runs as written against the emulators and leaves sensible output and state.

The ``bash`` block under ``## Quick start`` is taken from the Markdown and run with ``bash -e`` in a fresh
directory holding a link to the repository's ``.venv`` (the block starts with ``source .venv/bin/activate``, as in
a checkout after ``make venv``). The one change made to the text: its fixed emulator port becomes a free port, so
that the test never meets another server. The emulator's own command line in the block is parsed with the
emulator's parser, so the expected data is exactly what that command serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import parse_messages
from tests.support.datasets import FIXED_NOW_TEXT
from tests.tap_kaon_insights.kaon_tap_helpers import expected_clicks, expected_path_hits, expected_weekly

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT_SECONDS = 300


def quick_start(readme: Path) -> str:
    """The first bash block of the README's ``## Quick start`` section."""
    text = readme.read_text()
    section = text[text.index("\n## Quick start\n") :]
    section = section[: section.find("\n## ", 1)]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, f"{readme}: no bash block in the quick start"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def emulator_options(block: str, service: str) -> Any:
    """The block's ``python -m emulators <service> ...`` options, parsed by the emulators' own parser."""
    from emulators.__main__ import build_parser

    (line,) = [line for line in block.splitlines() if line.startswith(f"python -m emulators {service} ")]
    words = line.split(">")[0].split()[3:]
    return build_parser().parse_args(words)


def run_block(block: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the block in ``workdir`` (with ``.venv`` linked in) in its own process group, killed afterwards."""
    for port in set(re.findall(r"--port (\d+)", block)):  # at most one: the block's emulator
        block = block.replace(port, str(free_port()))
    (workdir / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TAP_", "TARGET_", "MELTANO_"))}
    process = subprocess.Popen(
        ["bash", "-e", "-c", block],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the emulator, if the block stopped before `kill %1`
    assert process.returncode == 0, f"the quick start failed:\n{stderr[-4000:]}"
    assert "Traceback" not in stderr, stderr[-4000:]
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def records_by_stream(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for message in parse_messages(path.read_text()):
        if message["type"] == "RECORD":
            by_stream.setdefault(message["stream"], []).append(message["record"])
    return by_stream


def test_the_kahuna_quick_start_reads_every_log_of_its_days_once_and_then_nothing(tmp_path: Path) -> None:
    from emulators.kahuna_data import dataset_from_options

    block = quick_start(PROJECT_ROOT / "tap-kahuna-logs" / "README.md")
    options = emulator_options(block, "kahuna")
    assert options.now == FIXED_NOW_TEXT
    config = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON", block, re.S).group(1))  # type: ignore[union-attr]
    run_block(block, tmp_path)

    from datetime import datetime

    dataset = dataset_from_options(options, datetime.fromisoformat(options.now))
    first, last = date.fromisoformat(config["start_date"]), date.fromisoformat(config["end_date"])
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    records = records_by_stream(tmp_path / "out.jsonl")
    streams = {"inapp": "inapp_logs", "push": "push_logs", "email": "email_logs", "user_merge": "user_merge_logs"}
    for category, stream in streams.items():
        expected = sum(len(dataset.records(category, day)) for day in days)
        assert expected > 0, category
        assert len(records.get(stream, [])) == expected, stream
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    assert {entry["tap_stream_id"] for entry in catalog["streams"]} == set(streams.values())
    state = json.loads((tmp_path / "state.json").read_text())
    assert set(state["bookmarks"]) == set(streams.values())
    # The bookmarks stop at the emulator's frozen clock, never past it; the second run finds nothing new.
    for stream, bookmark in state["bookmarks"].items():
        assert str(bookmark["replication_key_value"]) <= options.now, (stream, bookmark)
    assert records_by_stream(tmp_path / "more.jsonl") == {}


def test_the_kaon_quick_start_syncs_its_weeks_path_and_clickstream_then_only_the_week_in_progress(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    from emulators.kaon_data import dataset_from_options

    block = quick_start(PROJECT_ROOT / "tap-kaon-insights" / "README.md")
    options = emulator_options(block, "kaon")
    config = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON", block, re.S).group(1))  # type: ignore[union-attr]
    run_block(block, tmp_path)

    dataset = dataset_from_options(options, datetime.fromisoformat(options.now))
    assert dataset.current_week == config["end_week"]
    weeks = list(range(config["start_week"], config["end_week"] + 1))
    records = records_by_stream(tmp_path / "out.jsonl")
    for stream in ("weeks", "engagement", "devices", "countries", "languages", "hits"):
        expected = expected_weekly(dataset, stream, weeks)
        assert expected, stream
        assert [(row["week"], row.get("bucket"), row.get("code"), row.get("path")) for row in records[stream]] == [
            (row["week"], row.get("bucket"), row.get("code"), row.get("path")) for row in expected
        ], stream
    (path,) = config["paths"]
    (external_id,) = config["external_ids"]
    # path_hits reads a path's whole history (the API answers it in one call), not only start_week on.
    assert [(row["week"], row["count"]) for row in records["path_hits"]] == [
        (row["week"], row["count"]) for row in expected_path_hits(dataset, path)
    ]
    clicks = expected_clicks(dataset, external_id)
    assert clicks
    assert [(r["timestamp_unix"], r["sequence_in_second"]) for r in records["external_id_hits"]] == [
        (r["timestamp_unix"], r["sequence_in_second"]) for r in clicks
    ]
    # The next run starts at the bookmarks: only the week in progress again, and no click twice.
    again = records_by_stream(tmp_path / "more.jsonl")
    assert {row["week"] for stream, rows in again.items() if stream != "external_id_hits" for row in rows} <= {
        dataset.current_week
    }
    assert again.get("external_id_hits", []) == []
    state = json.loads((tmp_path / "state.json").read_text())
    assert {"engagement", "external_id_hits"} <= set(state["bookmarks"])


def test_the_target_quick_start_dry_runs_then_delivers_both_signups_once(tmp_path: Path) -> None:
    block = quick_start(PROJECT_ROOT / "target-kissmetrics" / "README.md")
    result = run_block(block, tmp_path)

    dry_run_lines = [line for line in result.stderr.splitlines() if "DRY RUN" in line]
    assert len(dry_run_lines) == 2, result.stderr[-3000:]
    assert all("_k=***REDACTED***" in line and "km-demo-key" not in line for line in dry_run_lines)
    kept = json.loads((tmp_path / "kept.json").read_text())
    events = sorted((event["person"], event["event"], event["properties"]["plan"]) for event in kept["events"])
    assert events == [("ada@example.com", "Signed Up", "pro"), ("alan@example.com", "Signed Up", "free")]
    (state,) = parse_messages((tmp_path / "state.jsonl").read_text())
    assert state["bookmarks"]["signups"]["replication_key_value"] == "2026-11-18T09:05:00Z"


def test_the_tap_duckdb_quick_start_reads_its_table_then_only_the_row_at_the_bookmark(tmp_path: Path) -> None:
    block = quick_start(PROJECT_ROOT / "tap-duckdb" / "README.md")
    run_block(block, tmp_path)

    first = records_by_stream(tmp_path / "out.jsonl")
    assert [row["order_id"] for row in first["marts-orders"]] == [0, 1, 2, 3, 4]
    assert [row["amount"] for row in first["marts-orders"]] == [0, 10, 20, 30, 40]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["bookmarks"]["marts-orders"] == {
        "replication_key": "updated_at",
        "replication_key_value": "2026-11-18T09:04:00.000000+00:00",
    }
    # Inclusive bookmark (singer-sdk's SQL streams): the row at the bookmark again, nothing older.
    assert [row["order_id"] for row in records_by_stream(tmp_path / "more.jsonl")["marts-orders"]] == [4]


@pytest.mark.parametrize("readme", ["tap-kahuna-logs", "tap-kaon-insights", "target-kissmetrics", "tap-duckdb"])
def test_no_quick_start_leaves_a_placeholder_to_fill_in(readme: str) -> None:
    block = quick_start(PROJECT_ROOT / readme / "README.md")
    for placeholder in ("…", "your-", "tap-something", "<", "jq "):
        text = block.replace("<<'JSON", "").replace("<<'PY'", "").replace("< signups", "")
        assert placeholder not in text, (readme, placeholder)
