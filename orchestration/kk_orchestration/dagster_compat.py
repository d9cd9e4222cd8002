"""Every use of a private Dagster member, in one place (pinned to dagster ~= 1.13).

``tests/orchestration/test_dagster_compat.py`` checks each against the installed Dagster (the module and member
exist, with the fields relied on), and that no other module of the code location imports ``dagster._...``: a
Dagster upgrade that moves one fails there, before a run misbehaves.

- ``InstanceRef`` (``dagster._core.instance.ref``): reads ``dagster.yaml`` of a ``DAGSTER_HOME`` without creating
  an instance or opening a connection; its ``*_data`` fields name the configured classes (module + class).
- ``dagster._core.instance.factory``: where a step's ``DagsterInstance.from_ref`` builds the instance; importing it
  ahead (step_preload) spares every forked step the import.
- ``DagsterInstance.event_log_storage.get_pool_limits()`` (its ``PoolLimit`` records: ``name``, ``limit``): the
  limits of the instance's concurrency pools (``dagster instance concurrency get`` prints the same); Dagster has
  no public reader of one pool's limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster._core.instance.factory as instance_factory
from dagster._core.instance.ref import InstanceRef

if TYPE_CHECKING:
    import dagster as dg

#: The InstanceRef fields that name a configurable class (module + class) of the instance.
INSTANCE_CLASS_FIELDS = (
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


def instance_class_names(dagster_home: str) -> list[tuple[str, str]]:
    """``(module, class)`` of every class the instance configured in ``dagster_home`` names."""
    ref = InstanceRef.from_dir(dagster_home)
    named = []
    for field in INSTANCE_CLASS_FIELDS:
        data = getattr(ref, field, None)
        if data is not None:
            named.append((data.module_name, data.class_name))
    return named


def pool_limit(instance: dg.DagsterInstance, pool: str) -> int | None:
    """The number of slots of a concurrency pool (set for it, or the default_limit it got), None if unlimited."""
    for limit in instance.event_log_storage.get_pool_limits():
        if limit.name == pool:
            return int(limit.limit)
    return None


__all__ = ["INSTANCE_CLASS_FIELDS", "InstanceRef", "instance_class_names", "instance_factory", "pool_limit"]
