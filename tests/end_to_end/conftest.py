"""Fixtures of the end-to-end suite: the real Meltano project, per test, against emulators on free ports."""

from __future__ import annotations

# The fixtures live with the helpers so that other suites (tests/orchestration) share them.
from meltano_helpers import project, warehouse  # noqa: F401
