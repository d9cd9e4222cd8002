"""Run ``dbt <args>`` for the Snowflake profile with fakesnow standing in for the Snowflake account.

Runs in the venv ``make snowflake-check-venv`` builds (dbt-snowflake + fakesnow); the profile reads the
dbt-snowflake settings from ``DBT_SNOWFLAKE_*`` variables like the Meltano utility passes them.
Exit code 0 when dbt succeeded.
"""

from __future__ import annotations

import sys

import fakesnow
from dbt.cli.main import dbtRunner


def main(args: list[str]) -> int:
    """``dbt <args>`` against fakesnow; 0 on success."""
    with fakesnow.patch():
        result = dbtRunner().invoke(args)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
