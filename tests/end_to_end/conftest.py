"""Fixtures of the end-to-end suite: the real Meltano project, per test, against emulators on free ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from meltano_helpers import PROJECT_ROOT, MeltanoProject


@pytest.fixture
def project(tmp_path: Path) -> MeltanoProject:
    """The project with this test's own state directory, DuckDB file and dead-letter file."""
    if not (PROJECT_ROOT / ".meltano" / ".installed").exists():
        pytest.fail("the Meltano plugins are not installed: run `make meltano-install` (make test does it)")
    return MeltanoProject(tmp_path)
