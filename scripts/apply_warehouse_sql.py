"""Apply warehouse/*.sql (in name order) to the PostgreSQL warehouse named by ``WAREHOUSE_SQL_URL``.

Run by Meltano as the ``warehouse-sql:apply`` command (the utility's setting ``url`` arrives as
``WAREHOUSE_SQL_URL``), in the utility's own virtualenv, which has psycopg.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg

WAREHOUSE_SQL_DIR = Path(__file__).resolve().parent.parent / "warehouse"


def main() -> int:
    """Apply every SQL file in one transaction; one clear line on failure (no URL, no password)."""
    url = os.environ.get("WAREHOUSE_SQL_URL")
    if not url:
        print("warehouse-sql: set the `url` setting (WAREHOUSE_SQL_URL) to the PostgreSQL warehouse", file=sys.stderr)
        return 2
    files = sorted(WAREHOUSE_SQL_DIR.glob("*.sql"))
    try:
        with psycopg.connect(url, connect_timeout=10) as connection:
            for path in files:
                connection.execute(path.read_text())
                print(f"warehouse-sql: applied {path.name}", file=sys.stderr)
    except psycopg.Error as error:
        # The driver's message names the server and the problem, never the password.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"warehouse-sql: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
