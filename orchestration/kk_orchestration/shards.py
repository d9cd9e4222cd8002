"""One shard = one ``meltano run --state-id-suffix <key>`` of its partitions, and how it is run and stopped.

Every shard runs through ``scripts/isolated_meltano.py`` (its own ``MELTANO_SYS_DIR_ROOT``), against the
shared PostgreSQL system database (``MELTANO_DATABASE_URI``) with ``MELTANO_STATE_BACKEND_URI=systemdb``,
so Meltano itself refuses a second run of one state ID. Never ``--force``: a shard whose processes this
code stopped or saw killed is marked failed in Meltano's run table (by its run ID), so the partition can
be run again at once; any other run still counts as running until Meltano finds it stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import Field

from kk_orchestration.meltano_logs import records_by_stream
from kk_orchestration.project import PROJECT_DIR, environment, meltano_command

LOG_TAIL_LINES = 40
# What runs a shard: an asset's partition or a step of a shards job (only its logger is used).
ShardContext = dg.OpExecutionContext | dg.AssetExecutionContext
# Shards of one table loading a new warehouse at the same moment race to create its schema, table or
# column (PostgreSQL: `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`).
# Nothing was loaded and no state written: such a shard is simply run again, a few seconds later.
CONCURRENT_DDL_ERRORS = re.compile(
    r'violates unique constraint "pg_(type_typname_nsp|namespace_nspname|class_relname_nsp)_index"'
    r"|psycopg\.errors\.Duplicate(Table|Column|Schema|Object)"
)
DDL_RACE_RETRIES = 3
DDL_RACE_WAIT_SECONDS = 3.0
# Meltano's own summary lines: never the reason a run failed.
_MELTANO_SUMMARY = ("Block run completed", "Extractor failed", "Loader failed", "Run completed", "Need help fixing")
_PLUGIN_LINE = re.compile(r"\] (?P<plugin>(?:tap|target)-[\w-]+) (?P<message>.*)$")
_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Violation): ")
_SAFE_SUFFIX = re.compile(r"[^A-Za-z0-9._-]+")


def state_id_suffix(*parts: str) -> str:
    """A stable state ID suffix naming a partition: its parts joined by ``-``, made safe for file names.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``; when that changed
    anything, 8 hex digits of the key's SHA-256 keep two different keys apart (``a b`` vs ``a_b``).
    """
    key = "-".join(parts)
    safe = _SAFE_SUFFIX.sub("_", key)
    if safe == key:
        return key
    return f"{safe}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"


@dataclass(frozen=True)
class Shard:
    """A partition's ``meltano run``: its tap and target, its settings and its state ID suffix."""

    extractor: str
    loader: str
    state_id_suffix: str
    settings: Mapping[str, str] = field(default_factory=dict)

    def state_id(self, environment_name: str) -> str:
        """The state ID Meltano gives this shard (``dev:tap-x-to-target-y:<suffix>``)."""
        return f"{environment_name}:{self.extractor}-to-{self.loader}:{self.state_id_suffix}"


def stop_process_group(process: subprocess.Popen[str], grace_seconds: float) -> None:
    """SIGTERM the shard's process group (meltano stops its tap and target), then SIGKILL what is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)
    kill_process_group(process.pid)
    process.wait()


def kill_process_group(group_id: int) -> None:
    """SIGKILL every process left in a shard's group (none may outlive the shard)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group_id, signal.SIGKILL)


def release_meltano_run(database_uri: str, run_id: str, reason: str) -> bool:
    """Mark Meltano's run ``run_id`` failed if it still counts as running; True when it did.

    Only for runs whose every process is known to be gone: Meltano would otherwise refuse the next run
    of the state ID for five minutes (until the run goes stale), and ``--force`` would also skip the
    check against a run that really is alive.
    """
    # Meltano's own model of its run table, imported only on this rare path.
    from meltano.core.job import Job, State
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(database_uri)
    try:
        with Session(engine) as session:
            job = session.query(Job).filter(Job.run_id == uuid.UUID(run_id)).one_or_none()
            if job is None or job.state is not State.RUNNING:
                return False
            job.fail(reason)
            job.save(session)
            return True
    finally:
        engine.dispose()


class MeltanoProject(dg.ConfigurableResource):
    """The Meltano project: runs shards and whole jobs through the launcher against the shared system database."""

    project_dir: str = Field(default=str(PROJECT_DIR), description="Directory of meltano.yml.")
    system_database_uri: str = Field(
        description="Meltano's shared system database (runs and state), e.g. postgresql+psycopg://...",
    )
    stop_grace_seconds: float = Field(
        default=30.0, description="Seconds a stopped shard gets to finish its batch before SIGKILL."
    )

    def meltano_environment(self, settings: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every meltano command: the shared system database, state in it."""
        return {
            **os.environ,
            **(settings or {}),
            "MELTANO_ENVIRONMENT": environment(),
            "MELTANO_DATABASE_URI": self.system_database_uri,
            "MELTANO_STATE_BACKEND_URI": "systemdb",
        }

    def run_shard(self, context: ShardContext, shard: Shard) -> dict[str, Any]:
        """Run one shard; returns the materialization's metadata, raises ``dg.Failure`` naming the state ID."""
        state_id = shard.state_id(environment())
        run_id = str(uuid.uuid4())
        arguments = [
            "run",
            "--run-id",
            run_id,
            "--state-id-suffix",
            shard.state_id_suffix,
            shard.extractor,
            shard.loader,
        ]
        context.log.info(f"shard {state_id}: meltano {' '.join(arguments)} (settings: {dict(shard.settings)})")
        lines, seconds = self.run_meltano(context, arguments, shard.settings, label=state_id, run_id=run_id)
        loaded = records_by_stream(lines, shard.loader)
        read = sum(records_by_stream(lines, shard.extractor).values())
        context.log.info(f"shard {state_id}: {sum(loaded.values())} records loaded ({read} read) in {seconds:.1f} s")
        return {
            "state_id": state_id,
            "meltano_run_id": run_id,
            "records": sum(loaded.values()),
            "records_read": read,
            "records_by_stream": dg.MetadataValue.json(loaded),
            "seconds": round(seconds, 2),
        }

    def run_meltano(
        self,
        context: ShardContext,
        arguments: list[str],
        settings: Mapping[str, str] | None = None,
        *,
        label: str,
        run_id: str | None = None,
    ) -> tuple[list[str], float]:
        """Run ``meltano <arguments>`` in its own process group, its log on the step's stderr.

        Returns the log lines and the seconds taken; raises ``dg.Failure`` with the log's end on failure.
        On any exit (failure, a kill, a Dagster termination) the whole process group is stopped, and the
        Meltano run ``run_id`` is marked failed if it was left counting as running.
        """
        started = time.monotonic()
        process = subprocess.Popen(
            meltano_command(*arguments),
            cwd=self.project_dir,
            env=self.meltano_environment(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # one group: stopping the shard stops its tap and target too
        )
        lines: list[str] = []
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        returncode: int | None = None
        try:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stderr.write(line)  # the step's captured log (the UI's stderr tab)
                lines.append(line)
                tail.append(line)
            returncode = process.wait()
        finally:
            if process.poll() is None:  # interrupted (Dagster terminating the run): stop the shard first
                stop_process_group(process, self.stop_grace_seconds)
            kill_process_group(process.pid)
            if (returncode is None or returncode != 0) and run_id is not None:
                reason = f"its processes ended (exit {process.returncode}) and were stopped by Dagster"
                if release_meltano_run(self.system_database_uri, run_id, reason):
                    context.log.warning(f"{label}: Meltano run {run_id} marked failed, so the partition can run again")
        seconds = time.monotonic() - started
        if returncode != 0:
            failure = dg.Failure(
                description=f"{label}: meltano {arguments[0]} failed: {failure_reason(lines, returncode)}",
                metadata={"log_tail": dg.MetadataValue.text("".join(tail))},
            )
            if any(CONCURRENT_DDL_ERRORS.search(line) for line in lines):
                context.log.warning(f"{label}: another shard was creating the same table; running this one again")
                raise dg.RetryRequested(
                    max_retries=DDL_RACE_RETRIES, seconds_to_wait=DDL_RACE_WAIT_SECONDS
                ) from failure
            raise failure
        return lines, seconds


def failure_reason(lines: list[str], returncode: int | None) -> str:
    """Why a meltano command failed, in one line: the signal that killed it, else what the failed plugin said.

    Meltano names the failed side ("Extractor failed" / "Loader failed"); of that plugin's lines, an
    exception line wins (``sqlalchemy.exc.IntegrityError: ...``), else its last line (the taps end with one
    clear line such as ``Kaon Insights kept failing for endpoint 'extid' ...: HTTP 500 after 1 retries``).
    """
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    text = "".join(lines)
    side = "tap" if "Extractor failed" in text else "target" if "Loader failed" in text else ""
    messages = [
        match.group("message").strip()
        for line in lines
        if (match := _PLUGIN_LINE.search(line)) and match.group("plugin").startswith(side) and match.group("message")
    ]
    exceptions = [message for message in messages if _EXCEPTION_LINE.match(message)]
    if exceptions or messages:
        return (exceptions or messages)[-1]
    stripped = [line.strip() for line in lines if line.strip() and not any(s in line for s in _MELTANO_SUMMARY)]
    return (stripped or ["no output"])[-1]
