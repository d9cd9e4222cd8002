#!/usr/bin/env python3
"""Run ``meltano`` with a private system directory, so runs that share a plugin can overlap safely.

    scripts/isolated_meltano.py run kahuna-to-warehouse
    scripts/isolated_meltano.py --environment prod schedule run kahuna-to-postgres-hourly
    scripts/isolated_meltano.py --module kk_orchestration.meltano_config --environment dev tap-kahuna-logs

``--module M`` runs ``python -m M <arguments>`` (meltano's Python) instead of meltano, the same way: for
tools that run Meltano's command line in-process (several ``config print`` in one start-up).

Meltano writes each run's files (the tap's discovered catalog ``tap.properties.json``, its config and
state files) under ``.meltano/run/<plugin>/``: two runs of one tap at the same moment rewrite each
other's catalog (``Invalid catalog``, ``No such file or directory``). This launcher gives every run
its own ``MELTANO_SYS_DIR_ROOT`` in a temporary directory: the installed plugins (``extractors/``,
``loaders/``, ...) are symbolic links to the shared ``.meltano/``; ``run/`` is private and removed
afterwards. Meltano's system database stays shared: ``MELTANO_DATABASE_URI`` if set
(PostgreSQL for shards, see orchestration/README.md), else the project's ``.meltano/meltano.db``,
so Meltano's guard against two runs of one state ID still holds.

In the ``dev`` environment the port variables move the local services every plugin of that environment talks to:
``KK_KAON_PORT``, ``KK_KAHUNA_PORT``, ``KK_KISSMETRICS_PORT`` (the emulators, 8001-8003) and ``KK_PG_PORT`` (the
local PostgreSQL, 55432) become the plugins' own setting variables (``TAP_KAON_INSIGHTS_API_URL``, ...), unless
those are set already. Meltano itself has no default for a variable named in ``meltano.yml`` (and its own ``env:``
would win over the terminal's), so the launcher, which every job runs through, does it.

Standard library only; used alike by the Makefile, cron lines and the Dagster code location.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Entries of the shared system directory a run must not share: its run files and the database file.
PRIVATE_ENTRIES = frozenset({"run", "meltano.db", "meltano.db-journal", "meltano.db-wal", "meltano.db-shm"})
# Commands that change the shared installation: run them with plain meltano (make meltano-install).
REFUSED_COMMANDS = frozenset({"install", "add", "remove", "lock", "upgrade"})
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# meltano's global options that take a value as the next argument (`--environment prod run ...`).
VALUED_OPTIONS = frozenset({"--environment", "-e", "--cwd", "--log-level", "--log-config", "--log-format"})


# Each port variable of the dev set-up, its default (meltano.yml's dev values) and the settings it moves.
DEV_PORT_SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "KK_KAON_PORT": (8001, {"TAP_KAON_INSIGHTS_API_URL": "http://127.0.0.1:{port}/api"}),
    "KK_KAHUNA_PORT": (8002, {"TAP_KAHUNA_LOGS_API_URL": "http://127.0.0.1:{port}/api/kahunalogs"}),
    "KK_KISSMETRICS_PORT": (8003, {"TARGET_KISSMETRICS_TRACKING_URL": "http://127.0.0.1:{port}"}),
    "KK_PG_PORT": (
        55432,
        {name: "{port}" for name in ("TAP_POSTGRES_PORT", "TARGET_POSTGRES_PORT", "DBT_POSTGRES_PORT")},
    ),
}
DEV_ENVIRONMENT = "dev"


def meltano_subcommand(arguments: Sequence[str]) -> str:
    """The subcommand of a meltano command line: the first argument that is no global option or its value."""
    skip_next = False
    for argument in arguments:
        if skip_next:
            skip_next = False
        elif argument in VALUED_OPTIONS:
            skip_next = True
        elif not argument.startswith("-"):
            return argument
    return ""


def active_environment(arguments: Sequence[str], environ: Mapping[str, str]) -> str:
    """The Meltano environment a command line runs in: ``--environment``/``-e``, else ``MELTANO_ENVIRONMENT``, else
    meltano.yml's ``default_environment``."""
    value_of = ""
    for argument in arguments:
        if value_of:
            if value_of in {"--environment", "-e"}:
                return argument
            value_of = ""
        elif argument in VALUED_OPTIONS:
            value_of = argument
        elif argument.startswith("--environment="):
            return argument.partition("=")[2]
        elif not argument.startswith("-"):
            break  # the subcommand: its own options follow
    if environ.get("MELTANO_ENVIRONMENT"):
        return environ["MELTANO_ENVIRONMENT"]
    project = Path(environ.get("MELTANO_PROJECT_ROOT") or PROJECT_ROOT) / "meltano.yml"
    found = re.search(r"^default_environment:\s*(\S+)", project.read_text(), re.MULTILINE) if project.exists() else None
    return found.group(1).strip("'\"") if found else ""


def dev_port_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The plugin settings the port variables set, each only where the setting itself is not set already.

    A bad value stops with one line naming the variable.
    """
    settings: dict[str, str] = {}
    for variable, (default, moved) in DEV_PORT_SETTINGS.items():
        text = environ.get(variable, "").strip()
        unset = [name for name in moved if not environ.get(name)]
        if not text or not unset:
            continue  # nothing to move (the demo sets the URLs itself, its KK_*_PORT=0 meaning any free port)
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise SystemExit(f"isolated_meltano: {variable}={text!r} is not a port: set it to a number from 1 to 65535")
        if int(text) == default:
            continue
        settings.update({name: moved[name].format(port=int(text)) for name in unset})
    return settings


def shared_sys_dir(environ: Mapping[str, str]) -> Path:
    """The installed system directory: ``MELTANO_SYS_DIR_ROOT`` as given, or the project's ``.meltano``."""
    return Path(environ.get("MELTANO_SYS_DIR_ROOT") or PROJECT_ROOT / ".meltano").resolve()


def meltano_executable() -> str:
    """``MELTANO_EXECUTABLE``, else the ``meltano`` beside this Python or in the project's venv, else on PATH."""
    configured = os.environ.get("MELTANO_EXECUTABLE")
    if configured:
        return configured
    for candidate in (Path(sys.executable).parent / "meltano", PROJECT_ROOT / ".venv" / "bin" / "meltano"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("meltano")
    if not found:
        raise SystemExit("isolated_meltano: no meltano found: run `make venv` or set MELTANO_EXECUTABLE")
    return found


def make_private_sys_dir(shared: Path) -> Path:
    """A new temporary system directory linking every shared entry but the run files and the database."""
    if not (shared / "extractors").is_dir() and not (shared / "loaders").is_dir():
        raise SystemExit(f"isolated_meltano: no installed plugins in {shared}: run `make meltano-install` first")
    private = Path(tempfile.mkdtemp(prefix="meltano-run-"))
    for entry in shared.iterdir():
        if entry.name not in PRIVATE_ENTRIES:
            (private / entry.name).symlink_to(entry)
    return private


def ensure_system_database(database: Path, environment: Mapping[str, str]) -> None:
    """Create the project's SQLite system database once, before runs that would all migrate it at once.

    Two meltano commands starting on a database that does not exist yet both create its tables and one
    fails (``MigrationError``). A database given by ``MELTANO_DATABASE_URI`` is the operator's to create
    (``meltano upgrade database``, orchestration/README.md).
    """
    if database.exists():
        return
    directory = os.open(database.parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)  # one launcher migrates; the others wait, then find it
        if not database.exists():
            subprocess.run(
                [meltano_executable(), "upgrade", "database"],
                cwd=PROJECT_ROOT,
                env=dict(environment),
                stdout=subprocess.DEVNULL,
                check=True,
            )
    finally:
        os.close(directory)  # releases the lock


def isolated_environment(environ: Mapping[str, str], shared: Path, private: Path) -> dict[str, str]:
    """The run's environment: the private system directory, the shared system database, the venv on PATH."""
    venv_bin = str(Path(meltano_executable()).parent)
    return {
        **environ,
        "MELTANO_SYS_DIR_ROOT": str(private),
        "MELTANO_DATABASE_URI": environ.get("MELTANO_DATABASE_URI") or f"sqlite:///{shared / 'meltano.db'}",
        "PATH": f"{venv_bin}{os.pathsep}{environ.get('PATH', '')}",  # meltano's venv: it finds uv there
    }


def meltano_python() -> str:
    """The Python that meltano runs on (its venv's), for ``--module``."""
    executable = Path(meltano_executable())
    candidate = executable.parent / "python"
    return str(candidate) if candidate.exists() else sys.executable


def run_meltano(arguments: Sequence[str], environ: Mapping[str, str], module: str | None = None) -> int:
    """Run ``meltano <arguments>`` (``module``: ``python -m <module> <arguments>``) in the project with a
    private system directory; returns its exit code."""
    command = "" if module else meltano_subcommand(arguments)
    if command in REFUSED_COMMANDS:
        raise SystemExit(
            f"isolated_meltano: `meltano {command}` changes the shared installation: run it with plain meltano"
            " (`make meltano-install`), not through this launcher"
        )
    if active_environment(arguments, environ) == DEV_ENVIRONMENT:
        environ = {**environ, **dev_port_settings(environ)}
    project_root = Path(environ.get("MELTANO_PROJECT_ROOT") or PROJECT_ROOT)
    # The project's outputs (the dev DuckDB warehouse, dbt's artifacts): target-duckdb creates no folder itself.
    (project_root / "output").mkdir(exist_ok=True)
    shared = shared_sys_dir(environ)
    private = make_private_sys_dir(shared)
    try:
        environment = isolated_environment(environ, shared, private)
        if not environ.get("MELTANO_DATABASE_URI"):
            ensure_system_database(shared / "meltano.db", environment)
        program = [meltano_python(), "-m", module] if module else [meltano_executable()]
        child = subprocess.Popen(
            [*program, *arguments],
            cwd=project_root,
            env=environment,
        )

        def forward(signum: int, _frame: FrameType | None) -> None:
            child.send_signal(signum)  # meltano stops its tap and target gracefully on SIGTERM

        for forwarded in FORWARDED_SIGNALS:
            signal.signal(forwarded, forward)
        return child.wait()
    finally:
        shutil.rmtree(private, ignore_errors=True)


def main() -> None:
    """Command line: the arguments are meltano's."""
    usage = "usage: scripts/isolated_meltano.py <meltano arguments> | --module <python module> <its arguments>"
    if len(sys.argv) < 2 or sys.argv[1] in {"-h", "--help"}:
        print(__doc__.strip().splitlines()[0] + "\n\n" + usage)
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    arguments, module = sys.argv[1:], None
    if arguments[0] == "--module":
        if len(arguments) < 2:
            raise SystemExit(f"isolated_meltano: --module needs a module name\n{usage}")
        module, arguments = arguments[1], arguments[2:]
    returncode = run_meltano(arguments, os.environ, module)
    # A child killed by a signal: exit as a shell would (128 + signal), so callers see what happened.
    raise SystemExit(128 - returncode if returncode < 0 else returncode)


if __name__ == "__main__":
    main()
