"""The dbt project (transform/) as Dagster assets with dagster-dbt: each model an asset, each dbt test a check.

Upstream of the models are the load assets whose tables their dbt sources read (``kahuna.*`` ->
``kahuna_logs``, ``kaon.external_id_hits`` -> ``kaon_clickstreams``, ``kaon.path_hits`` -> ``kaon_path_hits``,
the other Kaon tables -> ``kaon_weekly_tables``); downstream of the three marts is ``kissmetrics_replay``.
A dbt test of severity ``error`` is a blocking asset check: when it fails, dbt exits non-zero, the step
fails and nothing downstream (the replay) runs.

dbt itself runs as everywhere else in the project, through Meltano's ``dbt-postgres`` utility (its one
install, its profile and settings): dagster-dbt's executable is ``kk-dbt-postgres``
(``kk_orchestration.dbt_cli``). The manifest dagster-dbt reads is parsed by that same dbt, into
``output/dbt/postgres/dagster/``, when the code location loads and the dbt project changed since.

Every dbt build of a warehouse takes a slot of its pool (``dbt_postgres``, limit 1): two builds of one
warehouse never run at once, whichever runs (jobs, asset materializations, schedules) started them. A build
refuses to start in an instance where the pool allows more than one (kk_orchestration.pools).
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at definition time.

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from kk_orchestration.pools import WAREHOUSE_POOLS, require_single_slot
from kk_orchestration.project import PROJECT_DIR, ProjectSettingsError, meltano_error

DBT_PROJECT_DIR = PROJECT_DIR / "transform"
MANIFEST_DIR = PROJECT_DIR / "output" / "dbt" / "postgres" / "dagster"
DBT_EXECUTABLE = "kk-dbt-postgres"
PARSE_TIMEOUT_SECONDS = 300
# The dbt project's own files (not its target/ or logs/): a change to one of them means a new manifest.
PROJECT_FILES = ("dbt_project.yml", "models", "macros", "tests", "profiles/postgres")

DBT_POOL = WAREHOUSE_POOLS["postgres"]

KAHUNA_LOGS = dg.AssetKey("kahuna_logs")
KAON_WEEKLY_TABLES = dg.AssetKey("kaon_weekly_tables")
#: Each dbt source table's load asset, where it is not its source's default (below).
SOURCE_TABLE_LOADS = {
    ("kaon", "external_id_hits"): dg.AssetKey("kaon_clickstreams"),
    ("kaon", "path_hits"): dg.AssetKey("kaon_path_hits"),
}
SOURCE_LOADS = {"kahuna": KAHUNA_LOGS, "kaon": KAON_WEEKLY_TABLES}
#: The marts the replay reads.
MART_NAMES = ("kissmetrics_events", "kissmetrics_people", "kissmetrics_aliases")
MART_KEYS = tuple(dg.AssetKey(["marts", name]) for name in MART_NAMES)


# dagster-dbt also opens a dbt adapter in Dagster's own process, for optional features this project does not use
# (row counts, column lineage). dbt-core is not installed there on purpose (one dbt: Meltano's utility), so
# that fails and dagster-dbt logs a warning with a traceback at every build; the build itself is unaffected.
NO_ADAPTER_WARNING = "An error was encountered when creating a handle to the dbt adapter"


class WithoutAdapterWarning(logging.Filter):
    """Drops dagster-dbt's warning that it cannot open a dbt adapter in Dagster's process (expected here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for that one warning."""
        return not str(record.msg).startswith(NO_ADAPTER_WARNING)


logging.getLogger("dagster.builtin").addFilter(WithoutAdapterWarning())


class ProjectTranslator(DagsterDbtTranslator):
    """dbt sources as the load assets that fill them; models grouped by their folder (staging, marts)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        """A source table's load asset; a model's own name."""
        if dbt_resource_props["resource_type"] == "source":
            source, table = dbt_resource_props["source_name"], dbt_resource_props["name"]
            if (source, table) in SOURCE_TABLE_LOADS:
                return SOURCE_TABLE_LOADS[(source, table)]
            if source in SOURCE_LOADS:
                return SOURCE_LOADS[source]
            raise ProjectSettingsError(
                f"dbt source {source}.{table} has no load asset: add it to kk_orchestration.dbt_models.SOURCE_LOADS"
            )
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """``dbt_staging`` or ``dbt_marts``: the model's folder under models/."""
        fqn = dbt_resource_props.get("fqn") or []
        return f"dbt_{fqn[1]}" if len(fqn) > 2 else "dbt"


TRANSLATOR = ProjectTranslator(
    # Several source tables are loaded by one asset (kahuna_logs loads the four Kahuna tables).
    DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_duplicate_source_asset_keys=True)
)


def dbt_executable() -> str:
    """``kk-dbt-postgres`` beside this Python (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / DBT_EXECUTABLE
    if beside.exists():
        return str(beside)
    found = shutil.which(DBT_EXECUTABLE)
    if found is None:
        raise ProjectSettingsError(
            f"{DBT_EXECUTABLE} is not installed: run `make venv` (it comes with kk-orchestration)"
        )
    return found


def dbt_resource() -> DbtCliResource:
    """dagster-dbt's dbt CLI: Meltano's dbt-postgres utility on the project in transform/."""
    return DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable())


def newest_project_change() -> float:
    """The latest modification time among the dbt project's files."""
    newest = 0.0
    for name in PROJECT_FILES:
        path = DBT_PROJECT_DIR / name
        paths = [path] if path.is_file() else [*path.rglob("*")] if path.is_dir() else []
        newest = max([newest, *(entry.stat().st_mtime for entry in paths if entry.is_file())])
    return newest


@lru_cache(maxsize=1)
def manifest_path() -> Path:
    """The manifest of the dbt project, parsed again (``dbt parse``) if the project changed since.

    One process parses at a time (a lock file): the code location, its runs and their steps load together.
    """
    MANIFEST_DIR.mkdir(parents=True, exist_ok=True)
    manifest = MANIFEST_DIR / "manifest.json"
    with (MANIFEST_DIR / ".parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and manifest.stat().st_mtime >= newest_project_change():
            return manifest
        env = {**os.environ, "DBT_TARGET_PATH": str(MANIFEST_DIR), "DBT_LOG_PATH": str(MANIFEST_DIR / "logs")}
        result = subprocess.run(
            [dbt_executable(), "parse"],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=PARSE_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0 or not manifest.exists():
            raise ProjectSettingsError(
                f"`meltano invoke dbt-postgres parse` failed, so the dbt models cannot be listed:"
                f" {meltano_error(result.stdout + result.stderr)} (fix the dbt project in transform/)"
            )
    return manifest


def build_dbt_models() -> dg.AssetsDefinition:
    """Every model of the dbt project an asset, every dbt test its asset check; one ``dbt build`` per run."""

    @dbt_assets(
        manifest=manifest_path(),
        name="dbt_postgres_models",
        dagster_dbt_translator=TRANSLATOR,
        pool=DBT_POOL,
    )
    def dbt_postgres_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        require_single_slot(context.instance, DBT_POOL)
        yield from dbt.cli(["build"], context=context).stream()

    return dbt_postgres_models


def build_models_in_op(context: dg.OpExecutionContext, dbt: DbtCliResource) -> None:
    """``dbt build`` of every model from an op (the shard jobs): each model's materialization and each test's
    check evaluation, as the assets report them; a failing test fails the op (dbt exits non-zero)."""
    require_single_slot(context.instance, DBT_POOL)
    for event in dbt.cli(["build"], manifest=manifest_path(), dagster_dbt_translator=TRANSLATOR).stream():
        # Outside an asset, dagster-dbt yields only these; log_event records check evaluations too (its type
        # annotation lists the other two only).
        if isinstance(event, dg.AssetCheckEvaluation):
            context.log_event(event)  # type: ignore[arg-type]
        elif isinstance(event, dg.AssetMaterialization | dg.AssetObservation):
            context.log_event(event)
