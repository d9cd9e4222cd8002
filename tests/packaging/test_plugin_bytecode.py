"""`make meltano-install` leaves every plugin's venv compiled, so no plugin start compiles its imports again."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_VENVS = sorted((PROJECT_ROOT / ".meltano").glob("*/*/venv"))


def sources_without_bytecode(site_packages: Path) -> tuple[int, list[Path]]:
    """How many .py files the venv holds, and those with no up-to-date bytecode beside them."""
    total, missing = 0, []
    for directory, _, files in os.walk(site_packages):
        for name in files:
            if not name.endswith(".py"):
                continue
            total += 1
            source = Path(directory) / name
            cached = Path(importlib.util.cache_from_source(str(source)))
            if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
                missing.append(source)
    return total, missing


def test_the_plugins_are_installed() -> None:
    names = {venv.parent.name for venv in PLUGIN_VENVS}
    assert {"tap-kahuna-logs", "tap-kaon-insights", "target-postgres", "target-kissmetrics", "dbt-postgres"} <= names


@pytest.mark.parametrize("venv", PLUGIN_VENVS, ids=lambda venv: venv.parent.name)
def test_every_plugin_venv_is_compiled(venv: Path) -> None:
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    total, missing = sources_without_bytecode(site_packages)
    assert total > 10
    # Without it every tap and target start compiled singer-sdk and SQLAlchemy again (0.4-0.9 s of CPU each).
    assert missing == [], f"{len(missing)} of {total} modules without bytecode, e.g. {missing[:3]}"


def test_the_editable_sources_are_compiled() -> None:
    for package in ("tap-kahuna-logs/tap_kahuna_logs", "tap-kaon-insights/tap_kaon_insights", "connector-common"):
        _, missing = sources_without_bytecode(PROJECT_ROOT / package)
        assert missing == [], package
