"""Run a plugin's real console script (a subprocess, as Meltano runs it) and read its Singer output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
TAP_DUCKDB = str(BIN / "tap-duckdb")
TAP_KAHUNA = str(BIN / "tap-kahuna-logs")
TAP_KAON = str(BIN / "tap-kaon-insights")
TARGET_KM = str(BIN / "target-kissmetrics")
PROCESS_TIMEOUT = 300  # generous: a run that hangs fails its test instead of the suite


@dataclass
class PluginRun:
    """What one plugin run printed, with its Singer messages parsed."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record_messages(self) -> list[dict[str, Any]]:
        """The RECORD messages, in order."""
        return [m for m in self.messages if m.get("type") == "RECORD"]

    @property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """The records by stream, each stream's in order (no key for a stream without records)."""
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for message in self.record_messages:
            by_stream.setdefault(message["stream"], []).append(message["record"])
        return by_stream

    def rows(self, stream: str) -> list[dict[str, Any]]:
        """One stream's records, in order."""
        return self.records.get(stream, [])

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE values a tap wrote, in order."""
        return [m["value"] for m in self.messages if m.get("type") == "STATE"]

    @property
    def target_states(self) -> list[dict[str, Any]]:
        """The state values a target wrote: bare JSON objects, one a line."""
        return [m for m in self.messages if "type" not in m]

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The last STATE value, or None."""
        return self.states[-1] if self.states else None

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE value (the test fails here when there is none)."""
        assert self.states, f"no STATE emitted; stderr:\n{self.stderr[-3000:]}"
        return self.states[-1]

    @property
    def error_lines(self) -> list[str]:
        """The ERROR and CRITICAL lines on stderr."""
        return [line for line in self.stderr.splitlines() if "| ERROR" in line or "| CRITICAL" in line]


def json_lines(text: str) -> list[str]:
    """Non-empty lines split on "\\n" only (``str.splitlines`` also splits on U+0085 and U+2028 inside JSON strings)."""
    return [line for line in text.split("\n") if line.strip()]


def parse_messages(stdout: str, *, strict: bool = True) -> list[dict[str, Any]]:
    """The Singer messages of a plugin's stdout: every line must be JSON (``strict``), or every line up to the first
    that is not (a failed or killed process may leave half a line at the end).
    """
    messages = []
    for line in json_lines(stdout):
        try:
            messages.append(json.loads(line))
        except ValueError:
            if strict:
                raise
            break
    return messages


def run_checked(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    label: str,
    explain: Callable[[subprocess.CompletedProcess[str]], str],
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command (meltano, dagster) to its end, output captured as text; with ``check``, a failure fails the
    test with ``label`` and what ``explain`` picks out of the output (a log's end, the failed steps)."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, f"{label} failed:\n{explain(result)}"
    return result


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as JSON and return the path."""
    path.write_text(json.dumps(value))
    return path


def plugin_command(
    executable: str,
    config: dict[str, Any] | None,
    workdir: Path,
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
) -> list[str]:
    """The command line of one run, its config, state and catalog written to numbered files in ``workdir``.

    ``config=None`` runs with ``--config ENV`` (settings from ``<PLUGIN>_<SETTING>`` environment variables).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    serial = len(list(workdir.glob("command-*.txt")))
    config_path = "ENV" if config is None else str(write_json(workdir / f"config-{serial}.json", config))
    command = [executable, "--config", config_path]
    if catalog is not None:
        command += ["--catalog", str(write_json(workdir / f"catalog-{serial}.json", catalog))]
    if state is not None:
        command += ["--state", str(write_json(workdir / f"state-{serial}.json", state))]
    command += list(args)
    (workdir / f"command-{serial}.txt").write_text(" ".join(command))
    return command


def run_plugin(
    executable: str,
    config: dict[str, Any] | None,
    workdir: Path,
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = PROCESS_TIMEOUT,
    parse: bool = True,
) -> PluginRun:
    """Run a plugin's real CLI in ``workdir`` and parse its stdout (``parse=False``: it is no Singer messages, e.g.
    the catalog ``--discover`` prints)."""
    command = plugin_command(executable, config, workdir, state=state, catalog=catalog, args=args)
    completed = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=workdir,
        env={**os.environ, **(env or {})},
    )
    messages = parse_messages(completed.stdout, strict=completed.returncode == 0) if parse else []
    return PluginRun(completed.returncode, completed.stdout, completed.stderr, messages)


def start_plugin(
    executable: str,
    config: dict[str, Any] | None,
    workdir: Path,
    *,
    state: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    stdin: int | None = None,
    stderr: Any = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """Start a plugin's real CLI with its stdout piped to the test (for reading output while it runs)."""
    command = plugin_command(executable, config, workdir, state=state, args=args)
    return subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=workdir)


def run_plugin_killed(
    executable: str,
    config: dict[str, Any],
    workdir: Path,
    *,
    state: dict[str, Any] | None,
    kill_after_lines: int,
    args: tuple[str, ...] = (),
) -> PluginRun:
    """Run a tap and ``kill -9`` it once ``kill_after_lines`` stdout lines were read (or let it finish first).

    The lines read are what a downstream target would have received; what sat in the pipe is lost.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_path = workdir / f"stderr-{len(list(workdir.glob('stderr-*.txt')))}.txt"
    with stderr_path.open("w") as stderr_file:
        process = start_plugin(executable, config, workdir, state=state, args=args, stderr=stderr_file)
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if len(lines) >= kill_after_lines:
                process.send_signal(signal.SIGKILL)
                break
        process.stdout.close()
        returncode = process.wait(timeout=PROCESS_TIMEOUT)
    text = "".join(lines)
    return PluginRun(returncode, text, stderr_path.read_text(), parse_messages(text, strict=False))
