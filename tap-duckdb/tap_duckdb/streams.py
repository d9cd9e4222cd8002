"""The one stream class: a DuckDB table or view, full table or incremental by its replication key."""

from __future__ import annotations

import typing as t
from collections.abc import Iterable
from functools import cached_property

from singer_sdk.helpers.types import Context, Record
from singer_sdk.sql import SQLStream
from typing_extensions import override

from tap_duckdb.connector import DuckDBConnector
from tap_duckdb.connector_common.sdk_compat import hide_sdk_sync_error_line
from tap_duckdb.types import is_json_type, record_value

if t.TYPE_CHECKING:
    from tap_duckdb.tap import TapDuckDB


class DuckDBStream(SQLStream):
    """Rows of one table or view, ordered by the replication key when there is one.

    The SDK builds the query (selected columns; ``replication_key >= bookmark``, ordered by it,
    so rows sharing the bookmark's value are read again rather than lost); the connector copies
    its rows out of the file and releases it before the first record leaves.
    """

    connector_class = DuckDBConnector
    connector: DuckDBConnector
    supports_nulls_first = True

    @override
    def __init__(self, tap: TapDuckDB, catalog_entry: dict, connector: DuckDBConnector | None = None) -> None:
        super().__init__(tap, catalog_entry, connector)
        hide_sdk_sync_error_line(self.logger, tap.reported_errors)  # the fatal-error path prints the one line

    @cached_property
    def _json_columns(self) -> frozenset[str]:
        """Columns of DuckDB type JSON: emitted as the value they hold, not as text."""
        schema_name, table_name = self.fully_qualified_name.schema, self.fully_qualified_name.table
        types = self.connector.column_types(schema_name or "main", table_name)
        return frozenset(name for name, duckdb_type in types.items() if is_json_type(duckdb_type))

    @override
    def get_records(self, context: Context | None) -> Iterable[Record]:
        """The rows of the query, from the connector's copy (the file is already released)."""
        if context:
            raise NotImplementedError(f"Stream '{self.name}' does not support partitioning.")
        label = f"{self.fully_qualified_name.schema}.{self.fully_qualified_name.table}"
        yield from self.connector.read_rows(self.build_query(context=context), label)

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """DuckDB values as JSON values: UUIDs, intervals and blobs as text, JSON columns parsed."""
        json_columns = self._json_columns
        return {name: record_value(value, json_text=name in json_columns) for name, value in row.items()}
