"""The DuckDB tap: its settings and its one stream class, on the plugin skeleton and singer-sdk's SQL tap."""

from __future__ import annotations

import typing as t

import duckdb
import sqlalchemy as sa
from singer_sdk.sql import SQLTap
from typing_extensions import override

from tap_duckdb.connector import DUCKDB_SYSTEM_SCHEMAS, first_line
from tap_duckdb.connector_common.errors import ConnectorError
from tap_duckdb.connector_common.plugin import ConnectorTap
from tap_duckdb.connector_common.sdk_compat import CheckedSyncTap
from tap_duckdb.settings import DuckDBSettings
from tap_duckdb.streams import DuckDBStream


class TapDuckDB(ConnectorTap, CheckedSyncTap, SQLTap):
    """Singer tap for DuckDB files: every table and view, full table or incremental, read-only."""

    name = "tap-duckdb"
    settings_class = DuckDBSettings
    config_jsonschema = DuckDBSettings.config_jsonschema()
    default_stream_class = DuckDBStream
    exclude_schemas = list(DUCKDB_SYSTEM_SCHEMAS)
    #: The connector names what to fix in its own errors; DuckDB's other errors are one line too.
    reported_errors: t.ClassVar[tuple[type[BaseException], ...]] = (ConnectorError, sa.exc.DBAPIError, duckdb.Error)

    @override
    def check_before_sync(self) -> None:
        """With no stream selected the run would end with nothing read and exit 0: it stops before reading."""
        if not any(stream.selected for stream in self.streams.values()):
            settings = self.load_settings(DuckDBSettings)
            raise ConnectorError(
                f"nothing to read: no table or view of {settings.path} is selected ({len(self.streams)} discovered "
                "with filter_schemas and filter_tables); check path, those filters and the catalog's selection "
                "(for the replay of the marts: run dbt build first)"
            )

    @classmethod
    @override
    def describe_error(cls, error: BaseException) -> str:
        """DuckDB's own errors on one line, without the SQL statement SQLAlchemy appends or DuckDB's URL hints."""
        if isinstance(error, sa.exc.DBAPIError):
            return first_line(error.orig)
        if isinstance(error, duckdb.Error):
            return first_line(error)
        return str(error)


if __name__ == "__main__":
    TapDuckDB.cli()
