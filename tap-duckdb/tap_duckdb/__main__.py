"""``python -m tap_duckdb``: the same command line as ``tap-duckdb``."""

from tap_duckdb.tap import TapDuckDB

TapDuckDB.cli()
