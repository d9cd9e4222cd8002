"""The Meltano plugin definitions of the project's own plugins, made from one source: each plugin's ``--about``.

- ``<plugin>/meltano-plugin.yml``: the plugin's reusable definition in the Meltano Hub format (what
  ``meltano add <plugin> --from-ref <file or URL>`` reads in anyone's project): label, description, ``pip_url`` (this
  repository's git URL with ``#subdirectory=``), executable, capabilities, every setting with kind, label,
  description, ``value`` default, ``options`` and ``sensitive``, and ``settings_group_validation`` for the required
  ones.
- ``plugins.meltano.yml``: the same definitions as this project uses them (``meltano.yml`` includes it), with the
  project's own ``pip_url`` (editable installs from this checkout) and extras such as ``load_schema``.

The repository's URL is :data:`REPOSITORY`, here and nowhere else: ``write`` also puts it into each package's
``[project.urls]`` and each README's ``meltano add --from-ref`` lines. The plugins have no public home yet, so it
is a placeholder no one can own (``YOUR_ORG``: GitHub names have no underscore); whoever publishes a fork sets it
to the fork's URL and runs ``write``.

The Hub definitions follow the Meltano Hub's rules (``schemas/plugin_definitions/`` of meltano/hub, checked by
``tests/packaging/test_hub_definitions.py``): ``variant``, ``quality``, ``maintenance_status``, ``keywords``,
``domain_url``, every key in the Hub's order (sorted, as its YAML lint writes them), settings sorted by name.

``python scripts/plugin_definitions.py write`` regenerates all of it; ``check`` exits 1 naming each file that
differs (a test runs it, so a setting changed in a plugin's code and not in its definitions fails the suite).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Where the project's repository is published (pip_url of the definitions, project URLs of the packages, the
#: READMEs' ``meltano add --from-ref`` URLs). Nowhere yet: a placeholder no one can own; set your fork's URL here.
REPOSITORY = "https://github.com/YOUR_ORG/kaon-kahuna-kissmetrics"
#: The raw files of REPOSITORY's main branch (the definitions ``meltano add --from-ref`` reads).
RAW_PREFIX = REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/", 1) + "/main"
#: Any GitHub URL of this repository, whatever its owner (what ``write`` replaces by REPOSITORY's).
ANY_REPOSITORY_URL = re.compile(
    r"https://(github\.com|raw\.githubusercontent\.com)/[^/\s`'\"]+/kaon-kahuna-kissmetrics"
)
#: The Hub's variant: the publishing owner, lower case.
VARIANT = REPOSITORY.split("/")[3].lower()
#: Hub metadata: not rated by the Hub; maintained, not yet published (0.x).
QUALITY = "unknown"
MAINTENANCE_STATUS = "beta"
DEFINITION_FILE = "meltano-plugin.yml"
PROJECT_FILE = PROJECT_ROOT / "plugins.meltano.yml"
#: How the replay reads a mart: from the bookmark on, by the mart's ever-growing replay_sequence.
REPLAY_BOOKMARK = {"replication-method": "INCREMENTAL", "replication-key": "replay_sequence"}
#: Per plugin: its Meltano plugin type, label and what this project adds to the definition.
PLUGINS: dict[str, dict[str, Any]] = {
    "tap-kaon-insights": {
        "type": "extractors",
        "label": "Kaon Insights",
        "domain_url": "https://insights.v-central.com",
        "keywords": ["meltano_sdk", "api", "analytics", "kaon"],
        "project": {"load_schema": "kaon"},
    },
    "tap-kahuna-logs": {
        "type": "extractors",
        "label": "Kahuna Logs",
        "domain_url": "https://tap-nexus.appspot.com",
        "keywords": ["meltano_sdk", "api", "marketing", "kahuna"],
        "project": {"load_schema": "kahuna"},
    },
    # The DuckDB replay: tap-duckdb reads the dbt marts of the warehouse file, read-only. Every plugin that opens
    # the file pins the same duckdb (target-duckdb needs 1.2.2; a newer one could upgrade the file so that the
    # loader cannot open it the next night).
    "tap-duckdb": {
        "type": "extractors",
        "label": "DuckDB",
        "domain_url": "https://duckdb.org",
        "keywords": ["meltano_sdk", "database", "duckdb"],
        "project": {
            "pip_url": "-e ./tap-duckdb duckdb==1.2.2",
            "config": {"path": "$MELTANO_PROJECT_ROOT/output/warehouse.duckdb", "filter_schemas": ["marts"]},
            "select": ["marts-kissmetrics_events.*", "marts-kissmetrics_people.*", "marts-kissmetrics_aliases.*"],
            "metadata": {
                "marts-kissmetrics_events": REPLAY_BOOKMARK | {"table-key-properties": ["event_id"]},
                "marts-kissmetrics_people": REPLAY_BOOKMARK | {"table-key-properties": ["person", "timestamp"]},
                "marts-kissmetrics_aliases": REPLAY_BOOKMARK | {"table-key-properties": ["person", "alias"]},
            },
        },
    },
    "target-kissmetrics": {
        "type": "loaders",
        "label": "Kissmetrics",
        "domain_url": "https://www.kissmetrics.io",
        "keywords": ["meltano_sdk", "api", "analytics", "kissmetrics"],
        "project": {"config": {"dead_letter_path": "$MELTANO_PROJECT_ROOT/output/kissmetrics-dead-letters.jsonl"}},
    },
}
#: Words a label spells in capitals.
ACRONYMS = {"api": "API", "url": "URL", "id": "ID", "ids": "IDs", "mb": "MB", "sdc": "SDC"}
HEADER = (
    "# Generated by scripts/plugin_definitions.py from the plugin's --about: do not edit by hand.\n"
    "# Add it to a Meltano project: meltano add {name} --from-ref <this file or its URL> (see README.md).\n"
)
PROJECT_HEADER = (
    "# Generated by scripts/plugin_definitions.py from <plugin>/meltano-plugin.yml: do not edit by hand.\n"
    "# meltano.yml includes this file (include_paths); project configuration goes into meltano.yml's environments.\n"
)


def about(plugin: str) -> dict[str, Any]:
    """The plugin's ``--about --format=json`` (run from the project's venv)."""
    output = subprocess.run(
        [str(BIN / plugin), "--about", "--format=json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output)  # type: ignore[no-any-return]


def label(name: str) -> str:
    """``api_url`` -> ``API URL``."""
    return " ".join(ACRONYMS.get(word, word.capitalize()) for word in name.split("_"))


def setting_definition(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One Meltano setting from one JSON schema property of ``--about``."""
    types = schema.get("type") or ["object"]
    types = [types] if isinstance(types, str) else types
    main = next((kind for kind in types if kind != "null"), "object")
    setting: dict[str, Any] = {"name": name, "label": label(name)}
    if schema.get("enum"):
        setting["kind"] = "options"
        setting["options"] = [{"label": str(value), "value": value} for value in schema["enum"]]
    elif main == "string" and schema.get("format") == "date":
        # Meltano parses a date_iso8601 value leniently before the plugin sees it (2026-31-01 became 2026-01-31,
        # "yesterday" a date-time): as a string the user's text reaches the plugin, whose check is strict.
        setting["kind"] = "string"
    elif main == "number":
        # Meltano 4.4.1 cannot pass a `decimal` setting from an environment variable (Decimal is not JSON
        # serializable); the plugins read "0.5" as 0.5, so fractional settings are strings to Meltano.
        setting["kind"] = "string"
    else:
        setting["kind"] = {"integer": "integer", "boolean": "boolean", "array": "array"}.get(main, main)
        if setting["kind"] not in ("string", "integer", "boolean", "array"):
            setting["kind"] = "object"
    if schema.get("default") is not None:
        setting["value"] = schema["default"]
    description = " ".join((schema.get("description") or "").split())
    if description:
        setting["description"] = description
    if schema.get("secret"):
        setting["sensitive"] = True
    if schema.get("deprecated"):
        setting["hidden"] = True
    return setting


def definition(plugin: str) -> dict[str, Any]:
    """The plugin's definition in the Meltano Hub format, from its ``--about``, in the Hub's key order."""
    info = about(plugin)
    settings = info["settings"]
    required = list(settings.get("required", []))
    meta = PLUGINS[plugin]
    result: dict[str, Any] = {
        "name": plugin,
        "namespace": plugin.replace("-", "_"),
        "variant": VARIANT,
        "label": meta["label"],
        "description": info["description"],
        "domain_url": meta["domain_url"],
        "keywords": list(meta["keywords"]),
        "maintenance_status": MAINTENANCE_STATUS,
        "quality": QUALITY,
        "repo": f"{REPOSITORY}/tree/main/{plugin}",
        "docs": f"{REPOSITORY}/blob/main/{plugin}/README.md",
        "pip_url": f"git+{REPOSITORY}.git#subdirectory={plugin}",
        "executable": plugin,
        "capabilities": list(info["capabilities"]),
    }
    if required:
        result["settings_group_validation"] = [required]
    result["settings"] = [setting_definition(name, schema) for name, schema in settings["properties"].items()]
    return hub_order(result)


def hub_order(value: Any) -> Any:
    """The Hub's order (its YAML lint): every mapping's keys sorted; settings by name; capabilities and each
    settings_group_validation set sorted; other lists as they are."""
    if isinstance(value, list):
        return [hub_order(item) for item in value]
    if not isinstance(value, dict):
        return value
    ordered = {key: hub_order(value[key]) for key in sorted(value)}
    if "settings" in ordered:
        ordered["settings"] = sorted(ordered["settings"], key=lambda setting: setting["name"])
    if "capabilities" in ordered:
        ordered["capabilities"] = sorted(ordered["capabilities"])
    if "settings_group_validation" in ordered:
        ordered["settings_group_validation"] = [sorted(group) for group in ordered["settings_group_validation"]]
    return ordered


#: Hub-only keys: a project's own definition leaves them out (a ``variant`` there would send Meltano to the Hub).
HUB_ONLY_KEYS = ("variant", "domain_url", "keywords", "maintenance_status", "quality", "repo", "docs")


def project_definition(plugin: str, hub_definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as this project uses it: installed editable from this checkout, with the project's extras."""
    result = {key: value for key, value in hub_definition.items() if key not in HUB_ONLY_KEYS}
    result["pip_url"] = f"-e ./{plugin}"
    result.update(PLUGINS[plugin]["project"])
    return result


def dump(value: Any) -> str:
    """YAML as Meltano writes it: keys in order, long lines unbroken."""
    return yaml.safe_dump(value, sort_keys=False, width=1000, allow_unicode=True)


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    files: dict[Path, str] = {}
    project: dict[str, list[dict[str, Any]]] = {}
    for plugin, meta in PLUGINS.items():
        hub_definition = definition(plugin)
        files[PROJECT_ROOT / plugin / DEFINITION_FILE] = HEADER.format(name=plugin) + dump(hub_definition)
        project.setdefault(meta["type"], []).append(project_definition(plugin, hub_definition))
    files[PROJECT_FILE] = PROJECT_HEADER + dump({"plugins": project})
    for plugin in PLUGINS:
        for name in ("pyproject.toml", "README.md"):
            path = PROJECT_ROOT / plugin / name
            files[path] = with_repository(path.read_text())
    readme = PROJECT_ROOT / "README.md"
    files[readme] = with_repository(readme.read_text())
    return files


def with_repository(text: str) -> str:
    """``text`` with every GitHub URL of this repository (any owner) naming :data:`REPOSITORY`'s instead."""
    raw_host = "https://raw.githubusercontent.com/"

    def replace(match: re.Match[str]) -> str:
        return RAW_PREFIX.removesuffix("/main") if match.group(0).startswith(raw_host) else REPOSITORY

    return ANY_REPOSITORY_URL.sub(replace, text)


def main(argv: list[str]) -> int:
    """``write`` or ``check``."""
    if argv not in (["write"], ["check"]):
        print("usage: plugin_definitions.py write | check", file=sys.stderr)
        return 2
    stale = []
    for path, content in rendered().items():
        if not path.exists() or path.read_text() != content:
            stale.append(path)
            if argv == ["write"]:
                path.write_text(content)
    if argv == ["check"] and stale:
        for path in stale:
            relative = path.relative_to(PROJECT_ROOT)
            print(
                f"{relative} differs from the plugins' --about or REPOSITORY: run python scripts/plugin_definitions.py"
                " write"
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
