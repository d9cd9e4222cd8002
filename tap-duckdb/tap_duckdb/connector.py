"""The connection to a DuckDB file: attached read-only, for as short a time as possible.

The tap runs its own in-memory DuckDB (duckdb-engine) and ATTACHes the file with READ_ONLY only
while it reads the catalog or copies the rows a stream will emit; then it DETACHes it and emits
the rows from the copy. So the tap never writes the file (no storage upgrade, no checkpoint) and
holds DuckDB's file lock for seconds, not for the whole (target-paced) sync: a loader or dbt can
open the file for writing again while the rows are still being sent.

The catalog comes from DuckDB's own ``information_schema`` and ``duckdb_constraints()`` rather
than SQLAlchemy reflection, which duckdb-engine emulates through ``pg_catalog`` and which fails on
some DuckDB versions and types.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from singer_sdk.singerlib import CatalogEntry, MetadataMapping, Schema
from singer_sdk.sql import SQLConnector
from sqlalchemy.sql import selectable
from typing_extensions import override

from tap_duckdb.connector_common.errors import ConnectorError
from tap_duckdb.connector_common.plugin import settings_from_config
from tap_duckdb.connector_common.sdk_compat import sql_engine
from tap_duckdb.settings import DuckDBSettings
from tap_duckdb.types import column_schema

#: The file is attached under its own name (its stem, as DuckDB names a database it opens), so that
#: views in the file that name their catalog still resolve; this name only if the stem is taken.
FALLBACK_CATALOG = "tap_duckdb_source"
RESERVED_CATALOGS = ("memory", "temp", "system", "main", "")
SPOOL = "tap_duckdb_rows"
PAGE_ROWS = 10_000
LOCK_RETRY_SECONDS = 0.5
DUCKDB_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")

_COLUMNS_SQL = """
SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable
FROM information_schema.columns AS c
JOIN information_schema.tables AS t
  ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_catalog = $1
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""
_KEYS_SQL = """
SELECT schema_name, table_name, constraint_type, constraint_column_names
FROM duckdb_constraints()
WHERE database_name = $1 AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')
ORDER BY constraint_type, constraint_index
"""


class DuckDBFileError(ConnectorError):
    """A problem with the DuckDB file the user can fix; the message is one line naming the fix."""


class DuckDBConnector(SQLConnector):
    """Reads one DuckDB file (setting ``path``) through an in-memory DuckDB that attaches it read-only."""

    @property
    @override
    def logger(self) -> logging.Logger:
        """The tap's logger (the SDK's connectors log as "sqlconnector")."""
        return logging.getLogger("tap-duckdb")

    @cached_property
    def settings(self) -> DuckDBSettings:
        """The tap's settings (its config was parsed and checked before the connector was made)."""
        return settings_from_config(DuckDBSettings, self.config)

    @property
    def path(self) -> str:
        """The DuckDB file, as configured."""
        return self.settings.path

    @property
    def catalog(self) -> str:
        """The name the file is attached under."""
        stem = Path(display_path(self.path)).stem
        return FALLBACK_CATALOG if stem.lower() in RESERVED_CATALOGS else stem

    @property
    def _quoted_catalog(self) -> str:
        return '"' + self.catalog.replace('"', '""') + '"'

    @override
    def get_sqlalchemy_url(self, config: dict[str, Any]) -> str:
        """The tap's own in-memory database; the file is attached to it when needed."""
        return "duckdb:///:memory:"

    @override
    def create_engine(self) -> sa.Engine:
        """A fresh in-memory DuckDB per connection (NullPool), bounded in memory."""
        config = {"memory_limit": self.settings.memory_limit}
        return sa.create_engine(self.sqlalchemy_url, poolclass=sa.pool.NullPool, connect_args={"config": config})

    # --- the file, attached -----------------------------------------------------------

    @contextmanager
    def attached(self) -> Iterator[sa.Connection]:
        """A connection whose default catalog is the file, attached read-only; detached on exit."""
        with sql_engine(self).connect() as connection:
            with self._attached_to(connection):
                yield connection
            connection.commit()

    @contextmanager
    def _attached_to(self, connection: sa.Connection) -> Iterator[None]:
        """Attach the file to this connection as its default catalog for the block."""
        self._attach(connection)
        try:
            connection.exec_driver_sql(f"USE {self._quoted_catalog}")
            yield
        finally:
            connection.exec_driver_sql("USE memory")
            connection.exec_driver_sql(f"DETACH {self._quoted_catalog}")

    def _attach(self, connection: sa.Connection) -> None:
        """ATTACH the file READ_ONLY, waiting up to ``lock_wait_seconds`` while another process writes it."""
        wait = self.settings.lock_wait_seconds
        deadline = time.monotonic() + wait
        quoted_path = self.path.replace("'", "''")
        while True:
            try:
                connection.exec_driver_sql(f"ATTACH '{quoted_path}' AS {self._quoted_catalog} (READ_ONLY)")
                return
            except sa.exc.DBAPIError as error:
                connection.rollback()  # DuckDB aborts the transaction of a failed statement
                if not _is_lock_conflict(error.orig) or time.monotonic() >= deadline:
                    raise DuckDBFileError(describe_open_error(self.path, error.orig, wait)) from None
            time.sleep(LOCK_RETRY_SECONDS)

    # --- catalog ----------------------------------------------------------------------

    @override
    def discover_catalog_entries(
        self, *, exclude_schemas: Any = (), reflect_indices: bool = True
    ) -> list[dict[str, Any]]:
        """One stream per table and view of the chosen schemas and tables (``filter_schemas``, ``filter_tables``)."""
        with self.attached() as connection:
            columns = connection.exec_driver_sql(_COLUMNS_SQL, (self.catalog,)).fetchall()
            constraints = connection.exec_driver_sql(_KEYS_SQL, (self.catalog,)).fetchall() if reflect_indices else []
        keys: dict[tuple[str, str], list[str]] = {}
        for schema_name, table_name, _, column_names in constraints:
            keys.setdefault((schema_name, table_name), list(column_names))  # primary key first, then unique
        tables: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
        views: set[tuple[str, str]] = set()
        excluded = set(exclude_schemas) | set(DUCKDB_SYSTEM_SCHEMAS)
        for schema_name, table_name, table_type, column_name, data_type, is_nullable in columns:
            if schema_name in excluded or not self._selected(schema_name, table_name):
                continue
            tables[schema_name, table_name].append((column_name, data_type, is_nullable != "NO"))
            if table_type == "VIEW":
                views.add((schema_name, table_name))
        return [
            self._catalog_entry(schema_name, table_name, table_columns, keys.get((schema_name, table_name), []), views)
            for (schema_name, table_name), table_columns in tables.items()
        ]

    def _selected(self, schema_name: str, table_name: str) -> bool:
        schemas = self.settings.filter_schemas
        if schemas and schema_name not in schemas:
            return False
        patterns = self.settings.filter_tables
        qualified = f"{schema_name}.{table_name}"
        return not patterns or any(fnmatch.fnmatchcase(qualified, pattern) for pattern in patterns)

    def _catalog_entry(
        self,
        schema_name: str,
        table_name: str,
        columns: list[tuple[str, str, bool]],
        key_properties: list[str],
        views: set[tuple[str, str]],
    ) -> dict[str, Any]:
        singer_decimal = bool(self.config.get("use_singer_decimal"))
        properties = {
            name: column_schema(
                data_type, nullable=nullable and name not in key_properties, singer_decimal=singer_decimal
            )
            for name, data_type, nullable in columns
        }
        schema = {"type": "object", "properties": properties, "required": list(key_properties)}
        stream_id = f"{schema_name}-{table_name}"
        return CatalogEntry(
            tap_stream_id=stream_id,
            stream=stream_id,
            table=table_name,
            key_properties=key_properties,
            schema=Schema.from_dict(schema),
            is_view=(schema_name, table_name) in views,
            replication_method="FULL_TABLE",
            metadata=MetadataMapping.get_standard_metadata(
                schema_name=schema_name,
                schema=schema,
                replication_method="FULL_TABLE",
                key_properties=key_properties,
                valid_replication_keys=None,  # chosen by the user (replication-key metadata)
            ),
            database=None,
            row_count=None,
            stream_alias=None,
            replication_key=None,
        ).to_dict()

    @cache  # noqa: B019 (one connector per tap run; the file's columns do not change during it)
    def column_types(self, schema_name: str, table_name: str) -> dict[str, str]:
        """The DuckDB type of every column of a table or view, in column order."""
        with self.attached() as connection:
            rows = connection.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_catalog = $1 AND table_schema = $2 AND table_name = $3 ORDER BY ordinal_position",
                (self.catalog, schema_name, table_name),
            ).fetchall()
        if not rows:
            raise DuckDBFileError(
                f"{schema_name}.{table_name} is not in {display_path(self.path)}: run discovery again"
                " (meltano select tap-duckdb --list) and select an existing table"
            )
        return {str(name): str(duckdb_type) for name, duckdb_type in rows}

    @override
    def get_table_columns(self, full_table_name: Any, column_names: list[str] | None = None) -> dict[str, sa.Column]:
        """The table's columns from DuckDB's catalog; untyped, so values arrive as DuckDB returns them."""
        _, schema_name, table_name = self.parse_full_table_name(full_table_name)
        wanted = {name.casefold() for name in column_names} if column_names else None
        return {
            name: sa.Column(name, sa.types.NullType())
            for name in self.column_types(schema_name or "main", table_name)
            if wanted is None or name.casefold() in wanted
        }

    # --- rows -------------------------------------------------------------------------

    def read_rows(self, query: selectable.Select, table_label: str) -> Iterator[dict[str, Any]]:
        """Copy the query's rows out of the file, release the file, then yield them in the query's order.

        The copy lives in the tap's in-memory DuckDB; past ``memory_limit`` it spills to a temporary
        directory that is removed when the rows have been read.
        """
        with tempfile.TemporaryDirectory(prefix="tap-duckdb-") as spill, sql_engine(self).connect() as connection:
            connection.exec_driver_sql(f"SET temp_directory = '{spill}'")
            connection.exec_driver_sql("SET enable_progress_bar = false")  # DuckDB draws one on stderr for long copies
            compiled = query.compile(connection)
            parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
            started = time.monotonic()
            with self._attached_to(connection):
                try:
                    connection.exec_driver_sql(f"CREATE TEMP TABLE {SPOOL} AS {compiled.string}", parameters)
                except sa.exc.DBAPIError as error:
                    raise DuckDBFileError(
                        f"cannot read {table_label} from {display_path(self.path)}: {first_line(error.orig)}"
                    ) from None
            connection.commit()  # the transaction that read the file holds it until it ends
            rows = connection.exec_driver_sql(f"SELECT count(*) FROM temp.{SPOOL}").scalar_one()  # noqa: S608
            self.logger.info(
                "Copied %d rows of %s in %.1f s; %s is released",
                rows,
                table_label,
                time.monotonic() - started,
                display_path(self.path),
            )
            # Page by page (rowid is the copy's order, 0..rows-1): only one page at a time in Python's memory.
            for start in range(0, rows, PAGE_ROWS):
                page = connection.exec_driver_sql(
                    f"SELECT * FROM temp.{SPOOL} WHERE rowid >= $1 AND rowid < $2 ORDER BY rowid",  # noqa: S608
                    (start, start + PAGE_ROWS),
                )
                for row in page.mappings():
                    yield dict(row)


# --- one-line errors ------------------------------------------------------------------


def _is_lock_conflict(error: BaseException | None) -> bool:
    return isinstance(error, duckdb.IOException) and "Could not set lock on file" in str(error)


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?\(PID \d+\))")


def describe_open_error(path: str, error: BaseException | None, lock_wait_seconds: int) -> str:
    """What went wrong opening the file, and what to do, in one line."""
    text = first_line(error)
    shown = display_path(path)
    if "database does not exist" in text or "No such file" in text:
        return f"{shown} does not exist: set `path` to a DuckDB database file (tap-duckdb never creates one)"
    if "not a valid DuckDB database file" in text:
        return f"{shown} is not a DuckDB database file: check `path`"
    if "Could not set lock on file" in text:
        match = _LOCK_HOLDER.search(text)
        holder = match.group(1) if match else "another process"
        return (
            f"{shown} is open for writing by {holder} and was still locked after "
            f"{lock_wait_seconds} s: run the replay after the load and dbt build finish, or raise lock_wait_seconds"
        )
    if "newer version of DuckDB" in text or "we can only read version" in text:
        return (
            f"{shown} was written by a newer DuckDB than this tap's duckdb {duckdb.__version__}: install "
            "tap-duckdb with the duckdb version of the file's writers (pin it in the plugin's pip_url)"
        )
    return f"cannot open {shown}: {text}"


def display_path(path: str) -> str:
    """The path without a query string (a MotherDuck-style ``?token=`` must never be shown)."""
    return path.split("?", 1)[0]


def first_line(error: BaseException | None) -> str:
    """An exception's message on one line, without DuckDB's URL hints."""
    text = " ".join(str(error).split()) if error is not None else ""
    return text.split(" See also https://", 1)[0] or type(error).__name__
