"""Every setting of tap-duckdb, declared once (the tap's config schema and its --about)."""

from __future__ import annotations

from singer_sdk import typing as th

DEFAULT_LOCK_WAIT_SECONDS = 60
DEFAULT_MEMORY_LIMIT = "128MB"

SETTINGS = th.PropertiesList(
    th.Property(
        "path",
        th.StringType,
        required=True,
        description="Path of the DuckDB database file. Opened read-only: never created, written or upgraded.",
    ),
    th.Property(
        "filter_schemas",
        th.ArrayType(th.StringType),
        description="Only these schemas are discovered (default: every schema of the file).",
    ),
    th.Property(
        "filter_tables",
        th.ArrayType(th.StringType),
        description=(
            "Only these tables and views, as schema.table; * and ? match any characters "
            "(default: every table and view of the discovered schemas)."
        ),
    ),
    th.Property(
        "lock_wait_seconds",
        th.IntegerType(minimum=0),
        default=DEFAULT_LOCK_WAIT_SECONDS,
        description="How long to wait for a process that is writing the file (DuckDB has one writer) before failing.",
    ),
    th.Property(
        "memory_limit",
        th.StringType,
        default=DEFAULT_MEMORY_LIMIT,
        description=(
            "Memory for the copy of the rows being read (a DuckDB size such as 512MB); "
            "beyond it the copy spills to a temporary directory."
        ),
    ),
).to_dict()
