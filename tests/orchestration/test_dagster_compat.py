"""The private Dagster members ``kk_orchestration.dagster_compat`` relies on, checked against the installed Dagster,
and no ``dagster._`` import anywhere else in the code location."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import dagster as dg

from kk_orchestration import dagster_compat

PACKAGE = Path(dagster_compat.__file__).parent


def test_instance_ref_reads_a_dagster_home_and_names_its_classes(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: QueuedRunCoordinator\n"
    )
    named = dagster_compat.instance_class_names(str(tmp_path))
    assert ("dagster._core.run_coordinator", "QueuedRunCoordinator") in named, "the configured class"
    assert ("dagster._core.storage.runs", "SqliteRunStorage") in named, "a default storage class"
    assert len(named) == len(set(named)) >= 8
    fields = inspect.signature(dagster_compat.InstanceRef).parameters
    assert set(dagster_compat.INSTANCE_CLASS_FIELDS) <= set(fields), "every field read exists on InstanceRef"


def test_the_factory_module_builds_a_steps_instance_from_its_ref() -> None:
    assert callable(dagster_compat.instance_factory.create_instance_from_ref)
    assert dagster_compat.instance_factory.InstanceRef is dagster_compat.InstanceRef


def test_no_module_but_dagster_compat_imports_a_private_dagster_module() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "dagster_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            offenders += [f"{path.name}: {name}" for name in names if name.startswith("dagster._")]
    assert offenders == []


def test_pool_limit_reads_what_dagster_instance_concurrency_set_wrote() -> None:
    with dg.instance_for_test() as instance:
        assert dagster_compat.pool_limit(instance, "dbt_postgres") is None, "a pool nobody limited"
        instance.event_log_storage.set_concurrency_slots("dbt_postgres", 1)
        instance.event_log_storage.set_concurrency_slots("meltano_shards", 3)
        assert dagster_compat.pool_limit(instance, "dbt_postgres") == 1
        assert dagster_compat.pool_limit(instance, "meltano_shards") == 3
