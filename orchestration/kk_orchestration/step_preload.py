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

import dagster._core.instance.factory  # noqa: F401  (the step's DagsterInstance.from_ref)
from dagster._core.instance.ref import InstanceRef

# The InstanceRef fields that name a configurable class (module + class) of the instance.
CLASS_FIELDS = (
    "local_artifact_storage_data",
    "storage_data",
    "run_storage_data",
    "event_storage_data",
    "schedule_storage_data",
    "compute_logs_data",
    "scheduler_data",
    "run_coordinator_data",
    "run_launcher_data",
    "secrets_loader_data",
)


def instance_modules(dagster_home: str) -> list[ModuleType]:
    """Import the module of every class the instance in ``dagster_home`` is configured with."""
    ref = InstanceRef.from_dir(dagster_home)
    modules = []
    for name in CLASS_FIELDS:
        data = getattr(ref, name, None)
        if data is not None:
            module = importlib.import_module(data.module_name)
            getattr(module, data.class_name)  # a class the instance names but its module lacks fails here too
            modules.append(module)
    return modules


# Without DAGSTER_HOME Dagster runs on an ephemeral instance (in-memory storage): nothing to import ahead.
PRELOADED = instance_modules(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else []
