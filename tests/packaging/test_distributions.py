"""Each plugin installs and runs from its own wheel, in a fresh environment and in a new Meltano project.

- ``python -m build`` makes each plugin's sdist, then its wheel from that sdist (so the sdist is complete: the
  vendored ``connector_common``, LICENSE, CHANGELOG and the Meltano definition are in it);
- each wheel alone installs into an empty virtual environment (its dependencies from the package index) and runs:
  ``--about``, ``python -m <package>``, ``--discover`` and a sync against its emulator (tap-duckdb: a small file);
- two plugins in one environment do not break each other (each carries its own ``connector_common``);
- ``meltano init`` + ``meltano add --from-ref <plugin>/meltano-plugin.yml`` (pip_url pointing at the wheel, as the
  README shows) in a temporary directory, then a tap into DuckDB, tap-duckdb discovering what it loaded, and a tap
  into target-kissmetrics there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from emulators.testing import EmulatorProcess
from tests.support.cli import parse_messages
from tests.support.datasets import (
    FIXED_NOW_TEXT,
    KAHUNA_API_KEY,
    KAHUNA_SECRET_KEY,
    KAON_API_KEY,
    KAON_CLIENT,
    KM_API_KEY,
    kahuna_dataset,
)

pytestmark = [pytest.mark.slow, pytest.mark.meltano]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_BIN = Path(sys.executable).parent
PACKAGES = {
    "tap-kaon-insights": "tap_kaon_insights",
    "tap-kahuna-logs": "tap_kahuna_logs",
    "tap-duckdb": "tap_duckdb",
    "target-kissmetrics": "target_kissmetrics",
}
SHARED_MODULES = ("settings.py", "retry.py", "plugin.py", "sdk_compat.py", "redaction.py")
DAY = FIXED_NOW_TEXT[:10]
StartEmulator = Callable[..., EmulatorProcess]


def version_of(package: str) -> str:
    """The version a plugin declares in its one place (``__version__``)."""
    text = (PROJECT_ROOT / package.replace("_", "-") / package / "__init__.py").read_text()
    return text.split('__version__ = "')[1].split('"')[0]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every plugin's wheel, built from its sdist."""
    out = tmp_path_factory.mktemp("dist")
    for plugin in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(PROJECT_ROOT / plugin)],
            check=True,
            capture_output=True,
            text=True,
        )
    wheels = {plugin: out / f"{package}-{version_of(package)}-py3-none-any.whl" for plugin, package in PACKAGES.items()}
    assert all(wheel.exists() for wheel in wheels.values()), sorted(out.iterdir())
    return wheels


def fresh_venv(path: Path, *wheels: Path) -> Path:
    """An empty virtual environment with the wheels (and their dependencies) installed; its bin directory."""
    venv.create(path, with_pip=True)
    bin_dir = path / "bin"
    subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", *map(str, wheels)],
        check=True,
        capture_output=True,
        text=True,
    )
    return bin_dir


def test_sdist_and_wheel_carry_the_shared_code_the_license_and_the_definition(dist: dict[str, Path]) -> None:
    for plugin, package in PACKAGES.items():
        wheel_names = zipfile.ZipFile(dist[plugin]).namelist()
        for module in SHARED_MODULES:
            assert f"{package}/connector_common/{module}" in wheel_names, (plugin, module)
        assert f"{package}/__main__.py" in wheel_names
        assert f"{package}/py.typed" in wheel_names
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names), wheel_names
        metadata = zipfile.ZipFile(dist[plugin]).read(f"{package}-{version_of(package)}.dist-info/METADATA").decode()
        assert "License-Expression: Apache-2.0" in metadata
        assert "Project-URL: Repository," in metadata
        assert "Requires-Python: >=3.10" in metadata
        assert "connector" not in metadata.split("Description-Content-Type")[0].lower(), "no dependency on it"
        sdist = dist[plugin].with_name(f"{package}-{version_of(package)}.tar.gz")
        with tarfile.open(sdist) as archive:
            members = {member.name.split("/", 1)[1]: member for member in archive.getmembers() if "/" in member.name}
        for name in (
            "LICENSE",
            "CHANGELOG.md",
            "README.md",
            "meltano-plugin.yml",
            f"{package}/connector_common/plugin.py",
        ):
            assert name in members, (plugin, name)
            assert members[name].isfile(), f"{name} is a real file in the sdist, not a link"
        assert (PROJECT_ROOT / plugin / "LICENSE").read_text() == (PROJECT_ROOT / "LICENSE").read_text()


@pytest.fixture
def emulators(start_emulator: StartEmulator) -> dict[str, EmulatorProcess]:
    """The three emulators with the small data sets."""
    return {service: start_emulator(service) for service in ("kaon", "kahuna", "kissmetrics")}


def small_duckdb_file(path: Path) -> Path:
    """A DuckDB file with one small mart: ``marts.plays`` (3 rows, keyed by id)."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        connection.execute("create table marts.plays (id integer primary key, person varchar, played timestamptz)")
        connection.execute(
            "insert into marts.plays select range, 'p-' || range,"
            " timestamptz '2026-11-18 15:30:00+00' + to_seconds(range) from range(1, 4)"
        )
    return path


def selected(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog with every stream selected (a SQL tap's discovery selects none)."""
    for entry in catalog["streams"]:
        next(item for item in entry["metadata"] if item["breadcrumb"] == [])["metadata"]["selected"] = True
    return catalog


def plugin_config(plugin: str, emulators: dict[str, EmulatorProcess], workdir: Path) -> dict[str, Any]:
    """A config of ``plugin`` for its emulator (or, for tap-duckdb, a small file): a small read, or a small replay."""
    if plugin == "tap-duckdb":
        return {"path": str(small_duckdb_file(workdir / "small.duckdb"))}
    if plugin == "tap-kaon-insights":
        return {
            "api_key": KAON_API_KEY,
            "client": KAON_CLIENT,
            "api_url": f"{emulators['kaon'].url}/api",
            "start_week": 776,
        }
    if plugin == "tap-kahuna-logs":
        return {
            "secret_key": KAHUNA_SECRET_KEY,
            "api_key": KAHUNA_API_KEY,
            "api_url": f"{emulators['kahuna'].url}/api/kahunalogs",
            "start_date": DAY,
            "end_date": DAY,
            "categories": ["user_merge"],
        }
    return {
        "api_key": KM_API_KEY,
        "tracking_url": emulators["kissmetrics"].url,
        "dead_letter_path": str(workdir / "dl"),
    }


ONE_EVENT = "".join(
    json.dumps(message) + "\n"
    for message in (
        {"type": "SCHEMA", "stream": "plays", "schema": {"properties": {"person": {}, "event": {}, "timestamp": {}}}},
        {"type": "RECORD", "stream": "plays", "record": {"person": "p-1", "event": "Played", "timestamp": 1262304000}},
        {"type": "STATE", "value": {"bookmarks": {"plays": 1}}},
    )
)


def run(command: list[str], workdir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, input=stdin, cwd=workdir, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr[-3000:]}"
    return result


@pytest.mark.parametrize("plugin", list(PACKAGES))
def test_each_wheel_installs_alone_and_runs(
    dist: dict[str, Path], emulators: dict[str, EmulatorProcess], tmp_path: Path, plugin: str
) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", dist[plugin])
    package = PACKAGES[plugin]
    about = json.loads(run([str(bin_dir / plugin), "--about", "--format=json"], tmp_path).stdout)
    assert (about["name"], about["version"]) == (plugin, version_of(package))
    if plugin.startswith("tap-"):
        assert "batch" in about["capabilities"]
    module_run = run([str(bin_dir / "python"), "-m", package, "--version"], tmp_path)
    assert f"{plugin} v{version_of(package)}" in module_run.stdout + module_run.stderr
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(plugin_config(plugin, emulators, tmp_path)))
    executable = [str(bin_dir / plugin), "--config", str(config_path)]
    if plugin == "target-kissmetrics":
        result = run(executable, tmp_path, stdin=ONE_EVENT)
        assert [json.loads(line) for line in result.stdout.splitlines()] == [{"bookmarks": {"plays": 1}}]
        assert emulators["kissmetrics"].control("dedup")["events"] == [
            {"person": "p-1", "event": "Played", "time": 1262304000, "properties": {}}
        ]
        return
    catalog = json.loads(run([*executable, "--discover"], tmp_path).stdout)
    assert catalog["streams"]
    if plugin == "tap-duckdb":
        (tmp_path / "catalog.json").write_text(json.dumps(selected(catalog)))
        executable += ["--catalog", str(tmp_path / "catalog.json")]
    records = [m for m in parse_messages(run(executable, tmp_path).stdout) if m["type"] == "RECORD"]
    if plugin == "tap-duckdb":
        assert [(m["stream"], m["record"]["id"], m["record"]["person"]) for m in records] == [
            ("marts-plays", n, f"p-{n}") for n in (1, 2, 3)
        ]
        assert records[0]["record"]["played"] == "2026-11-18T15:30:01.000000+00:00"
    elif plugin == "tap-kaon-insights":
        assert {m["record"]["week"] for m in records if m["stream"] == "weeks"} == {776}
    else:
        merges = kahuna_dataset().records("user_merge", kahuna_dataset().days[-1])
        assert [m["record"]["log_position"] for m in records] == list(range(len(merges)))


def test_two_plugins_in_one_environment_do_not_break_each_other(dist: dict[str, Path], tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", dist["tap-kaon-insights"], dist["target-kissmetrics"])
    for plugin in ("tap-kaon-insights", "target-kissmetrics"):
        run([str(bin_dir / plugin), "--about"], tmp_path)
    run([str(bin_dir / "pip"), "uninstall", "--quiet", "--yes", "tap-kaon-insights"], tmp_path)
    about = json.loads(run([str(bin_dir / "target-kissmetrics"), "--about", "--format=json"], tmp_path).stdout)
    assert about["name"] == "target-kissmetrics", "removing one plugin leaves the other's shared code in place"


# --- a new Meltano project ---------------------------------------------------------------------------


def meltano(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``meltano <args>`` in ``project`` (the dev venv's Meltano and uv)."""
    environment = {**os.environ, "PATH": f"{DEV_BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    command = [str(DEV_BIN / "meltano"), *args]
    result = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


def definition_for_wheel(plugin: str, wheel: Path, workdir: Path) -> Path:
    """The plugin's definition file with its pip_url pointing at the wheel (the README's sed line)."""
    text = (PROJECT_ROOT / plugin / "meltano-plugin.yml").read_text()
    lines = [f"pip_url: {wheel}" if line.startswith("pip_url: ") else line for line in text.splitlines()]
    path = workdir / f"{plugin}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def target_duckdb_definition(workdir: Path) -> Path:
    """This project's full definition of target-duckdb, as a definition file for the new project."""
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-duckdb"]
    definition = {key: value for key, value in loader.items() if key != "config"}
    path = workdir / "target-duckdb.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def test_a_new_meltano_project_adds_the_plugins_from_their_definitions_and_runs_them(
    dist: dict[str, Path], emulators: dict[str, EmulatorProcess], tmp_path: Path
) -> None:
    meltano(tmp_path, "init", "newproject", "--no_usage_stats")
    project = tmp_path / "newproject"
    for plugin, wheel in dist.items():
        meltano(project, "add", plugin, "--from-ref", str(definition_for_wheel(plugin, wheel, tmp_path)))
    meltano(project, "add", "target-duckdb", "--from-ref", str(target_duckdb_definition(tmp_path)))

    listed = meltano(project, "config", "list", "tap-kahuna-logs").stdout
    required = listed.split("Required:")[1].split("Optional")[0]
    for name in ("secret_key", "api_key", "start_date"):
        assert f"{name} [env: TAP_KAHUNA_LOGS_{name.upper()}]" in required, listed
    everything = meltano(project, "config", "list", "tap-kaon-insights", "--all").stdout
    assert (
        "api_url [env: TAP_KAON_INSIGHTS_API_URL] current value: 'https://insights.v-central.com/api' (default)"
        in everything
    )
    assert "max_retries [env: TAP_KAON_INSIGHTS_MAX_RETRIES] current value: 5 (default)" in everything

    kahuna = plugin_config("tap-kahuna-logs", emulators, tmp_path)
    settings = {f"TAP_KAHUNA_LOGS_{name.upper()}": json.dumps(value) if isinstance(value, list) else value
                for name, value in {**kahuna, "categories": ["inapp", "user_merge"]}.items()}  # fmt: skip
    warehouse = tmp_path / "warehouse.duckdb"
    meltano(
        project,
        "run",
        "tap-kahuna-logs",
        "target-duckdb",
        env={**settings, "TARGET_DUCKDB_FILEPATH": str(warehouse), "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "kahuna"},
    )
    data, day = kahuna_dataset(), kahuna_dataset().days[-1]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for stream, category in (("inapp_logs", "inapp"), ("user_merge_logs", "user_merge")):
            (count,) = connection.execute(f"SELECT count(*) FROM kahuna.{stream}").fetchone() or (0,)  # noqa: S608
            assert count == len(data.records(category, day)), stream
    # tap-duckdb (its own, newer DuckDB) reads the file target-duckdb (duckdb 1.2.2) wrote
    listed = meltano(project, "config", "list", "tap-duckdb").stdout
    assert "path [env: TAP_DUCKDB_PATH]" in listed.split("Required:")[1].split("Optional")[0], listed
    discovered = meltano(project, "invoke", "tap-duckdb", "--discover", env={"TAP_DUCKDB_PATH": str(warehouse)}).stdout
    streams = {entry["tap_stream_id"] for entry in json.loads(discovered)["streams"]}
    assert {"kahuna-inapp_logs", "kahuna-user_merge_logs"} <= streams, streams

    mapping = {"user_merge_logs": {"kind": "alias", "person": "surviving_user_id", "alias": "merged_user_id"}}
    meltano(
        project,
        "run",
        "tap-kahuna-logs",
        "target-kissmetrics",
        env={
            **settings,
            "TAP_KAHUNA_LOGS_CATEGORIES": '["user_merge"]',
            "TARGET_KISSMETRICS_API_KEY": KM_API_KEY,
            "TARGET_KISSMETRICS_TRACKING_URL": emulators["kissmetrics"].url,
            "TARGET_KISSMETRICS_STREAMS": json.dumps(mapping),
            "TARGET_KISSMETRICS_DEAD_LETTER_PATH": str(tmp_path / "dead-letters.jsonl"),
        },
    )
    expected = {
        frozenset((str(r["surviving_user_id"]), str(r["merged_user_id"])))
        for r in data.records("user_merge", day)
        if r.get("surviving_user_id") and r.get("merged_user_id")
    }
    aliases = {frozenset(pair) for pair in emulators["kissmetrics"].control("dedup")["aliases"]}
    assert aliases == expected
