"""Fixtures of the end-to-end suite: the real Meltano project, per test, against emulators on free ports (they live with the helpers, so tests/orchestration shares them)."""

from __future__ import annotations

from tests.end_to_end.meltano_helpers import project, warehouse  # noqa: F401 (fixtures)
