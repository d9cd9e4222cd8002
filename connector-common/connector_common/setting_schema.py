"""A declared setting as JSON schema: the property ``--about`` and ``config_jsonschema`` show."""

from __future__ import annotations

from singer_sdk import typing as th

from .setting_fields import SettingField
from .setting_values import json_value


def json_type(field: SettingField) -> th.JSONTypeHelper:
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


def schema_property(field: SettingField) -> th.Property:
    spec = field.spec
    options = list(spec.options) if spec.options and field.kind == "string" else None
    return th.Property(
        field.name,
        json_type(field),
        required=spec.required,
        default=json_value(field.default),
        description=spec.description,
        secret=spec.secret,
        allowed_values=options,
    )
