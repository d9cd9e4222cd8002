"""The declared-settings base: schema, coercion from strings, defaults, deprecated names, one message per bad value."""

from __future__ import annotations

import dataclasses
import typing as t
from collections.abc import Mapping
from datetime import date

import pytest

from connector_common.errors import ConnectorError
from connector_common.plugin import settings_from_config
from connector_common.setting_fields import setting
from connector_common.settings import PluginSettings, raw_secret_values, unknown_setting_warnings
from connector_common.urls import service_url_rule, url_problem


class ExampleSettings(PluginSettings):
    """Every kind of setting the plugins use."""

    api_key: str = setting("The key.", required=True, secret=True)
    api_url: str = setting("Where.", default="https://api.example.com", rule=service_url_rule("the key is in it"))
    mode: str = setting("Which mode.", default="p", options=("p", "s"))
    start: date = setting("First day.", required=True)
    end: date | None = setting("Last day.")
    max_retries: int = setting("Retries after the first try.", default=5, minimum=0, maximum=20)
    backoff_base_seconds: float = setting("First wait.", default=0.5, minimum=0, deprecated_names=("backoff_base",))
    timeout: float = setting("Seconds.", default=30, exclusive_minimum=0)
    verbose: bool = setting("More output.", default=False)
    names: tuple[str, ...] = setting("Some names.", default=["a", "b"], options=("a", "b", "c"))
    labels: Mapping[str, t.Any] = setting("Free labels.", default={"x": 1})

    def problems(self) -> list[str]:
        if self.end is not None and self.end < self.start:
            return [f"end {self.end} is before start {self.start}"]
        return []


GOOD = {"api_key": "secret-123", "start": "2026-11-01"}


def test_defaults_apply_and_the_object_is_frozen_and_typed() -> None:
    settings = ExampleSettings.from_config(GOOD)
    assert (settings.api_url, settings.mode, settings.max_retries, settings.backoff_base_seconds) == (
        "https://api.example.com",
        "p",
        5,
        0.5,
    )
    assert settings.start == date(2026, 11, 1)
    assert settings.end is None
    assert settings.names == ("a", "b")
    assert dict(settings.labels) == {"x": 1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_retries = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.labels["y"] = 2  # type: ignore[index]


def test_strings_from_the_environment_become_their_types() -> None:
    raw = {
        **GOOD,
        "max_retries": "7",
        "backoff_base_seconds": "0.25",
        "timeout": "1e1",
        "verbose": "TRUE",
        "names": '["c"]',
        "labels": '{"y": 2}',
        "end": "2026-11-30T00:00:00Z",
    }
    settings = ExampleSettings.from_config(raw)
    assert (settings.max_retries, settings.backoff_base_seconds, settings.timeout, settings.verbose) == (
        7,
        0.25,
        10.0,
        True,
    )
    assert settings.names == ("c",)
    assert dict(settings.labels) == {"y": 2}
    assert settings.end == date(2026, 11, 30)
    parsed = ExampleSettings.parse(raw)
    assert parsed.config["backoff_base_seconds"] == 0.25, "the SDK receives a JSON number, not '0.25'"
    assert parsed.config["names"] == ["c"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"api_key": None}, "api_key is required: The key."),
        ({"api_key": "  "}, "api_key is required: The key."),
        ({"start": "18/11/2026"}, "start must be a date like 2026-11-01 (got '18/11/2026')"),
        ({"max_retries": "x"}, "max_retries must be a whole number (got 'x')"),
        ({"max_retries": True}, "max_retries must be a whole number (got True)"),
        ({"max_retries": 2.5}, "max_retries must be a whole number (got 2.5)"),
        ({"max_retries": -1}, "max_retries must be 0 or more (got -1)"),
        ({"max_retries": 21}, "max_retries must be 20 or less (got 21)"),
        ({"backoff_base_seconds": "fast"}, "backoff_base_seconds must be a number, e.g. 0.5 (got 'fast')"),
        ({"backoff_base_seconds": "nan"}, "backoff_base_seconds must be a number, e.g. 0.5 (got 'nan')"),
        ({"timeout": 0}, "timeout must be more than 0 (got 0)"),
        ({"verbose": "maybe"}, "verbose must be true or false (got 'maybe')"),
        ({"mode": "x"}, "mode must be one of p, s (got 'x')"),
        ({"mode": 3}, "mode must be a string (got 3)"),
        ({"names": "a"}, "names must be a list of strings"),
        ({"names": ["a", "z"]}, "names must be one of a, b, c (got 'z')"),
        ({"names": [1]}, "names must be a list of strings"),
        ({"labels": "x"}, "labels must be an object (a mapping of names to values), not str"),
        ({"labels": "{broken"}, "labels must be an object"),
        ({"api_url": "ftp://x"}, "api_url 'ftp://x' is not an http(s) URL"),
        ({"api_url": "http://api.example.com"}, "api_url 'http://api.example.com' must use https for api.example.com"),
    ],
)
def test_each_bad_value_is_one_message_naming_the_setting(override: dict, message: str) -> None:
    parsed = ExampleSettings.parse({**GOOD, **override})
    assert len(parsed.errors) == 1, parsed.errors
    assert parsed.errors[0].startswith(message), parsed.errors


def test_every_bad_value_is_reported_at_once() -> None:
    parsed = ExampleSettings.parse({"max_retries": -1, "timeout": "x", "mode": "q"})
    assert [error.split(" ", 1)[0] for error in parsed.errors] == ["api_key", "mode", "start", "max_retries", "timeout"]


def test_rules_across_settings_come_from_problems() -> None:
    with pytest.raises(ValueError, match="end 2026-10-01 is before start 2026-11-01"):
        ExampleSettings.from_config({**GOOD, "end": "2026-10-01"})


def test_settings_from_a_handed_config_are_typed_or_one_connector_error() -> None:
    settings = settings_from_config(ExampleSettings, ExampleSettings.parse({**GOOD, "max_retries": "3"}).config)
    assert (settings.max_retries, settings.start, settings.mode) == (3, date(2026, 11, 1), "p")
    with pytest.raises(ConnectorError, match=r"^Invalid config: end 2026-10-01 is before start 2026-11-01$"):
        settings_from_config(ExampleSettings, {**GOOD, "end": "2026-10-01"})


def test_deprecated_name_still_works_with_a_warning_and_the_new_name_wins() -> None:
    parsed = ExampleSettings.parse({**GOOD, "backoff_base": "0.125"})
    assert parsed.config["backoff_base_seconds"] == 0.125
    assert "backoff_base" not in parsed.config
    assert parsed.warnings == ["setting 'backoff_base' is deprecated: use 'backoff_base_seconds' (it means the same)"]
    both = ExampleSettings.parse({**GOOD, "backoff_base": 9, "backoff_base_seconds": 0.2})
    assert both.config["backoff_base_seconds"] == 0.2
    assert "ignored" in both.warnings[0]


def test_unknown_keys_warn_with_the_closest_known_name() -> None:
    parsed = ExampleSettings.parse({**GOOD, "max_retires": 3, "stream_maps": {}, "zzz": 1}, other_known={"stream_maps"})
    assert parsed.errors == []
    assert parsed.warnings == [
        "unknown setting 'max_retires'; did you mean 'max_retries'?",
        "unknown setting 'zzz' (it is ignored)",
    ]
    assert parsed.config["stream_maps"] == {}, "keys the settings do not declare pass through to the SDK"
    assert unknown_setting_warnings({"start_weeek": 1}, {"start_week"}) == [
        "unknown setting 'start_weeek'; did you mean 'start_week'?"
    ]


def test_schema_has_types_defaults_secrets_options_and_deprecated_names() -> None:
    schema = ExampleSettings.config_jsonschema()
    properties = schema["properties"]
    assert schema["required"] == ["api_key", "start"]
    assert properties["api_key"]["secret"] is True
    assert properties["api_key"]["writeOnly"] is True
    assert properties["max_retries"]["type"][0] == "integer"
    assert (properties["max_retries"]["minimum"], properties["max_retries"]["maximum"]) == (0, 20)
    assert properties["backoff_base_seconds"]["type"][0] == "number"
    assert properties["timeout"]["exclusiveMinimum"] == 0
    assert properties["mode"]["enum"] == ["p", "s"]
    assert properties["names"]["items"]["enum"] == ["a", "b", "c"]
    assert properties["names"]["default"] == ["a", "b"]
    assert properties["start"]["format"] == "date"
    assert properties["backoff_base"]["deprecated"] is True
    assert properties["backoff_base"]["description"] == "Deprecated: use backoff_base_seconds."


def test_secrets_stay_out_of_the_repr_and_are_listed_for_redaction() -> None:
    settings = ExampleSettings.from_config(GOOD)
    assert "secret-123" not in repr(settings)
    assert settings.secret_values() == ["secret-123"]
    assert raw_secret_values(ExampleSettings, {"api_key": "raw-secret", "start": "x"}) == ["raw-secret"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.example.com", True),
        ("http://127.0.0.1:8000/api", True),
        ("http://localhost/api", True),
        ("http://[::1]:8000/api", True),
        ("http://api.example.com", False),
        ("http://127.0.0.1.example.com", False),
        ("ftp://127.0.0.1", False),
        ("not a url", False),
    ],
)
def test_the_url_rule(url: str, allowed: bool) -> None:
    assert (url_problem(url) is None) is allowed
