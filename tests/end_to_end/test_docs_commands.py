"""Every ``meltano ...`` command the docs show exists, with the options it uses, in the pinned Meltano.

Commands come from code in the Markdown files (fenced blocks and inline code) of the repository's READMEs and
RELIABILITY.md. Each command's words are walked through Meltano's own command tree (so the 3.x form
``meltano config <plugin> list`` fails: ``config`` takes a subcommand there), each ``--option`` must be one of that
command's, and ``meltano <command> --help`` must run (Meltano's own CLI, in a subprocess).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.meltano

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    {*PROJECT_ROOT.glob("*.md"), *PROJECT_ROOT.glob("*/README.md"), *PROJECT_ROOT.glob("*/*/README.md")}
    - {*PROJECT_ROOT.glob(".*/**/*.md")}
)
_CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.S)
_COMMAND = re.compile(r"(?:^|[\s;&|(])(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(meltano\s[^\n#|;&)]*)")


def documented_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every meltano command in the docs' code."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in _CODE.finditer(text):
            code = match.group(1) or match.group(2)
            line = text[: match.start()].count("\n") + 1
            for command in _COMMAND.finditer(code):
                found.append((f"{path.relative_to(PROJECT_ROOT)}:{line}", command.group(1).strip()))
    return found


# Meltano's command tree and each command's --help, read in a subprocess: importing meltano.cli here would
# reconfigure this process's logging (it sets library loggers' levels) under the other tests.
_TREE_SCRIPT = """
import json, click
from click.testing import CliRunner
from meltano.cli import cli
def walk(command, path):
    options = {opt: bool(getattr(p, "is_flag", False)) for p in command.params for opt in getattr(p, "opts", [])}
    help_ok = CliRunner().invoke(cli, [*path, "--help"], obj={"project": None}).exit_code == 0
    node = {"options": options, "help_ok": help_ok, "subcommands": {}}
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            node["subcommands"][name] = walk(command.get_command(click.Context(command), name), [*path, name])
    return node
print(json.dumps(walk(cli, [])))
"""


@cache
def meltano_tree() -> dict[str, Any]:
    """``{"options": {opt: is_flag}, "help_ok": bool, "subcommands": {name: node}}`` of the pinned Meltano."""
    result = subprocess.run([sys.executable, "-c", _TREE_SCRIPT], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def command_path(command: str) -> tuple[list[str], list[str], bool]:
    """The Meltano subcommand path of a documented command, the problems on the way, and whether --help runs."""
    command = re.split(r"\s>>?\s", command)[0]  # a shell redirect ends the command
    words = iter(shlex.split(re.sub(r"<([^<>]+)>", r"'<\1>'", command))[1:])
    node = meltano_tree()
    path: list[str] = []
    problems = []
    for word in words:
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name not in node["options"]:
                problems.append(f"`meltano {' '.join(path)}` has no option {name}")
            elif "=" not in word and not node["options"][name]:
                next(words, None)  # the option's value
            continue
        if not node["subcommands"]:
            break  # the command's own arguments
        if word not in node["subcommands"]:
            problems.append(f"`meltano {' '.join(path)}` has no subcommand {word!r}")
            break
        node, path = node["subcommands"][word], [*path, word]
    return path, problems, bool(node["help_ok"])


COMMANDS = documented_commands()


def test_the_docs_show_meltano_commands() -> None:
    assert len(COMMANDS) > 20, COMMANDS
    assert any(command.startswith("meltano config list") for _, command in COMMANDS)


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w} {c[:50]}" for w, c in COMMANDS])
def test_each_documented_command_exists_in_the_pinned_meltano(where: str, command: str) -> None:
    path, problems, help_ok = command_path(command)
    assert problems == [], f"{where}: `{command}`"
    only_global_options = all(word.startswith("-") for word in command.split()[1:])  # `meltano --version`
    assert path or only_global_options, f"{where}: `{command}` names no Meltano command"
    assert help_ok, f"{where}: `meltano {' '.join(path)} --help` failed"


def readme_crontab() -> list[list[str]]:
    """The words of each line of the README's ``cron`` block."""
    text = (PROJECT_ROOT / "README.md").read_text()
    (block,) = re.findall(r"```cron\n(.*?)```", text, re.S)
    return [line.split() for line in block.splitlines() if line.strip()]


def test_the_readme_crontab_runs_every_schedule_at_its_interval_through_the_launcher() -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    schedules = {schedule["name"]: schedule for schedule in project["schedules"]}
    jobs = {job["name"]: " ".join(job["tasks"]) for job in project["jobs"]}
    crontab = {}
    for words in readme_crontab():
        interval, command = " ".join(words[:5]), words[5:]
        launcher = command.index("scripts/isolated_meltano.py")
        assert command[launcher + 1 : launcher + 5] == ["--environment", "prod", "schedule", "run"], command
        name = command[launcher + 5]
        assert name not in crontab, f"{name} twice in the crontab"
        crontab[name] = (interval, command[:launcher])
    assert set(crontab) == set(schedules), "the crontab and meltano.yml's schedules differ"
    for name, (interval, prefix) in crontab.items():
        assert interval == schedules[name]["interval"], name
        writes_duckdb = "target-duckdb" in jobs[schedules[name]["job"]] or "dbt-duckdb" in jobs[schedules[name]["job"]]
        # The DuckDB file takes one writer: every job that writes it waits for the others on one lock.
        locked = "flock" in prefix
        assert locked == writes_duckdb, f"{name}: flock {'missing' if writes_duckdb else 'not needed'}"
    locks = {tuple(prefix[prefix.index("flock") :]) for _, prefix in crontab.values() if "flock" in prefix}
    assert len(locks) == 1, locks
