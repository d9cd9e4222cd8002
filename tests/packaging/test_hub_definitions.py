"""Each plugin's ``meltano-plugin.yml`` is a valid Meltano Hub definition.

The rules are the Hub's own JSON schemas (meltano/hub, ``schemas/plugin_definitions/{extractors,loaders}.schema.json``
with ``hub_metadata.schema.json`` and ``schemas/common/{common,extractors_specific,loaders_specific,base_setting}
.schema.json``), written here as they read (the Hub is unreachable from the tests), and the Hub's YAML lint
(``hub-utils/hub_utils/yaml_lint.py``): keys sorted, settings sorted by name, capabilities sorted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scripts import plugin_definitions

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SETTING_KINDS = [
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options", "object", "array",
    "boolean", "string", "decimal",
]  # fmt: skip
BASE_SETTING = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "label": {"type": "string"},
        "value": {},
        "placeholder": {"type": "string"},
        "kind": {"type": "string", "enum": SETTING_KINDS},
        "description": {"type": "string"},
        "tooltip": {"type": "string"},
        "documentation": {"type": "string"},
        "env": {"type": "string"},
        "value_processor": {"type": "string", "enum": ["upcase_string", "nest_object", "stringify"]},
        "value_post_processor": {"type": "string", "enum": ["upcase_string", "nest_object", "stringify"]},
        "oauth": {"type": "object", "required": ["provider"], "properties": {"provider": {"type": "string"}}},
        "options": {
            "type": "array",
            "items": {"type": "object", "properties": {"label": {"type": "string"}, "value": {"type": "string"}}},
        },
        "docs": {"type": "string"},
        "hidden": {"type": "boolean"},
        "sensitive": {"type": "boolean"},
    },
}
COMMON = {
    "type": "object",
    "required": ["name", "namespace", "variant"],
    "properties": {
        "logo_url": {"type": ["string", "null"]},
        "pip_url": {"type": "string"},
        "executable": {"type": "string"},
        "repo": {"type": "string"},
        "python": {"type": "string"},
        "settings": {"type": "array", "items": BASE_SETTING},
        "settings_group_validation": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "commands": {"type": "object"},
        "docs": {"type": "string"},
        "variant": {"type": "string"},
        "hidden": {"type": "boolean"},
        "log_parser": {"type": "string"},
        "supported_python_versions": {"type": "array", "items": {"type": "string", "pattern": r"^3\.\d+$"}},
    },
}
HUB_METADATA = {
    "type": "object",
    "properties": {
        "maintenance_status": {"type": "string", "enum": ["active", "beta", "development", "inactive", "unknown"]},
        "quality": {"type": "string", "enum": ["gold", "silver", "bronze", "unknown"]},
        "domain_url": {"type": ["string", "null"], "format": "uri"},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "definition": {"type": "string"},
        "next_steps": {"type": "string"},
        "settings_preamble": {"type": "string"},
        "usage": {"type": "string"},
        "prereq": {"type": "string"},
    },
}
EXTRACTOR_CAPABILITIES = [
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening", "activate-version",
    "batch", "test", "log-based", "structured-logging",
]  # fmt: skip
LOADER_CAPABILITIES = [
    "about", "stream-maps", "activate-version", "batch", "soft-delete", "hard-delete", "datatype-failsafe",
    "schema-flattening", "target-schema", "validate-records", "structured-logging",
]  # fmt: skip
SHARED_KEYS = [
    "name", "pip_url", "variant", "namespace", "label", "description", "executable", "settings", "docs", "repo",
    "logo_url", "hidden", "python", "settings_group_validation", "commands", "capabilities", "requires",
    "maintenance_status", "quality", "domain_url", "keywords", "definition", "next_steps", "settings_preamble",
    "usage", "prereq", "supported_python_versions", "log_parser",
]  # fmt: skip
SCHEMAS: dict[str, dict[str, Any]] = {
    "extractors": {
        "allOf": [
            COMMON,
            {"properties": {"capabilities": {"type": "array", "items": {"enum": EXTRACTOR_CAPABILITIES}},
                            "metadata": {"type": "object"}, "schema": {"type": "object"},
                            "select": {"type": "array", "items": {"type": "string"}}}},
            HUB_METADATA,
            {"type": "object", "additionalProperties": False, "required": ["quality"],
             "properties": {key: {} for key in [*SHARED_KEYS, "metadata", "schema", "select"]}},
        ]
    },
    "loaders": {
        "allOf": [
            COMMON,
            {"properties": {"capabilities": {"type": "array", "items": {"enum": LOADER_CAPABILITIES}},
                            "dialect": {}, "target_schema": {}}},
            HUB_METADATA,
            {"type": "object", "additionalProperties": False, "required": ["quality"],
             "properties": {key: {} for key in [*SHARED_KEYS, "dialect", "target_schema"]}},
        ]
    },
}  # fmt: skip


def hub_definition(plugin: str) -> dict[str, Any]:
    """The plugin's ``meltano-plugin.yml``, parsed in file order."""
    return yaml.safe_load((PROJECT_ROOT / plugin / "meltano-plugin.yml").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("plugin", list(plugin_definitions.PLUGINS))
def test_definition_is_valid_against_the_hubs_schema(plugin: str) -> None:
    definition = hub_definition(plugin)
    schema = SCHEMAS[plugin_definitions.PLUGINS[plugin]["type"]]
    jsonschema.validate(definition, schema, format_checker=jsonschema.FormatChecker())
    for key in ("variant", "quality", "maintenance_status", "keywords", "domain_url"):
        assert definition.get(key), f"{plugin}: the Hub expects {key}"
    assert definition["domain_url"].startswith("https://")


@pytest.mark.parametrize("plugin", list(plugin_definitions.PLUGINS))
def test_definition_keys_are_in_the_hubs_order(plugin: str) -> None:
    definition = hub_definition(plugin)
    assert list(definition) == sorted(definition)
    names = [setting["name"] for setting in definition["settings"]]
    assert names == sorted(names)
    for setting in definition["settings"]:
        assert list(setting) == sorted(setting), setting["name"]
    assert definition["capabilities"] == sorted(definition["capabilities"])
    for group in definition.get("settings_group_validation", []):
        assert group == sorted(group)


def test_the_schema_rules_catch_what_the_old_definitions_lacked() -> None:
    """The rules written here fail a definition without variant and quality, or with an unknown key."""
    definition = hub_definition("tap-kahuna-logs")
    for missing in ("variant", "quality"):
        broken = {key: value for key, value in definition.items() if key != missing}
        with pytest.raises(jsonschema.ValidationError, match=missing):
            jsonschema.validate(broken, SCHEMAS["extractors"])
    with pytest.raises(jsonschema.ValidationError, match="load_schema"):
        jsonschema.validate({**definition, "load_schema": "kahuna"}, SCHEMAS["extractors"])


def test_the_repository_url_is_one_setting_written_everywhere() -> None:
    """Every file naming the repository names plugin_definitions.REPOSITORY: no owner anyone could claim."""
    repository = plugin_definitions.REPOSITORY
    assert "_" in repository.split("/")[3], "a placeholder owner GitHub cannot register (no underscore in names)"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    named = {
        relative
        for relative in tracked
        if Path(relative).suffix in {".md", ".toml", ".yml", ".py"}
        and (PROJECT_ROOT / relative).is_file()
        and "kaon-kahuna-kissmetrics" in (PROJECT_ROOT / relative).read_text(errors="replace")
    }
    assert {"README.md", "tap-kahuna-logs/pyproject.toml", "tap-kahuna-logs/meltano-plugin.yml"} <= named
    for relative in named:
        text = (PROJECT_ROOT / relative).read_text()
        for match in plugin_definitions.ANY_REPOSITORY_URL.finditer(text):
            assert match.group(0) in {repository, plugin_definitions.RAW_PREFIX.removesuffix("/main")}, relative
