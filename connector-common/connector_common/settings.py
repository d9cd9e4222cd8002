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

Field types map to JSON types: ``str``, ``int``, ``float`` (a number), ``bool``, ``datetime.date`` (an ISO date),
``tuple[str, ...]`` (an array of strings), ``Mapping[str, ...]`` (an object); ``X | None`` makes a setting optional
with no default.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing as t
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from singer_sdk import typing as th
from typing_extensions import dataclass_transform

#: A rule beyond the type and range: given the coerced value, a problem ("must ...") or None.
Rule = Callable[[t.Any], "str | None"]
_TRUE = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f"})
_METADATA_KEY = "connector_setting"
#: ``2026-11-01``, optionally with an ISO time of day and offset (``2026-11-01T00:00:00Z``), nothing else.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?")


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """What a settings field declares besides its name and type."""

    description: str
    required: bool = False
    secret: bool = False
    minimum: int | None = None
    exclusive_minimum: int | None = None
    maximum: int | None = None
    options: tuple[str, ...] | None = None
    deprecated_names: tuple[str, ...] = ()
    rule: Rule | None = None
    schema: th.JSONTypeHelper | None = None


def setting(
    description: str,
    *,
    default: t.Any = dataclasses.MISSING,
    required: bool = False,
    secret: bool = False,
    minimum: int | None = None,
    exclusive_minimum: int | None = None,
    maximum: int | None = None,
    options: Iterable[str] | None = None,
    deprecated_names: Iterable[str] = (),
    rule: Rule | None = None,
    schema: th.JSONTypeHelper | None = None,
) -> t.Any:
    """A settings dataclass field.

    ``default`` is the value when the setting is not given (a list or dict default is copied per object);
    ``minimum``/``maximum`` bound numbers (``exclusive_minimum``: strictly above); ``options`` lists the allowed
    strings (of the value, or of each item of a list); ``deprecated_names`` are old names still accepted, with a
    warning; ``rule`` checks what a type cannot say (e.g. the URL rule); ``schema`` replaces the JSON type derived
    from the annotation (objects with named properties).
    """
    spec = SettingSpec(
        description=description,
        required=required,
        secret=secret,
        minimum=minimum,
        exclusive_minimum=exclusive_minimum,
        maximum=maximum,
        options=tuple(options) if options is not None else None,
        deprecated_names=tuple(deprecated_names),
        rule=rule,
        schema=schema,
    )
    metadata = {_METADATA_KEY: spec}
    shown = not secret  # a secret never appears in the settings object's repr
    if required:
        return dataclasses.field(metadata=metadata, repr=shown)
    if isinstance(default, dict):
        mapping = dict(default)
        return dataclasses.field(default_factory=lambda: types.MappingProxyType(mapping), metadata=metadata, repr=shown)
    if isinstance(default, list):
        default = tuple(default)
    if default is dataclasses.MISSING:
        default = None
    return dataclasses.field(default=default, metadata=metadata, repr=shown)


@dataclasses.dataclass(frozen=True)
class SettingField:
    """One declared setting: its name, kind and declaration."""

    name: str
    kind: str  # string, integer, number, boolean, date, array, object
    optional: bool
    default: t.Any
    spec: SettingSpec

    @property
    def has_default(self) -> bool:
        """Whether the setting has a value when not given."""
        return self.default is not None


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
        return list(_setting_fields(cls))

    @classmethod
    def config_jsonschema(cls) -> dict[str, t.Any]:
        """The plugin's ``config_jsonschema``: every setting with its type, default and description.

        Deprecated names appear as deprecated properties, so ``--about`` lists them and schema validation accepts them.
        """
        properties = []
        for field in cls.fields():
            properties.append(_schema_property(field))
            for old_name in field.spec.deprecated_names:
                properties.append(
                    th.Property(
                        old_name,
                        _json_type(field),
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
            value = _take_deprecated_names(config, field, warnings)
            if _is_unset(value):
                if field.spec.required:
                    errors.append(f"{field.name} is required: {_first_sentence(field.spec.description)}")
                    config.pop(field.name, None)
                    continue
                config[field.name] = _json_value(field.default)
                continue
            coerced, problem = _coerce(field, value)
            if problem is None:
                problem = _bounds_problem(field, coerced) or (field.spec.rule(coerced) if field.spec.rule else None)
            if problem is not None:
                errors.append(f"{field.name} {problem}")
                continue
            config[field.name] = _json_value(coerced)
        known = cls.known_names() | set(other_known)
        warnings.extend(unknown_setting_warnings(raw, known))
        return ParsedConfig(config=config, errors=errors, warnings=warnings)

    @classmethod
    def from_config(cls: type[SettingsT], config: Mapping[str, t.Any]) -> SettingsT:
        """The frozen settings of a config that :meth:`parse` accepted; ``ValueError`` lists every problem."""
        parsed = cls.parse(config, other_known=config)
        if parsed.errors:
            raise ValueError("; ".join(parsed.errors))
        values = {field.name: _python_value(field, parsed.config.get(field.name)) for field in cls.fields()}
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


def _setting_fields(cls: type[PluginSettings]) -> Iterable[SettingField]:
    hints = t.get_type_hints(cls)
    for field in dataclasses.fields(t.cast("t.Any", cls)):  # a subclass, made a dataclass on definition
        spec = field.metadata.get(_METADATA_KEY)
        if spec is None:
            continue
        kind, optional = _kind_of(hints[field.name], field.name)
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None if field.default is dataclasses.MISSING else field.default
        yield SettingField(field.name, kind, optional, default, spec)


def _kind_of(annotation: t.Any, name: str) -> tuple[str, bool]:
    """The JSON kind of a field annotation, and whether ``None`` is allowed."""
    optional = False
    origin = t.get_origin(annotation)
    if origin in (t.Union, types.UnionType):
        members = [arg for arg in t.get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(t.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"setting {name}: one type (or X | None) per setting")
        annotation = members[0]
        origin = t.get_origin(annotation)
    simple = {str: "string", bool: "boolean", int: "integer", float: "number", date: "date"}
    if annotation in simple:
        return simple[annotation], optional
    if origin is tuple:
        return "array", optional
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return "object", optional
    raise TypeError(f"setting {name}: unsupported type {annotation!r}")


def _json_type(field: SettingField) -> th.JSONTypeHelper:
    spec = field.spec
    if spec.schema is not None:
        return spec.schema
    numeric = {"minimum": spec.minimum, "maximum": spec.maximum, "exclusive_minimum": spec.exclusive_minimum}
    if field.kind == "integer":
        return th.IntegerType(**numeric)
    if field.kind == "number":
        return th.NumberType(**numeric)
    if field.kind == "boolean":
        return th.BooleanType()
    if field.kind == "date":
        return th.DateType()
    if field.kind == "array":
        items = th.StringType(allowed_values=list(spec.options)) if spec.options else th.StringType()
        return th.ArrayType(items)
    if field.kind == "object":
        return th.ObjectType(additional_properties=True)
    return th.StringType()


def _schema_property(field: SettingField) -> th.Property:
    spec = field.spec
    options = list(spec.options) if spec.options and field.kind == "string" else None
    return th.Property(
        field.name,
        _json_type(field),
        required=spec.required,
        default=_json_value(field.default),
        description=spec.description,
        secret=spec.secret,
        allowed_values=options,
    )


# --- values ------------------------------------------------------------------------------------------


def _is_unset(value: t.Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _take_deprecated_names(config: dict[str, t.Any], field: SettingField, warnings: list[str]) -> t.Any:
    """The setting's value, from its name or (with a warning) a deprecated name; the old keys are removed."""
    value = config.get(field.name)
    for old_name in field.spec.deprecated_names:
        if old_name not in config:
            continue
        old_value = config.pop(old_name)
        if _is_unset(value):
            value = old_value
            warnings.append(f"setting '{old_name}' is deprecated: use '{field.name}' (it means the same)")
        else:
            warnings.append(f"setting '{old_name}' is deprecated and ignored: '{field.name}' is set too")
    return value


def _coerce(field: SettingField, value: t.Any) -> tuple[t.Any, str | None]:
    """The value as its declared kind, or a problem ("must be ...")."""
    coercers: dict[str, Callable[[t.Any], tuple[t.Any, str | None]]] = {
        "string": _as_string,
        "integer": _as_integer,
        "number": _as_number,
        "boolean": _as_boolean,
        "date": _as_date,
        "array": _as_string_list,
        "object": _as_object,
    }
    return coercers[field.kind](value)


def _as_string(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, str):
        return value, None
    return None, f"must be a string (got {_shown(value)})"


def _as_integer(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, bool):
        return None, f"must be a whole number (got {_shown(value)})"
    if isinstance(value, int):
        return value, None
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return int(value), None
    if isinstance(value, str):
        try:
            return int(value.strip()), None
        except ValueError:
            pass
    return None, f"must be a whole number (got {_shown(value)})"


def _as_number(value: t.Any) -> tuple[t.Any, str | None]:
    problem = f"must be a number, e.g. 0.5 (got {_shown(value)})"
    if isinstance(value, bool):
        return None, problem
    if isinstance(value, int):
        return value, None
    if isinstance(value, float | Decimal):
        number = float(value)
        return (number, None) if math.isfinite(number) else (None, problem)
    if isinstance(value, str):
        try:
            number = float(Decimal(value.strip()))
        except (InvalidOperation, ValueError):
            return None, problem
        return (number, None) if math.isfinite(number) else (None, problem)
    return None, problem


def _as_boolean(value: t.Any) -> tuple[t.Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE, None
    return None, f"must be true or false (got {_shown(value)})"


def _as_date(value: t.Any) -> tuple[t.Any, str | None]:
    """Only ``YYYY-MM-DD`` (or an ISO 8601 date-time of that day): no other order of day and month is guessed."""
    if isinstance(value, datetime):
        return value.date().isoformat(), None
    if isinstance(value, date):
        return value.isoformat(), None
    if isinstance(value, str) and _ISO_DATE.fullmatch(text := value.strip()):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat(), None
        except ValueError:
            pass  # a month over 12, a day past the month's end or an hour over 23
    return None, f"must be a date like 2026-11-01 (got {_shown(value)})"


def not_in_future(value: t.Any) -> str | None:
    """A date setting's rule: a day after today (UTC) would sync nothing and say nothing, so it is refused."""
    today = datetime.now(timezone.utc).date()
    if date.fromisoformat(str(value)[:10]) > today:
        return f"is in the future ({value}; today is {today.isoformat()} UTC): nothing could be synced"
    return None


def _as_string_list(value: t.Any) -> tuple[t.Any, str | None]:
    value, parsed = _parsed_json_text(value, "[")
    if not parsed or not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        return None, f'must be a list of strings, e.g. ["a", "b"] (got {_shown(value)})'
    return list(value), None


def _as_object(value: t.Any) -> tuple[t.Any, str | None]:
    value, parsed = _parsed_json_text(value, "{")
    if not parsed or not isinstance(value, Mapping):
        return None, f"must be an object (a mapping of names to values), not {_kind_name(value)}"
    return dict(value), None


def _parsed_json_text(value: t.Any, opener: str) -> tuple[t.Any, bool]:
    """A list or object given as JSON text (as environment variables give them) parsed; False when it is not JSON."""
    if not (isinstance(value, str) and value.strip().startswith(opener)):
        return value, True
    try:
        return json.loads(value), True
    except ValueError:
        return value, False


def _bounds_problem(field: SettingField, value: t.Any) -> str | None:
    spec = field.spec
    if field.kind in ("integer", "number"):
        if spec.minimum is not None and value < spec.minimum:
            return f"must be {_number(spec.minimum)} or more (got {_number(value)})"
        if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            return f"must be more than {_number(spec.exclusive_minimum)} (got {_number(value)})"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be {_number(spec.maximum)} or less (got {_number(value)})"
    if spec.options:
        chosen = value if field.kind == "array" else [value]
        unknown = [item for item in chosen if item not in spec.options]
        if unknown:
            return f"must be one of {', '.join(spec.options)} (got {', '.join(map(repr, unknown))})"
    return None


def _json_value(value: t.Any) -> t.Any:
    """A value as it travels in a JSON config (tuples as lists, read-only mappings as dicts)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, types.MappingProxyType):
        return dict(value)
    return value


def _python_value(field: SettingField, value: t.Any) -> t.Any:
    """A config value as the settings object holds it (lists as tuples, dates as dates, objects read-only)."""
    if value is None:
        return None
    if field.kind == "array":
        return tuple(value)
    if field.kind == "date":
        return date.fromisoformat(str(value)[:10])
    if field.kind == "number":
        return float(value)
    if field.kind == "object":
        return types.MappingProxyType(dict(value))
    return value


def _shown(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_name(value: t.Any) -> str:
    return {str: "str", list: "list", int: "int", float: "float", bool: "bool"}.get(type(value), type(value).__name__)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _first_sentence(description: str) -> str:
    return description.split(". ")[0].rstrip(".") + "."
