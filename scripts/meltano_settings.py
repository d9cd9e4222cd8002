"""Keep meltano.yml's plugin settings in step with each plugin's own ``--about``.

``python scripts/meltano_settings.py print tap-kaon-insights`` prints the ``settings:`` YAML block
(kind, description, ``sensitive: true`` for secrets) to paste into meltano.yml;
``python scripts/meltano_settings.py check`` exits 1 naming every setting a plugin declares
that meltano.yml does not (or declares with another sensitivity).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OWN_PLUGINS = ("tap-kaon-insights", "tap-kahuna-logs", "tap-duckdb", "target-kissmetrics")
# JSON schema type -> Meltano setting kind.
KINDS = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean", "array": "array"}


def about(plugin: str) -> dict[str, Any]:
    """The plugin's ``--about --format=json`` (run from the project's venv)."""
    output = subprocess.run(
        [str(BIN / plugin), "--about", "--format=json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output)


def setting_kind(schema: dict[str, Any]) -> str:
    """The Meltano ``kind`` of one JSON schema property."""
    types = schema.get("type") or ["object"]
    types = [types] if isinstance(types, str) else types
    main = next((name for name in types if name != "null"), "object")
    return KINDS.get(main, "object")


def settings_from_about(plugin: str) -> list[dict[str, Any]]:
    """Meltano setting definitions for every setting the plugin declares."""
    properties = about(plugin)["settings"]["properties"]
    settings = []
    for name, schema in properties.items():
        setting: dict[str, Any] = {"name": name, "kind": setting_kind(schema)}
        description = (schema.get("description") or "").strip()
        if description:
            setting["description"] = " ".join(description.split())
        if schema.get("secret"):
            setting["sensitive"] = True
        settings.append(setting)
    return settings


def declared_settings(plugin: str) -> dict[str, dict[str, Any]]:
    """The settings meltano.yml declares for a base plugin (by name)."""
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    for plugins in project["plugins"].values():
        for definition in plugins:
            if definition["name"] == plugin:
                return {setting["name"]: setting for setting in definition.get("settings", [])}
    raise SystemExit(f"meltano.yml defines no plugin named {plugin}")


def missing_settings(plugin: str) -> list[str]:
    """Problems: settings the plugin has that meltano.yml lacks or marks with another sensitivity."""
    declared = declared_settings(plugin)
    problems = []
    for setting in settings_from_about(plugin):
        name = setting["name"]
        if name not in declared:
            problems.append(f"{plugin}: setting {name} is not in meltano.yml")
        elif bool(declared[name].get("sensitive")) != bool(setting.get("sensitive")):
            problems.append(f"{plugin}: setting {name} must have sensitive: {bool(setting.get('sensitive'))}")
    return problems


def main(argv: list[str]) -> int:
    """``print <plugin>`` or ``check``."""
    if len(argv) == 2 and argv[0] == "print":
        print(yaml.safe_dump({"settings": settings_from_about(argv[1])}, sort_keys=False, width=1000))
        return 0
    if argv == ["check"]:
        problems = [problem for plugin in OWN_PLUGINS for problem in missing_settings(plugin)]
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    print("usage: meltano_settings.py print <plugin> | check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
