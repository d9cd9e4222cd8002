"""tap-duckdb's tests."""
