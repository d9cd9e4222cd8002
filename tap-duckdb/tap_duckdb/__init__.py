"""Singer tap for DuckDB database files, on singer-sdk's SQL classes and duckdb-engine."""

__version__ = "0.2.0"
