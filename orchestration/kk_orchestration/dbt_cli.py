"""``kk-dbt-postgres``: the dbt executable dagster-dbt runs, which is Meltano's dbt-postgres utility.

dagster-dbt starts ``<executable> build --select ...`` (and ``--version``) with its own ``DBT_TARGET_PATH``
and ``DBT_LOG_PATH`` (one per invocation, where it then reads ``run_results.json``) and ``DBT_LOG_FORMAT=json``
in the environment. This executable runs it as ``meltano invoke dbt-postgres <arguments>`` through
``scripts/isolated_meltano.py``, like every other meltano command of the project: one dbt install (the
utility's), one profile set (its settings, ``.env``, the active environment). The two paths become
``--target-path``/``--log-path`` options, which win over the setting variables a Meltano environment may set
(``DBT_POSTGRES_TARGET_PATH``), so dbt writes its artifacts where dagster-dbt reads them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from kk_orchestration.project import PROJECT_DIR, environment, meltano_command

UTILITY = "dbt-postgres"
# dbt commands that take --target-path and --log-path (not `--version`, `deps`, `clean`, `init`).
PATH_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "compile", "parse", "list", "ls", "show"})
PATH_OPTIONS = (("DBT_TARGET_PATH", "--target-path"), ("DBT_LOG_PATH", "--log-path"))
DBT_PROJECT_DIR = PROJECT_DIR / "transform"


def dbt_arguments(arguments: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The arguments with dagster-dbt's target and log paths as options, for the commands that take them."""
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    if command not in PATH_COMMANDS:
        return list(arguments)
    # dagster-dbt reads a relative path against the dbt project (transform/), dbt against its working directory.
    options = [
        part for name, option in PATH_OPTIONS if env.get(name) for part in (option, str(DBT_PROJECT_DIR / env[name]))
    ]
    return [*arguments, *options]


def invoke_command(arguments: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``meltano --environment <env> invoke dbt-postgres <arguments>`` through the project's launcher."""
    return meltano_command("--environment", environment(), "invoke", UTILITY, *dbt_arguments(arguments, env))


def main() -> None:
    """Replace this process with the meltano command (its output, signals and exit status are dbt's)."""
    command = invoke_command(sys.argv[1:], os.environ)
    os.chdir(PROJECT_DIR)
    os.execv(command[0], command)  # noqa: S606 (an argument list, no shell: meltano takes over this process)


if __name__ == "__main__":
    main()
