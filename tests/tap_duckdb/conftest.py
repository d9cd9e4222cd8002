"""Each test reads its own copy of the shop file (tap_duckdb_helpers.make_shop)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tap_duckdb.tap_duckdb_helpers import shop_file


@pytest.fixture(scope="session", autouse=True)
def _remove_shop_file() -> Iterator[None]:
    yield
    if shop_file.cache_info().currsize:
        shutil.rmtree(shop_file().parent, ignore_errors=True)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """This test's own copy of the shop file."""
    path = tmp_path / "shop.duckdb"
    shutil.copyfile(shop_file(), path)
    return path
