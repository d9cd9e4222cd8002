"""Fixtures of the orchestration suite: the Dagster code location over the real Meltano project."""

from __future__ import annotations

import pytest

from tests.end_to_end.meltano_helpers import MeltanoProject, project, warehouse  # noqa: F401 (fixtures)
from tests.orchestration.dagster_helpers import DagsterProject, system_database  # noqa: F401 (a fixture)


@pytest.fixture
def dagster_project(project: MeltanoProject, system_database: str) -> DagsterProject:  # noqa: F811
    """The code location with this test's Dagster instance, Meltano project and system database."""
    return DagsterProject(project, system_database)
