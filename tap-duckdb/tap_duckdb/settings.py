"""tap-duckdb's settings, declared once (the tap's config schema, its --about and the typed settings object)."""

from __future__ import annotations

import duckdb

from tap_duckdb.connector_common.setting_fields import setting
from tap_duckdb.connector_common.settings import PluginSettings

DEFAULT_LOCK_WAIT_SECONDS = 60
DEFAULT_MEMORY_LIMIT = "128MB"


def duckdb_memory_size(value: str) -> str | None:
    """The installed DuckDB's own judgement of a ``memory_limit`` (its accepted units differ between versions)."""
    try:
        duckdb.connect(config={"memory_limit": value}).close()
    except duckdb.Error as error:
        reason = " ".join(str(error).split()).removeprefix("Parser Error: ")
        return f"must be a size DuckDB {duckdb.__version__} accepts, such as 512MB or 2GiB ({reason})"
    return None


class DuckDBSettings(PluginSettings):
    """The tap's settings with their defaults applied."""

    path: str = setting(
        "Path of the DuckDB database file. Opened read-only: never created, written or upgraded.", required=True
    )
    filter_schemas: tuple[str, ...] | None = setting(
        "Only these schemas are discovered (default: every schema of the file)."
    )
    filter_tables: tuple[str, ...] | None = setting(
        "Only these tables and views, as schema.table; * and ? match any characters "
        "(default: every table and view of the discovered schemas)."
    )
    lock_wait_seconds: int = setting(
        "How long to wait for a process that is writing the file (DuckDB has one writer) before failing.",
        default=DEFAULT_LOCK_WAIT_SECONDS,
        minimum=0,
    )
    memory_limit: str = setting(
        "Memory for the copy of the rows being read (a DuckDB size such as 512MB); "
        "beyond it the copy spills to a temporary directory.",
        default=DEFAULT_MEMORY_LIMIT,
        rule=duckdb_memory_size,
    )
