"""The CLI surface: --discover and catalog selection (README settings: tests/end_to_end/test_project_config.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from emulators.testing import EmulatorProcess
from tests.support.cli import PluginRun
from tests.tap_kahuna_logs.kahuna_helpers import STREAMS, TAP, base_config, expected_rows, keys


def discover(config: dict, tmp_path: Path) -> dict:
    """The catalog ``--discover`` prints."""
    config_path = tmp_path / "discover-config.json"
    config_path.write_text(json.dumps(config))
    completed = subprocess.run(
        [TAP, "--config", str(config_path), "--discover"], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def test_discover_lists_four_streams_with_keys_and_bookmarks(clean_emulator: EmulatorProcess, tmp_path: Path) -> None:
    catalog = discover(base_config(clean_emulator), tmp_path)
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert set(streams) == set(STREAMS.values())
    for entry in streams.values():
        root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        assert root["table-key-properties"] == ["log_date", "log_position"]
        assert root["valid-replication-keys"] == ["timestamp"]
        assert {"log_date", "log_position", "timestamp", "extra"} <= set(entry["schema"]["properties"])
    assert "merged_credentials_by_type" in streams["user_merge_logs"]["schema"]["properties"]
    assert clean_emulator.requests() == [], "discovery sends no request"


def test_catalog_selection_reads_only_selected_streams(
    clean_emulator: EmulatorProcess, run_tap: Callable[..., PluginRun], tmp_path: Path
) -> None:
    catalog = discover(base_config(clean_emulator), tmp_path)
    for entry in catalog["streams"]:
        root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        root["selected"] = entry["tap_stream_id"] == "push_logs"
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    run = run_tap(base_config(clean_emulator), args=("--catalog", str(catalog_path)))
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.records) == {"push_logs"}
    assert keys(run.records["push_logs"]) == [(d, p) for d, p, _ in expected_rows("push")]
    assert {r["json"]["categories_to_return"][0] for r in clean_emulator.requests()} == {"push"}
