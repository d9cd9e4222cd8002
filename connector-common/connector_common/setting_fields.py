"""Declaring one setting: :func:`setting` makes a dataclass field carrying its :class:`SettingSpec`, and
:func:`declared_fields` reads a settings class's fields back with their JSON kinds (``settings.py`` explains the
whole).
"""

from __future__ import annotations

import dataclasses
import types
import typing as t
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timezone

from singer_sdk import typing as th

if t.TYPE_CHECKING:
    from .settings import PluginSettings


#: A rule beyond the type and range: given the coerced value, a problem ("must ...") or None.
Rule = Callable[[t.Any], "str | None"]
_METADATA_KEY = "connector_setting"


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


def declared_fields(cls: type[PluginSettings]) -> Iterable[SettingField]:
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


def not_in_future(value: t.Any) -> str | None:
    """A date setting's rule: a day after today (UTC) would sync nothing and say nothing, so it is refused."""
    today = datetime.now(timezone.utc).date()
    if date.fromisoformat(str(value)[:10]) > today:
        return f"is in the future ({value}; today is {today.isoformat()} UTC): nothing could be synced"
    return None


def first_sentence(description: str) -> str:
    return description.split(". ")[0].rstrip(".") + "."
