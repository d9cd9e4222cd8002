"""Fixtures of the end-to-end suite: the real Meltano project, per test, against emulators on free ports.

They live with the helpers (tests/end_to_end/meltano_helpers.py), so tests/orchestration shares them.
"""

from __future__ import annotations

from tests.end_to_end.meltano_helpers import project, warehouse  # noqa: F401 (fixtures)
