"""What every step process needs before it runs, imported once by the run's forkserver instead of per step.

A shards run forks each step from a forkserver that imported the code location (``preload_modules`` in
``jobs.shards_run_config``). Each step then opens the Dagster instance, whose storage classes (SQLite or
PostgreSQL, SQLAlchemy, Alembic: some 500 modules) Dagster imports lazily: about 0.45 s of CPU in every
step, and 4 shards starting together pay it at the same moment. Importing them here, in the forkserver,
lets every step inherit them. Only modules are imported: no instance is created and no connection
opened, so nothing is shared across the fork.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from kk_orchestration import dagster_compat  # noqa: F401  (imports the step's DagsterInstance.from_ref ahead)
from kk_orchestration.dagster_compat import instance_class_names


def instance_modules(dagster_home: str) -> list[ModuleType]:
    """Import the module of every class the instance in ``dagster_home`` is configured with."""
    modules = []
    for module_name, class_name in instance_class_names(dagster_home):
        module = importlib.import_module(module_name)
        getattr(module, class_name)  # a class the instance names but its module lacks fails here too
        modules.append(module)
    return modules


# Without DAGSTER_HOME Dagster runs on an ephemeral instance (in-memory storage): nothing to import ahead.
PRELOADED = instance_modules(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else []
