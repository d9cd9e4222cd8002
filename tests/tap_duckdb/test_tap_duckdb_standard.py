"""The singer-sdk standard tap tests on the shop file: discovery, sync, records matching their schemas."""

from __future__ import annotations

from singer_sdk.testing import get_tap_test_class

from tap_duckdb.tap import TapDuckDB
from tests.tap_duckdb.tap_duckdb_helpers import shop_file

CONFIG = {"path": str(shop_file())}


def every_stream_selected() -> dict:
    """The discovered catalog with every stream selected (a SQL tap selects none by default, like tap-postgres)."""
    catalog = TapDuckDB(config=CONFIG).catalog_dict
    for entry in catalog["streams"]:
        next(item for item in entry["metadata"] if item["breadcrumb"] == [])["metadata"]["selected"] = True
    return catalog


_StandardTests = get_tap_test_class(TapDuckDB, config=CONFIG, catalog=every_stream_selected())


class TestTapDuckDBStandard(_StandardTests):
    """singer-sdk's standard tap, stream and attribute tests."""
