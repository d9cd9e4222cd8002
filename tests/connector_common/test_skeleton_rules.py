"""Rules of the skeleton that code review would otherwise have to remember, checked over every plugin's source.

- every method a plugin class defines that singer-sdk also defines carries ``@override``;
- no plugin class overrides a ``@final`` SDK method;
- private SDK members (``_request``, ``_latest_state``, ...) appear only in ``connector_common/sdk_compat.py``;
- every REST stream of a tap is a ``connector_common.rest.ServiceStream``, and no tap sizes its own connection
  pool or writes its own rule of which HTTP statuses are fatal or retried (429, 4xx and 5xx ranges).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.plugin_base import PluginBase
from singer_sdk.sinks import Sink
from singer_sdk.sql import SQLConnector, SQLStream, SQLTap
from singer_sdk.streams import RESTStream
from singer_sdk.target_base import Target

PLUGIN_PACKAGES = ("tap_kaon_insights", "tap_kahuna_logs", "tap_duckdb", "target_kissmetrics")
REST_TAPS = ("tap_kaon_insights", "tap_kahuna_logs")
SDK_CLASSES = (PluginBase, Tap, Target, Stream, RESTStream, Sink, SQLTap, SQLStream, SQLConnector)


def modules(package: str) -> list[ModuleType]:
    """Every module of a plugin package (its vendored connector_common included; ``__main__`` runs the CLI)."""
    root = importlib.import_module(package)
    names = [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [root, *(importlib.import_module(name) for name in names if not name.endswith(".__main__"))]


def own_classes(package: str) -> list[type]:
    """The classes a plugin package defines."""
    return [
        cls
        for module in modules(package)
        for cls in vars(module).values()
        if inspect.isclass(cls) and cls.__module__ == module.__name__
    ]


def sdk_definition(cls: type, name: str) -> Any:
    """What the nearest singer-sdk base class of ``cls`` defines as ``name``, or None."""
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("singer_sdk") and name in base.__dict__:
            return base.__dict__[name]
    return None


def function_of(member: Any) -> Any:
    """The function behind a method, property, cached property, classmethod or staticmethod."""
    if isinstance(member, property):
        return member.fget
    if isinstance(member, functools.cached_property):
        return member.func
    if isinstance(member, classmethod | staticmethod):
        return member.__func__
    return member


def methods(cls: type) -> list[tuple[str, Any]]:
    """The methods and properties a class defines itself."""
    kinds = (property, functools.cached_property, classmethod, staticmethod)
    return [
        (name, member)
        for name, member in cls.__dict__.items()
        if (inspect.isfunction(member) or isinstance(member, kinds))
        and (name == "__init__" or not name.startswith("__"))
    ]


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_every_sdk_hook_carries_override(package: str) -> None:
    missing = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in own_classes(package)
        for name, member in methods(cls)
        if sdk_definition(cls, name) is not None and not getattr(function_of(member), "__override__", False)
    ]
    assert missing == []


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_no_final_sdk_method_is_overridden(package: str) -> None:
    overridden = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in own_classes(package)
        for name, _ in methods(cls)
        if getattr(function_of(sdk_definition(cls, name)), "__final__", False)
    ]
    assert overridden == []
    assert getattr(Tap.sync_all, "__final__", False), "the SDK still marks its final methods (this test would see)"


def private_sdk_members() -> set[str]:
    """Names starting with one underscore that singer-sdk's base classes define."""
    return {
        name
        for cls in SDK_CLASSES
        for base in cls.__mro__
        if base.__module__.startswith("singer_sdk")
        for name in base.__dict__
        if name.startswith("_") and not name.startswith("__")
    }


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_private_sdk_members_are_used_only_in_sdk_compat(package: str) -> None:
    private = private_sdk_members()
    uses = []
    for module in modules(package):
        path = Path(module.__file__ or "")
        if path.name == "sdk_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "name", None)
            if isinstance(node, ast.Attribute | ast.FunctionDef) and name in private:
                uses.append(f"{path.name}:{node.lineno} {name}")
    assert uses == []
    assert {"_request", "_engine"} <= private, "the scan knows the SDK's private members (REST and SQL classes)"


@pytest.mark.parametrize("package", REST_TAPS)
def test_every_rest_stream_is_a_service_stream(package: str) -> None:
    service_stream = importlib.import_module(f"{package}.connector_common.rest").ServiceStream
    rest_streams = [
        cls
        for cls in own_classes(package)
        if issubclass(cls, RESTStream) and ".connector_common." not in cls.__module__
    ]
    assert len(rest_streams) >= 5, "the scan sees the tap's streams"
    assert [cls.__qualname__ for cls in rest_streams if not issubclass(cls, service_stream)] == []


def status_rules(tree: ast.AST) -> list[str]:
    """What in a module decides on HTTP statuses or pools: 429, a 400/500 bound, HTTPAdapter, requests_session."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in (400, 429, 499, 500) and type(node.value) is int:
            found.append(f"{node.lineno}: {node.value}")
        elif isinstance(node, ast.Attribute) and node.attr in (
            "TOO_MANY_REQUESTS",
            "BAD_REQUEST",
            "INTERNAL_SERVER_ERROR",
            "requests_session",
        ):
            found.append(f"{node.lineno}: {node.attr}")
        elif isinstance(node, ast.Name) and node.id == "HTTPAdapter":
            found.append(f"{node.lineno}: HTTPAdapter")
        elif isinstance(node, ast.FunctionDef) and node.name == "requests_session":
            found.append(f"{node.lineno}: def requests_session")
    return found


@pytest.mark.parametrize("package", REST_TAPS)
def test_taps_leave_pools_and_status_rules_to_connector_common(package: str) -> None:
    found = {
        Path(module.__file__ or "").name: rules
        for module in modules(package)
        if ".connector_common" not in module.__name__
        and (rules := status_rules(ast.parse(Path(module.__file__ or "").read_text())))
    }
    assert found == {}
    rest = importlib.import_module(f"{package}.connector_common.rest")
    assert status_rules(ast.parse(inspect.getsource(rest))), "the scan sees a pool and a status rule where they live"
