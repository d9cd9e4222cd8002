"""The plugin skeleton: settings read one way, secrets redacted from the start, and one fatal-error path.

:class:`ConnectorTap` and :class:`ConnectorTarget` sit between singer-sdk's ``Tap``/``Target`` and a plugin:

- the config (a file, ``--config=ENV`` or both) is parsed by the plugin's declared settings before the SDK sees
  it: values coerced to their types, deprecated names mapped, defaults applied, unknown keys warned about once;
  every bad value is one ``ConfigValidationError`` line that names the setting;
- secrets are redacted from every log handler and traceback before anything is logged;
- :class:`ConnectorError` (and whatever a plugin lists in ``reported_errors``) ends the run with one ERROR line,
  exit code 1 and no traceback, whether it happens in a sync, a discovery or ``--test``.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import click
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import PluginBase
from singer_sdk.tap_base import CliTestOptionValue
from singer_sdk.target_base import Target
from typing_extensions import override

from .errors import ConnectorError, one_line
from .redaction import install_secret_redaction
from .sdk_compat import environment_config, tap_for_test_option
from .settings import PluginSettings, SettingsT, raw_secret_values

#: Keys the SDK itself reads from a config without declaring them.
SDK_UNDECLARED_KEYS = frozenset({"user_agent"})


def load_config(
    plugin: type[PluginBase],
    settings_class: type[PluginSettings],
    config: Mapping[str, t.Any] | None,
    *,
    parse_env: bool,
    validate: bool,
) -> dict[str, t.Any]:
    """The config a plugin hands to the SDK: parsed by its settings, secrets redacted, problems raised or warned."""
    raw = dict(config or {})
    if parse_env:
        names = settings_class.known_names()
        raw.update(environment_config(plugin.name, _full_schema(plugin), names))
    install_secret_redaction(raw_secret_values(settings_class, raw))
    other_known = set(_full_schema(plugin).get("properties", {})) | SDK_UNDECLARED_KEYS
    parsed = settings_class.parse(raw, other_known=other_known)
    for warning in parsed.warnings:
        plugin.logger.warning("%s", warning)
    if parsed.errors and validate:
        raise ConfigValidationError("Config validation failed", errors=parsed.errors)
    if not parsed.errors:
        try:
            install_secret_redaction(settings_class.from_config(parsed.config).secret_values())
        except ValueError as problems:
            if validate:
                raise ConfigValidationError("Config validation failed", errors=str(problems).split("; ")) from None
    return parsed.config


def settings_from_config(settings_class: type[SettingsT], config: Mapping[str, t.Any]) -> SettingsT:
    """The frozen settings of a config :func:`load_config` parsed (a bad one raises :class:`ConnectorError`).

    For a part of a plugin that is handed the config rather than the plugin, e.g. a SQL tap's connector.
    """
    try:
        return settings_class.from_config(config)
    except ValueError as problems:
        raise ConnectorError(f"Invalid config: {problems}") from None


def _full_schema(plugin: type[PluginBase]) -> dict[str, t.Any]:
    """The plugin's settings schema with the SDK's built-in settings (stream maps, flattening, batch, ...)."""
    schema = {"properties": dict(plugin.config_jsonschema.get("properties", {}))}
    plugin.append_builtin_config(schema)
    return schema


@contextmanager
def fatal_error_path(
    logger: logging.Logger, reported: tuple[type[BaseException], ...], describe: t.Callable[[BaseException], str]
) -> Iterator[None]:
    """Turn a reported error into one ERROR line and exit code 1 (no traceback); bad settings the same way."""
    try:
        yield
    except ConfigValidationError as invalid:
        for error in invalid.errors:
            logger.error("%s", error)
        sys.exit(1)
    except reported as error:
        logger.error("%s", one_line(describe(error)))
        sys.exit(1)


class ConnectorPlugin(PluginBase):
    """What a tap and a target built on the skeleton share (see the module docstring)."""

    settings_class: t.ClassVar[type[PluginSettings]]
    #: Errors that end a run with their one-line message; anything else is a bug and keeps its traceback.
    reported_errors: t.ClassVar[tuple[type[BaseException], ...]] = (ConnectorError,)

    @override
    def __init__(
        self,
        *,
        config: dict | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        **kwargs: t.Any,
    ) -> None:
        config = load_config(
            type(self), self.settings_class, config, parse_env=parse_env_config, validate=validate_config
        )
        super().__init__(config=config, parse_env_config=False, validate_config=validate_config, **kwargs)

    def load_settings(self, settings_class: type[SettingsT]) -> SettingsT:
        """The frozen settings (the config was parsed already; a bad one raises :class:`ConnectorError`)."""
        return settings_from_config(settings_class, self.config)

    @classmethod
    def describe_error(cls, error: BaseException) -> str:
        """The one line for a reported error (a plugin may add context, e.g. which service failed)."""
        return str(error)

    @classmethod
    def fatal_errors(cls) -> t.ContextManager[None]:
        """The fatal-error path of this plugin."""
        return fatal_error_path(cls.logger, cls.reported_errors, cls.describe_error)

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the plugin; a reported error ends it with one clear line."""
        with cls.fatal_errors():
            super().invoke(*args, **kwargs)


class ConnectorTap(ConnectorPlugin, Tap):
    """A singer-sdk tap on the skeleton."""

    @classmethod
    @override
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """``--discover``, with the same one-line errors as a run."""
        with cls.fatal_errors():
            super().cb_discover(ctx, param, value)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test`` (what ``meltano config test`` runs): one line per stream, or the same one-line errors as a run.

        ``--test`` reads each stream until its first record; ``--test=schema`` prints the SCHEMA messages only.
        """
        if value == CliTestOptionValue.Disabled.value:
            return
        with cls.fatal_errors():
            tap = tap_for_test_option(cls, ctx)
            if value == CliTestOptionValue.Schema.value:
                tap.write_schemas()
            else:
                read = _count_records(tap)
                tap.run_connection_test()
                for name in tap.streams:
                    outcome = "read its first record" if read[name] else "found no records for these settings"
                    cls.logger.info("Connection test: stream '%s' %s", name, outcome)
                cls.logger.info("Connection test passed for %d streams", len(tap.streams))
        ctx.exit()


def _count_records(tap: Tap) -> Counter[str]:
    """Count each stream's records from now on (each stream's ``post_process`` hook, wrapped on the instance)."""
    read: Counter[str] = Counter()
    for name, stream in tap.streams.items():

        def counted(
            row: dict, context: t.Any = None, *, name: str = name, post_process: t.Any = stream.post_process
        ) -> dict | None:
            read[name] += 1
            return post_process(row, context)

        stream.post_process = counted  # type: ignore[method-assign]
    return read


class ConnectorTarget(ConnectorPlugin, Target):
    """A singer-sdk target on the skeleton."""
