"""Singer tap for DuckDB database files, on singer-sdk's SQL classes and duckdb-engine."""
