"""Answer corruption: rules that rewrite a service's successful answers (see ``core.py``'s docstring)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from emulators.responses import json_response

HTML_ERROR_PAGE = "<html><head><title>Service Unavailable</title></head><body>Try again later</body></html>"
#: ``edit(body, key, rule) -> new body``: a corruption of the parsed JSON body; ``key`` is the body key it
#: acts on (the rule's ``key``, else the answer's main key).
JsonEdit = Callable[[Any, "str | None", "Corruption"], Any]
#: Kinds that need a ``value`` in their rule.
KINDS_WITH_VALUE = frozenset({"set_key", "replace_body", "insert_item"})


@dataclass(frozen=True)
class AnswerTarget:
    """What a service says about one successful answer so that corruption rules can pick it.

    ``fields`` are the service's declared target fields for this answer (a list value matches a rule
    naming any one of its items); ``main_key`` is the body key ``missing_key``, ``wrong_types``,
    ``set_key`` and ``insert_item`` act on by default; when the rule's target names ``key_field``
    (Kahuna: ``category``), that value is the main key instead.
    """

    fields: Mapping[str, Any]
    main_key: str | None = None
    key_field: str | None = None


@dataclass
class Corruption:
    """One rule: break every answer whose target matches (at most ``times`` answers when set)."""

    kind: str
    target: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    value: Any = None
    index: int = 0
    times: int | None = None

    def matches(self, target: AnswerTarget) -> bool:
        """Whether every field this rule names has the wanted value in ``target``."""
        return all(_field_matches(target.fields.get(name), wanted) for name, wanted in self.target.items())

    def key_for(self, target: AnswerTarget) -> str | None:
        """The body key this rule acts on for ``target``."""
        if self.key is not None:
            return self.key
        if target.key_field and target.key_field in self.target:
            return str(self.target[target.key_field])
        return target.main_key


def _field_matches(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, list | tuple):
        return wanted in actual
    return bool(actual == wanted)


class CorruptedResponse(web.Response):
    """A corrupted answer: the request log records its ``kind``."""

    def __init__(self, *, kind: str, body: bytes, status: int, content_type: str) -> None:
        super().__init__(body=body, status=status, content_type=content_type)
        self.kind = kind


def _truncated(body: bytes) -> bytes:
    return body[: max(len(body) // 2, 1)]


def _malformed(body: bytes) -> bytes:
    return body.replace(b'"', b"'", 4)  # single-quoted keys: JSON parsers fail at the first one


def _missing_key(body: Any, key: str | None, _: Corruption) -> Any:
    if isinstance(body, dict):
        body.pop(key, None)
    return body


def _wrong_types(body: Any, key: str | None, _: Corruption) -> Any:
    if isinstance(body, dict) and key in body:
        body[key] = _numbers_as_strings(body[key])
    return body


def _numbers_as_strings(value: Any) -> Any:
    """Every number inside ``value`` as a string that is not one (``12`` -> ``"12a"``)."""
    if isinstance(value, list):
        return [_numbers_as_strings(item) for item in value]
    if isinstance(value, dict):
        return {name: _numbers_as_strings(item) for name, item in value.items()}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}a"
    return value


def _set_key(body: Any, key: str | None, rule: Corruption) -> Any:
    if isinstance(body, dict) and key is not None:
        body[key] = rule.value
    return body


def _replace_body(_: Any, __: str | None, rule: Corruption) -> Any:
    return rule.value


def _insert_item(body: Any, key: str | None, rule: Corruption) -> Any:
    if isinstance(body, dict) and isinstance(body.get(key), list):
        body[key].insert(rule.index, rule.value)
    return body


#: Kinds every service has, with what they do (the text kinds work on any body, the others on a JSON object).
CORE_KINDS = {
    "html_200": "an HTML error page with status 200 and Content-Type text/html",
    "truncated_json": "the first half of the body",
    "malformed_json": "the first four double quotes become single quotes",
    "missing_key": "the key is removed",
    "wrong_types": 'every number inside the key\'s value becomes a string ("12a")',
    "set_key": "the key is set to value (any JSON value, null included)",
    "replace_body": 'the whole body becomes value (e.g. [] or {"more_records": false})',
    "insert_item": "value is inserted at position index of the key's array",
}
_TEXT_KINDS: dict[str, Callable[[bytes], bytes]] = {"truncated_json": _truncated, "malformed_json": _malformed}
_CORE_EDITS: dict[str, JsonEdit] = {
    "missing_key": _missing_key,
    "wrong_types": _wrong_types,
    "set_key": _set_key,
    "replace_body": _replace_body,
    "insert_item": _insert_item,
}


class AnswerCorruptions:
    """Corruption rules, the kinds they may use, and a log of every answer they broke."""

    def __init__(self) -> None:
        self.rules: list[Corruption] = []
        self.applied: list[dict[str, Any]] = []
        self.descriptions = dict(CORE_KINDS)
        self._edits: dict[str, JsonEdit] = dict(_CORE_EDITS)
        self._target_fields: dict[str, type | tuple[type, ...]] = {}
        self._check_target: Callable[[dict[str, Any]], None] | None = None
        self._declared = False

    # --- what a service declares ------------------------------------------------------------
    def declare_targets(
        self, fields: Mapping[str, type | tuple[type, ...]], check: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """The fields a rule's target may name, with their JSON types; ``check`` rejects bad values (ValueError)."""
        self._target_fields = dict(fields)
        self._check_target = check
        self._declared = True

    def add_kind(self, name: str, edit: JsonEdit, description: str) -> None:
        """A service's own kind: ``edit`` changes the parsed JSON body."""
        self._edits[name] = edit
        self.descriptions[name] = description

    @property
    def kinds(self) -> list[str]:
        """Every kind a rule may use."""
        return sorted(self.descriptions)

    # --- rules ----------------------------------------------------------------------------------
    def parse_rule(self, spec: Any) -> Corruption:
        """A rule from its JSON form; ``ValueError`` naming the first bad part."""
        if not self._declared:
            raise ValueError("this emulator declares no answers that can be corrupted")
        if not isinstance(spec, dict):
            raise ValueError('send a JSON object: {"kind", "target", "key"?, "value"?, "index"?, "times"?}')
        unknown = set(spec) - {"kind", "target", "key", "value", "index", "times"}
        if unknown:
            raise ValueError(f"unknown rule field(s) {sorted(unknown)}; known: kind, target, key, value, index, times")
        kind = spec.get("kind")
        if kind not in self.descriptions:
            raise ValueError(f"kind must be one of {self.kinds}, got {json.dumps(kind)}")
        if kind in KINDS_WITH_VALUE and "value" not in spec:
            raise ValueError(f"kind {kind} needs a value")
        target = spec.get("target", {})
        self._validate_target(target)
        key, index, times = spec.get("key"), spec.get("index", 0), spec.get("times")
        if key is not None and not isinstance(key, str):
            raise ValueError(f"key must be a string, got {json.dumps(key)}")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"index must be an integer, got {json.dumps(index)}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be an integer >= 1 or null, got {json.dumps(times)}")
        return Corruption(kind, dict(target), key, spec.get("value"), index, times)

    def _validate_target(self, target: Any) -> None:
        if not isinstance(target, dict):
            raise ValueError(f"target must be an object of {sorted(self._target_fields)}, got {json.dumps(target)}")
        for name, value in target.items():
            wanted = self._target_fields.get(name)
            if wanted is None:
                raise ValueError(f"unknown target field {name!r}; known: {sorted(self._target_fields)}")
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise ValueError(f"target field {name} must be {_type_names(wanted)}, got {json.dumps(value)}")
        if self._check_target is not None:
            self._check_target(target)

    def add(self, rule: Corruption) -> None:
        """Add ``rule``; it replaces a rule with the same target (one answer breaks one way)."""
        self.rules = [existing for existing in self.rules if existing.target != rule.target]
        self.rules.append(rule)

    def clear(self) -> None:
        """Forget every rule and the log of corrupted answers."""
        self.rules.clear()
        self.applied.clear()

    def rule_for(self, target: AnswerTarget) -> Corruption | None:
        """The matching rule naming the most fields (the latest of equals), or None."""
        best: Corruption | None = None
        for rule in self.rules:
            if rule.matches(target) and (best is None or len(rule.target) >= len(best.target)):
                best = rule
        return best

    def describe(self) -> dict[str, Any]:
        """Kinds, target fields, rules and the corrupted answers so far."""
        return {
            "kinds": self.descriptions,
            "target_fields": sorted(self._target_fields),
            "rules": [asdict(rule) for rule in self.rules],
            "applied": self.applied,
        }

    # --- applying -------------------------------------------------------------------------------
    def corrupt(self, response: web.Response, target: AnswerTarget) -> web.Response:
        """``response`` broken by the rule matching ``target``; unchanged without one or unless it is a 200."""
        if not self.rules or response.status != 200:
            return response
        rule = self.rule_for(target)
        if rule is None:
            return response
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self.rules.remove(rule)
        self.applied.append({"kind": rule.kind, "target": _jsonable(target.fields)})
        body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
        if rule.kind == "html_200":
            return CorruptedResponse(
                kind=rule.kind, body=HTML_ERROR_PAGE.encode(), status=200, content_type="text/html"
            )
        if rule.kind in _TEXT_KINDS:
            broken = _TEXT_KINDS[rule.kind](body)
        else:
            edited = self._edits[rule.kind](json.loads(body), rule.key_for(target), rule)
            broken = json.dumps(edited, separators=(",", ":")).encode()
        return CorruptedResponse(kind=rule.kind, body=broken, status=200, content_type="application/json")

    # --- control routes -------------------------------------------------------------------------
    async def describe_handler(self, _: web.Request) -> web.Response:
        """``GET /_emulator/corruptions``."""
        return json_response(self.describe())

    async def update_handler(self, request: web.Request) -> web.Response:
        """``POST /_emulator/corruptions``: add a rule, or ``{"clear": true}``."""
        try:
            spec = await request.json()
            if isinstance(spec, dict) and spec.get("clear"):
                self.clear()
            else:
                self.add(self.parse_rule(spec))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(self.describe())


def _type_names(wanted: type | tuple[type, ...]) -> str:
    types = wanted if isinstance(wanted, tuple) else (wanted,)
    names = {int: "an integer", str: "a string", float: "a number"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in fields.items()}
