"""Every ``meltano ...`` command the docs show exists, with the options it uses, in the pinned Meltano.

Commands come from code in the Markdown files (fenced blocks and inline code) of the repository's READMEs and
RELIABILITY.md. Each command's words are walked through Meltano's own command tree (so the 3.x form
``meltano config <plugin> list`` fails: ``config`` takes a subcommand there), each ``--option`` must be one of that
command's, and ``meltano <command> --help`` must run (Meltano's CLI in-process).
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from meltano.cli import cli as meltano_cli

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


def command_path(command: str) -> tuple[list[str], list[str]]:
    """The Meltano subcommand path of a documented command and the problems found on the way."""
    command = re.split(r"\s>>?\s", command)[0]  # a shell redirect ends the command
    words = iter(shlex.split(re.sub(r"<([^<>]+)>", r"'<\1>'", command))[1:])
    current: click.Command = meltano_cli
    path: list[str] = []
    problems = []
    for word in words:
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            options = {opt: param for param in current.params for opt in getattr(param, "opts", [])}
            if name not in options:
                problems.append(f"`meltano {' '.join(path)}` has no option {name}")
            elif "=" not in word and isinstance(options[name], click.Option) and not options[name].is_flag:
                next(words, None)  # the option's value
            continue
        if not isinstance(current, click.Group):
            break  # the command's own arguments
        sub = current.get_command(click.Context(current), word)
        if sub is None:
            problems.append(f"`meltano {' '.join(path)}` has no subcommand {word!r}")
            break
        current, path = sub, [*path, word]
    return path, problems


COMMANDS = documented_commands()


def test_the_docs_show_meltano_commands() -> None:
    assert len(COMMANDS) > 20, COMMANDS
    assert any(command.startswith("meltano config list") for _, command in COMMANDS)


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w} {c[:50]}" for w, c in COMMANDS])
def test_each_documented_command_exists_in_the_pinned_meltano(where: str, command: str) -> None:
    path, problems = command_path(command)
    assert problems == [], f"{where}: `{command}`"
    assert path, f"{where}: `{command}` names no Meltano command"
    assert help_works(tuple(path)), f"{where}: `meltano {' '.join(path)} --help` failed"


@cache
def help_works(path: tuple[str, ...]) -> bool:
    """``meltano <path> --help`` exits 0 (Meltano's own CLI, run in this process)."""
    result = CliRunner().invoke(meltano_cli, [*path, "--help"], obj={"project": None})
    return result.exit_code == 0 and "Usage: " in result.output
