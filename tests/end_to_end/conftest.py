"""Fixtures of the end-to-end suite: the real Meltano project, per test, against emulators on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.end_to_end.meltano_helpers import POSTGRES, POSTGRES_URL, PROJECT_ROOT, MeltanoProject


@pytest.fixture
def project(tmp_path: Path) -> MeltanoProject:
    """The project with this test's own state directory, DuckDB file and dead-letter file."""
    if not (PROJECT_ROOT / ".meltano" / ".installed").exists():
        pytest.fail("the Meltano plugins are not installed: run `make meltano-install` (make test does it)")
    return MeltanoProject(tmp_path)


@pytest.fixture
def warehouse() -> Iterator[psycopg.Connection]:
    """A connection to the PostgreSQL test warehouse, with the schemas the suite writes dropped first."""
    try:
        connection = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"no PostgreSQL on 127.0.0.1:{POSTGRES['port']} ({error}): run `make postgres` (make test does it)")
    for schema in ("marts", "staging", "kissmetrics", "kahuna", "kaon"):
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    yield connection
    connection.close()
