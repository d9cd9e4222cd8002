"""The DuckDB tap: its settings, its stream class, and one-line fatal errors."""

from __future__ import annotations

import logging
import sys

import duckdb
import sqlalchemy as sa
from singer_sdk.sql import SQLTap

from tap_duckdb.connector import DUCKDB_SYSTEM_SCHEMAS, TapDuckDBError, first_line
from tap_duckdb.settings import SETTINGS
from tap_duckdb.streams import DuckDBStream


class TapDuckDB(SQLTap):
    """Singer tap for DuckDB files: every table and view, full table or incremental, read-only."""

    name = "tap-duckdb"
    config_jsonschema = SETTINGS
    default_stream_class = DuckDBStream
    exclude_schemas = list(DUCKDB_SYSTEM_SCHEMAS)


def main() -> None:
    """The console script: the tap's CLI; a problem with the file ends it with one line and exit code 1."""
    try:
        TapDuckDB.cli()
    except TapDuckDBError as error:
        _stop(str(error))
    except sa.exc.DBAPIError as error:
        _stop(first_line(error.orig))
    except duckdb.Error as error:
        _stop(first_line(error))


def _stop(reason: str) -> None:
    logging.getLogger("tap-duckdb").error("tap-duckdb stopped: %s", reason)
    sys.exit(1)


if __name__ == "__main__":
    main()
