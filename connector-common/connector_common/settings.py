"""Declared settings: a plugin declares each setting once and gets its JSON schema, a frozen typed object and errors.

A plugin's settings are a class deriving from :class:`PluginSettings` (which makes it a frozen, keyword-only
dataclass) whose fields are made with :func:`setting`::

    class KaonSettings(PluginSettings):
        api_key: str = setting("Kaon Insights API key.", required=True, secret=True)
        max_retries: int = setting("Retries of a call after the first try.", default=5, minimum=0)

From that one declaration come:

- :meth:`PluginSettings.config_jsonschema`: the plugin's ``config_jsonschema`` (what ``--about`` shows);
- :meth:`PluginSettings.parse`: the config with every value coerced to its type (numbers and booleans given as
  strings, as ``--config=ENV`` and Meltano's string settings pass them; JSON text for lists and objects), deprecated
  names mapped to their new ones, defaults applied, and one message per bad setting naming it and what to fix;
- the frozen object itself, typed for mypy, which the plugin's code reads instead of ``config.get(name, default)``.

The parts: ``setting_fields.py`` (a declaration), ``setting_schema.py`` (its JSON schema), ``setting_values.py``
(coercion and checks); this module puts them together.

Field types map to JSON types: ``str``, ``int``, ``float`` (a number), ``bool``, ``datetime.date`` (an ISO date),
``tuple[str, ...]`` (an array of strings), ``Mapping[str, ...]`` (an object); ``X | None`` makes a setting optional
with no default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing as t
from collections.abc import Iterable, Mapping

from singer_sdk import typing as th
from typing_extensions import dataclass_transform

from .setting_fields import SettingField, declared_fields, first_sentence, setting
from .setting_schema import json_type, schema_property
from .setting_values import bounds_problem, coerce, is_unset, json_value, python_value, take_deprecated_names


@dataclasses.dataclass
class ParsedConfig:
    """The outcome of :meth:`PluginSettings.parse`."""

    config: dict[str, t.Any]
    errors: list[str]
    warnings: list[str]


SettingsT = t.TypeVar("SettingsT", bound="PluginSettings")


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class PluginSettings:
    """Base of a plugin's settings: each subclass becomes a frozen, keyword-only dataclass (see the module doc)."""

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    @classmethod
    def fields(cls) -> list[SettingField]:
        """The declared settings, in declaration order."""
        return list(declared_fields(cls))

    @classmethod
    def config_jsonschema(cls) -> dict[str, t.Any]:
        """The plugin's ``config_jsonschema``: every setting with its type, default and description.

        Deprecated names appear as deprecated properties, so ``--about`` lists them and schema validation accepts them.
        """
        properties = []
        for field in cls.fields():
            properties.append(schema_property(field))
            for old_name in field.spec.deprecated_names:
                properties.append(
                    th.Property(
                        old_name,
                        json_type(field),
                        description=f"Deprecated: use {field.name}.",
                        deprecated=True,
                        secret=field.spec.secret,
                    )
                )
        return th.PropertiesList(*properties).to_dict()

    @classmethod
    def known_names(cls) -> set[str]:
        """Every accepted setting name, deprecated ones included."""
        names = set()
        for field in cls.fields():
            names.add(field.name)
            names.update(field.spec.deprecated_names)
        return names

    @classmethod
    def parse(cls, raw: Mapping[str, t.Any], *, other_known: Iterable[str] = ()) -> ParsedConfig:
        """Coerce, check and complete a config: see the module docstring.

        Keys that are not declared settings pass through untouched (the SDK's own settings, e.g. ``stream_maps``);
        those not in ``other_known`` either get a warning naming the closest known setting.
        """
        config = dict(raw)
        errors: list[str] = []
        warnings: list[str] = []
        for field in cls.fields():
            value = take_deprecated_names(config, field, warnings)
            if is_unset(value):
                if field.spec.required:
                    errors.append(f"{field.name} is required: {first_sentence(field.spec.description)}")
                    config.pop(field.name, None)
                    continue
                config[field.name] = json_value(field.default)
                continue
            coerced, problem = coerce(field, value)
            if problem is None:
                problem = bounds_problem(field, coerced) or (field.spec.rule(coerced) if field.spec.rule else None)
            if problem is not None:
                errors.append(f"{field.name} {problem}")
                continue
            config[field.name] = json_value(coerced)
        known = cls.known_names() | set(other_known)
        warnings.extend(unknown_setting_warnings(raw, known))
        return ParsedConfig(config=config, errors=errors, warnings=warnings)

    @classmethod
    def from_config(cls: type[SettingsT], config: Mapping[str, t.Any]) -> SettingsT:
        """The frozen settings of a config that :meth:`parse` accepted; ``ValueError`` lists every problem."""
        parsed = cls.parse(config, other_known=config)
        if parsed.errors:
            raise ValueError("; ".join(parsed.errors))
        values = {field.name: python_value(field, parsed.config.get(field.name)) for field in cls.fields()}
        settings = cls(**values)
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return settings

    def problems(self) -> list[str]:
        """Rules across settings (e.g. an end before a start); a subclass extends it."""
        return []

    def secret_values(self) -> list[str]:
        """Every secret value (redacted from all output); a subclass adds derived forms (e.g. an auth token)."""
        return [
            value
            for field in self.fields()
            if field.spec.secret and isinstance(value := getattr(self, field.name), str) and value
        ]


def raw_secret_values(settings_class: type[PluginSettings], raw: Mapping[str, t.Any]) -> list[str]:
    """The secret values of a config that may not be valid yet (redaction starts before validation)."""
    secrets = []
    for field in settings_class.fields():
        if field.spec.secret:
            for name in (field.name, *field.spec.deprecated_names):
                value = raw.get(name)
                if isinstance(value, str) and value:
                    secrets.append(value)
    return secrets


def unknown_setting_warnings(config: Mapping[str, t.Any], known: Iterable[str]) -> list[str]:
    """One warning per key that is no known setting, naming the closest known one when there is one."""
    known_names = sorted(set(known))
    found = []
    for name in sorted(set(config) - set(known_names)):
        close = difflib.get_close_matches(name, known_names, n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else " (it is ignored)"
        found.append(f"unknown setting '{name}'{hint}")
    return found


# --- declaration -> fields and schema ------------------------------------------------------------


# --- values ------------------------------------------------------------------------------------------
