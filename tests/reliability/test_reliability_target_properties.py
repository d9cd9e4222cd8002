"""Property-based: random records and schemas through the real target-kissmetrics CLI.

Every record is either delivered as one /e beacon whose decoded parameters are exactly the intended ones
(an oracle written from the README's encoding rules, independent of the target's code), or dead-lettered
with its reasons; never both, never neither, and the run never crashes without a message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import simplejson  # singer-sdk's own JSON library: writes Decimal as a JSON number
from hypothesis import HealthCheck, event, given, settings, strategies as st

from emulators.testing import EmulatorProcess
from tests.reliability.reliability_helpers import KM_KEY, km_config
from tests.support.cli import TARGET_KM, json_lines, run_plugin

RESERVED = {"person", "event", "timestamp", "rid"}
TIMESTAMP = "2026-11-18T15:30:00+00:00"
TIMESTAMP_UNIX = 1_795_015_800

# Text with unicode, the separators Kissmetrics rewrites, URL-special characters and control characters.
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
special_text = st.sampled_from(["a,b", "x:y", "50% off & more", "a=b+c", "café ☕", "日本語", "quote\"'", "", "%00"])
long_text = st.integers(min_value=200, max_value=700).map(lambda n: "ü" * n)
texts = st.one_of(any_text, special_text, long_text)
names = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="."), min_size=1, max_size=12),
    st.sampled_from(["a,b", "k:v", "_hidden", "Name", "name", "ünï", "x" * 300]),
).filter(lambda name: name.lower() not in RESERVED and name.strip())
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(st.one_of(st.integers(-1000, 1000), any_text, special_text), max_size=4),
        st.dictionaries(names, inner, max_size=3),
    ),
    max_leaves=6,
)
identities = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=30),
    st.sampled_from(["", "a" * 256, "user@example.com", "ünï,code:id"]),
)
records = st.fixed_dictionaries(
    {"person": identities, "event": identities},
    optional={},
).flatmap(lambda fixed: st.dictionaries(names, values, max_size=5).map(lambda extra: {**extra, **fixed}))


def schema_for(value: Any) -> dict[str, Any]:
    """A JSON schema that accepts ``value`` (and null)."""
    if isinstance(value, bool):
        return {"type": ["boolean", "null"]}
    if isinstance(value, int):
        return {"type": ["integer", "null"]}
    if isinstance(value, Decimal):
        return {"type": ["number", "null"]}
    if isinstance(value, dict):
        return {"type": ["object", "null"], "properties": {k: schema_for(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"type": ["array", "null"], "items": {"type": ["string", "integer"]}}
    return {"type": ["string", "null"]}


def encode_scalar(value: Any) -> str | None:
    """The README's rule for one value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def intended_properties(record: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flattened ``parent.child`` names and encoded values; nulls, empty objects and empty lists dropped."""
    properties = []
    for name, value in record.items():
        if not prefix and name in RESERVED - {"rid"}:
            continue
        full = f"{prefix}{name}"
        if isinstance(value, dict):
            properties += intended_properties(value, f"{full}.")
        elif isinstance(value, list):
            if value:
                properties.append((full, "; ".join(encode_scalar(item).replace(",", " ") for item in value)))
        elif (encoded := encode_scalar(value)) is not None:
            properties.append((full, encoded))
    return properties


def problems(record: dict[str, Any]) -> list[str]:
    """Why the README's validation rules reject the record ([] if they accept it)."""
    found = []
    person, event = record["person"], record["event"]
    if not person or len(person) > 255:
        found.append("person")
    if not event or len(event) > 255 or "," in event or ":" in event:
        found.append("event")
    seen = set()
    for name, value in intended_properties(record):
        if len(name) > 255 or "," in name or ":" in name or name.startswith("_") or name.lower() in seen:
            found.append(f"name {name!r}")
        if len(value) > 512:
            found.append(f"value of {name!r}")
        seen.add(name.lower())
    return found


def same_value(received: str, intended: str) -> bool:
    """Equal text, or equal numbers (a decimal may be written with other trailing zeros)."""
    if received == intended:
        return True
    try:
        return Decimal(received) == Decimal(intended)
    except ArithmeticError:
        return False


@pytest.fixture(scope="module")
def kissmetrics() -> Iterator[EmulatorProcess]:
    """One Kissmetrics emulator for the module."""
    emulator = EmulatorProcess("kissmetrics", "--now", TIMESTAMP)
    yield emulator
    emulator.stop()


@pytest.mark.slow
@settings(
    max_examples=50,
    derandomize=True,  # the same 50 examples on every run: make test stays deterministic
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(records, min_size=1, max_size=6))
def test_every_record_is_delivered_exactly_as_intended_or_dead_lettered(
    kissmetrics: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory, batch: list[dict[str, Any]]
) -> None:
    workdir = tmp_path_factory.mktemp("props")
    kissmetrics.reset()
    messages: list[dict] = []
    for rid, record in enumerate(batch):
        record = {**record, "rid": rid, "timestamp": TIMESTAMP}
        batch[rid] = record
        messages.append(
            {
                "type": "SCHEMA",
                "stream": f"s{rid}",
                "key_properties": ["rid"],
                "schema": {"type": "object", "properties": {k: schema_for(v) for k, v in record.items()}},
            }
        )
        messages.append({"type": "RECORD", "stream": f"s{rid}", "record": record})
    stdin = "".join(simplejson.dumps(message, use_decimal=True) + "\n" for message in messages)

    # Each record is its own stream: one invalid record is all of its stream, so no ratio may fail the run here.
    config = km_config(kissmetrics.url, workdir, max_dead_letter_ratio=1)
    run = run_plugin(TARGET_KM, config, workdir, stdin=stdin, timeout=120)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    beacons = kissmetrics.control("beacons?offset=0&limit=100000")["beacons"]
    delivered = {int(b["params"]["rid"]): b for b in beacons}
    dead_path = workdir / "dead-letters.jsonl"
    dead_lines = json_lines(dead_path.read_text()) if dead_path.exists() else []
    dead = {json.loads(line)["record"]["rid"]: json.loads(line) for line in dead_lines}
    assert len(delivered) == len(beacons), "a record was sent more than once (no faults were injected)"
    for rid, record in enumerate(batch):
        expected_problems = problems(record)
        event("dead-lettered" if expected_problems else "delivered")
        assert (rid in delivered) != (rid in dead), f"record {rid} delivered={rid in delivered} dead={rid in dead}"
        if rid in dead:
            assert dead[rid]["reasons"], dead[rid]
            assert expected_problems, f"valid record dead-lettered: {record!r} -> {dead[rid]['reasons']}"
            continue
        assert not expected_problems, f"invalid record delivered ({expected_problems}): {record!r}"
        beacon = delivered[rid]
        assert beacon["kind"] == "e"
        assert not beacon["repeated_keys"]
        params = dict(beacon["params"])
        assert params.pop("_k") == KM_KEY
        assert params.pop("_p") == record["person"]
        assert params.pop("_n") == record["event"]
        assert params.pop("_t") == str(TIMESTAMP_UNIX)
        assert params.pop("_d") == "1"
        intended = dict(intended_properties(record))
        assert set(params) == set(intended), f"names differ: {sorted(set(params) ^ set(intended))}"
        for name, value in intended.items():
            assert same_value(params[name], value), f"{name!r}: received {params[name]!r}, intended {value!r}"
