"""Each plugin README's "Use it in your own Meltano project" commands, run as written in new Meltano projects.

The repository's public host is out of reach here, so two things stand in for it and nothing else changes: the raw
URL prefix is a local HTTP server serving the definition files, and the definitions' ``git+https://...`` pip_url
is a ``git+file://`` URL of a copy of this checkout committed to a local git repository.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scripts.plugin_definitions import RAW_PREFIX, REPOSITORY

pytestmark = [pytest.mark.slow, pytest.mark.meltano]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_BIN = Path(sys.executable).parent
PLUGINS = ("tap-kaon-insights", "tap-kahuna-logs", "tap-duckdb", "target-kissmetrics")
SECTION = "## Use it in your own Meltano project"


def readme_blocks(plugin: str) -> list[list[str]]:
    """The bash blocks of the README's section, as lists of command lines."""
    text = (PROJECT_ROOT / plugin / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
    ]


def bash(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One README line in bash, with the dev venv (Meltano, uv, pip) first on PATH."""
    env = {**os.environ, "PATH": f"{DEV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this checkout's plugins and shared code, committed to a local git repository."""
    root = tmp_path_factory.mktemp("checkout") / "kaon-kahuna-kissmetrics"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "dist", "build")
    for folder in ("connector-common", *PLUGINS):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, symlinks=True, ignore=ignore)
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "checkout"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *command], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def raw_host(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local stand-in for the raw host: the definitions, their pip_url a git+file URL of ``checkout``."""
    served = tmp_path_factory.mktemp("raw")
    for plugin in PLUGINS:
        text = (PROJECT_ROOT / plugin / "meltano-plugin.yml").read_text()
        assert f"pip_url: git+{REPOSITORY}.git#subdirectory={plugin}" in text
        (served / plugin).mkdir()
        (served / plugin / "meltano-plugin.yml").write_text(
            text.replace(f"git+{REPOSITORY}.git", f"git+file://{checkout}")
        )
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def new_project(where: Path) -> Path:
    where.mkdir(parents=True)
    bash("meltano init project --no_usage_stats", where)
    return where / "project"


def installed_pip_url(project: Path, plugin: str) -> str:
    meltano_yml = yaml.safe_load((project / "meltano.yml").read_text())
    (definition,) = [p for kind in meltano_yml["plugins"].values() for p in kind if p["name"] == plugin]
    return str(definition["pip_url"])


@pytest.mark.parametrize("plugin", PLUGINS)
def test_readme_commands_add_the_plugin_from_git_and_from_a_wheel(
    plugin: str, checkout: Path, raw_host: str, tmp_path: Path
) -> None:
    from_git, from_wheel = readme_blocks(plugin)

    project = new_project(tmp_path / "git")
    outputs = [bash(line.replace(RAW_PREFIX, raw_host), project) for line in from_git]
    assert installed_pip_url(project, plugin) == f"git+file://{checkout}#subdirectory={plugin}"
    assert "Required:" in outputs[-1].stdout, outputs[-1].stdout
    assert bash(f"meltano invoke {plugin} --version", project).stdout.startswith(f"{plugin} v")

    project = new_project(tmp_path / "wheel")
    for line in from_wheel:
        bash(line.replace("/path/to/your/project", str(project)), checkout)
    pip_url = installed_pip_url(project, plugin)
    assert pip_url.startswith(str(checkout / "dist")), pip_url
    assert pip_url.endswith(".whl"), pip_url
    assert bash(f"meltano invoke {plugin} --version", project).stdout.startswith(f"{plugin} v")
