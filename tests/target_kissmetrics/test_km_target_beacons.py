"""Beacon building without the network: encoding, mapping defaults, every validation rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from KISSmetrics.query_string import create_query

from target_kissmetrics.beacons import Beacon, InvalidRecordError, build_beacons
from target_kissmetrics.stream_mappings import MappingError, StreamMapping, infer_kind, mappings_for_stream
from target_kissmetrics.value_encoding import encode_scalar, unix_seconds

KEY = "km-demo-key"
JAN_1_2010 = 1262304000


def beacons_for(record: dict, setting: dict | None = None, fields: list[str] | None = None, **kwargs) -> list[Beacon]:
    streams = {"s": setting} if setting is not None else None
    return build_beacons(record, mappings_for_stream("s", streams, fields or list(record)), **kwargs)


def only_params(record: dict, setting: dict | None = None, **kwargs) -> dict[str, str]:
    (beacon,) = beacons_for(record, setting, **kwargs)
    return dict(beacon.params)


def reasons_for(record: dict, setting: dict | None = None, **kwargs) -> list[str]:
    with pytest.raises(InvalidRecordError) as caught:
        beacons_for(record, setting, **kwargs)
    return caught.value.reasons


# --- the documented examples and the official client's query builder ---------------------------


def test_event_matches_the_documented_example_and_the_official_client() -> None:
    (beacon,) = beacons_for({"person": "bob", "event": "Signed Up", "timestamp": JAN_1_2010, "gender": "male"})
    assert beacon.kind == "e"
    ours = parse_qsl(beacon.query(KEY))
    official = parse_qsl(
        create_query(KEY, "bob", event="Signed Up", timestamp=JAN_1_2010, properties={"gender": "male"})
    )
    assert sorted(ours) == sorted(official)
    assert dict(ours) == {"_k": KEY, "_p": "bob", "_n": "Signed Up", "_t": "1262304000", "_d": "1", "gender": "male"}


def test_set_matches_the_official_client() -> None:
    (beacon,) = beacons_for({"person": "bob", "timestamp": JAN_1_2010, "gender": "male"})
    assert beacon.kind == "s"
    official = parse_qsl(create_query(KEY, "bob", timestamp=JAN_1_2010, properties={"gender": "male"}))
    assert sorted(parse_qsl(beacon.query(KEY))) == sorted(official)


def test_alias_matches_the_documented_example_and_the_official_client() -> None:
    (beacon,) = beacons_for({"person": "bob", "alias": "bob@bob.com"})
    assert beacon.kind == "a"
    assert beacon.query(KEY) == "_k=km-demo-key&_p=bob&_n=bob%40bob.com"
    assert sorted(parse_qsl(beacon.query(KEY))) == sorted(parse_qsl(create_query(KEY, "bob", identity="bob@bob.com")))


# --- encoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a+b", "a%2Bb"),
        ("bob@bob.com", "bob%40bob.com"),
        ("x&y=z", "x%26y%3Dz"),
        ("two words", "two%20words"),
        ("café ☕", "caf%C3%A9%20%E2%98%95"),
        ("100%", "100%25"),
        ("a/b?c#d", "a%2Fb%3Fc%23d"),
    ],
)
def test_special_characters_are_percent_encoded(value: str, encoded: str) -> None:
    (beacon,) = beacons_for({"person": value, "event": "E", "timestamp": 1, "p": value})
    query = beacon.query(KEY)
    assert f"_p={encoded}&" in query
    assert query.endswith(f"&p={encoded}")
    assert dict(parse_qsl(query))["p"] == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (7, "7"),
        (Decimal("1E+3"), "1000"),
        (Decimal("12.50"), "12.50"),
        (1e-07, "0.0000001"),
        (2.5, "2.5"),
        (1e20, "100000000000000000000"),
        (dt.datetime(2026, 11, 18, 15, 30, tzinfo=dt.timezone.utc), "2026-11-18T15:30:00+00:00"),
        (dt.datetime(2026, 11, 18, 16, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2026-11-18T15:30:00+00:00"),
        (dt.datetime(2026, 11, 18, 15, 30), "2026-11-18T15:30:00+00:00"),
        (dt.date(2026, 11, 18), "2026-11-18"),
        (None, None),
    ],
)
def test_scalar_values_become_plain_strings(value: object, text: str | None) -> None:
    assert encode_scalar(value) == text


def test_nested_objects_flatten_lists_join_and_nulls_drop() -> None:
    params = only_params(
        {
            "person": "p1",
            "event": "E",
            "timestamp": 1,
            "device": {"os": "ios", "screen": {"width": 1170}, "empty": {}, "gone": None},
            "tags": ["a,b", "c", None, 3, True],
            "nested_list": [["x"], ["y", "z"]],
            "objects": [{"k": 1}],
            "empty_list": [],
            "nothing": None,
        }
    )
    assert params == {
        "_p": "p1",
        "_n": "E",
        "_t": "1",
        "_d": "1",
        "device.os": "ios",
        "device.screen.width": "1170",
        "tags": "a b; c; 3; true",
        "nested_list": "x; y; z",
        "objects": "k=1",
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2010-01-01T00:00:00Z", JAN_1_2010),
        ("2010-01-01T01:00:00+01:00", JAN_1_2010),
        ("2010-01-01 00:00:00.999999", JAN_1_2010),
        (dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc), JAN_1_2010),
        (dt.date(2010, 1, 1), JAN_1_2010),
        (JAN_1_2010, JAN_1_2010),
        (JAN_1_2010 + 0.7, JAN_1_2010),
        ("1262304000", JAN_1_2010),
        ("1262304000.5", JAN_1_2010),
        (Decimal("1262304000"), JAN_1_2010),
    ],
)
def test_timestamps_become_unix_seconds(value: object, seconds: int) -> None:
    assert unix_seconds(value) == seconds


def test_time_extracted_is_the_time_when_the_mapping_has_no_timestamp_field() -> None:
    params = only_params({"person": "p", "event": "E"}, time_extracted="2010-01-01T00:00:00+00:00")
    assert (params["_t"], params["_d"]) == ("1262304000", "1")


def test_the_timestamp_field_wins_over_time_extracted() -> None:
    params = only_params({"person": "p", "event": "E", "timestamp": 5}, time_extracted="2010-01-01T00:00:00Z")
    assert params["_t"] == "5"


# --- mappings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        (["person", "event", "timestamp", "plan"], "event"),
        (["person", "plan", "timestamp"], "set"),
        (["person", "alias"], "alias"),
        (["person", "alias", "timestamp"], "alias"),
        (["person", "alias", "plan"], "set"),
        (["person", "event", "_sdc_extracted_at"], "event"),
    ],
)
def test_kind_is_inferred_from_field_names(fields: list[str], kind: str) -> None:
    assert infer_kind(fields) == kind


def test_event_template_properties_and_exclude() -> None:
    setting = {
        "kind": "event",
        "person": "user_id",
        "event": "Kahuna {action}",
        "timestamp": "ts",
        "exclude": ["secret_note", "device.token"],
    }
    record = {
        "user_id": "u1",
        "action": "ia_click",
        "ts": "2010-01-01T00:00:00Z",
        "campaign": "Spring",
        "secret_note": "x",
        "device": {"os": "ios", "token": "t"},
    }
    assert only_params(record, setting) == {
        "_p": "u1",
        "_n": "Kahuna ia_click",
        "_t": str(JAN_1_2010),
        "_d": "1",
        "campaign": "Spring",
        "device.os": "ios",
    }


def test_listed_properties_only_and_url_decoded_template() -> None:
    setting = {
        "kind": "event",
        "person": "external_id",
        "event": "Viewed {path|urldecode}",
        "timestamp": "timestamp_unix",
        "properties": ["path", "sequence_in_second"],
    }
    record = {"external_id": "X-1", "path": "%2Fshop%2Fcart", "timestamp_unix": 5, "sequence_in_second": 0, "c": "k"}
    assert only_params(record, setting) == {
        "_p": "X-1",
        "_n": "Viewed /shop/cart",
        "_t": "5",
        "_d": "1",
        "path": "%2Fshop%2Fcart",
        "sequence_in_second": "0",
    }


def test_alias_of_a_list_field_gives_one_alias_per_identity() -> None:
    setting = {"kind": "alias", "person": "user_id", "alias": "credentials_by_type.email"}
    record = {"user_id": "u1", "credentials_by_type": {"email": ["a@x.com", "b@x.com"]}}
    beacons = beacons_for(record, setting)
    assert [(b.kind, dict(b.params)) for b in beacons] == [
        ("a", {"_p": "u1", "_n": "a@x.com"}),
        ("a", {"_p": "u1", "_n": "b@x.com"}),
    ]


def test_a_list_of_mappings_gives_several_beacons_per_record() -> None:
    setting = [
        {"kind": "event", "person": "id", "event": "Bought"},
        {"kind": "alias", "person": "id", "alias": "email"},
    ]
    beacons = beacons_for({"id": "1", "email": "e@x", "timestamp": 9}, setting)  # type: ignore[arg-type]
    assert [b.kind for b in beacons] == ["e", "a"]
    assert dict(beacons[0].params) == {"_p": "1", "_n": "Bought", "_t": "9", "_d": "1", "email": "e@x"}


def test_star_mapping_applies_to_unnamed_streams() -> None:
    (mapping,) = mappings_for_stream("other", {"*": {"kind": "set", "person": "id"}, "s": {"kind": "alias"}}, ["id"])
    assert (mapping.kind, mapping.person) == ("set", "id")


def test_an_unknown_kind_or_filter_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="unknown kind 'track'"):
        mappings_for_stream("s", {"s": {"kind": "track"}}, [])
    with pytest.raises(MappingError, match="unknown template filter 'shout'"):
        beacons_for({"person": "p", "a": "x", "timestamp": 1}, {"kind": "event", "event": "{a|shout}"})


def test_singer_metadata_columns_are_never_sent() -> None:
    record = {"person": "p", "event": "E", "timestamp": 1, "_sdc_received_at": "2026-01-01", "plan": "x"}
    assert "_sdc_received_at" not in only_params(record)


# --- validation: every rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("person", [None, "", "   "])
def test_missing_or_empty_person(person: str | None) -> None:
    assert reasons_for({"person": person, "event": "E", "timestamp": 1}) == [
        "person field 'person' is missing or empty"
    ]


def test_missing_person_field() -> None:
    assert reasons_for({"event": "E", "timestamp": 1}, fields=["person", "event", "timestamp"]) == [
        "person field 'person' is missing or empty"
    ]


def test_empty_event_name_field() -> None:
    assert reasons_for({"person": "p", "event": "", "timestamp": 1}) == ["event name field 'event' is missing or empty"]


def test_person_over_255() -> None:
    assert reasons_for({"person": "p" * 256, "event": "E", "timestamp": 1}) == [
        "person (_p) is 256 characters, over 255"
    ]
    assert only_params({"person": "p" * 255, "event": "E", "timestamp": 1})["_p"] == "p" * 255


def test_event_name_over_255_and_with_separators() -> None:
    assert reasons_for({"person": "p", "event": "e" * 256, "timestamp": 1}) == [
        "event name (_n) is 256 characters, over 255"
    ]
    assert "contains ',' or ':'" in reasons_for({"person": "p", "event": "a:b", "timestamp": 1})[0]


def test_alias_over_255_and_missing() -> None:
    assert reasons_for({"person": "p", "alias": "a" * 256}) == ["alias (_n) is 256 characters, over 255"]
    assert reasons_for({"person": "p", "alias": None}) == ["alias field 'alias' is missing or empty"]


def test_property_name_over_255_after_flattening() -> None:
    record = {"person": "p", "event": "E", "timestamp": 1, "a" * 200: {"b" * 60: 1}}
    (reason,) = reasons_for(record)
    assert "is 261 characters, over 255" in reason


@pytest.mark.parametrize("name", ["a,b", "a:b", "x.y:z"])
def test_property_name_with_comma_or_colon(name: str) -> None:
    (reason,) = reasons_for({"person": "p", "event": "E", "timestamp": 1, name: 1})
    assert reason == f"property name '{name}' contains ',' or ':' (Kissmetrics would turn them into spaces)"


def test_property_value_over_512() -> None:
    assert reasons_for({"person": "p", "event": "E", "timestamp": 1, "v": "x" * 513}) == [
        "value of property 'v' is 513 characters, over 512"
    ]
    assert only_params({"person": "p", "event": "E", "timestamp": 1, "v": "x" * 512})["v"] == "x" * 512


def test_list_value_over_512_after_joining() -> None:
    assert "over 512" in reasons_for({"person": "p", "event": "E", "timestamp": 1, "v": ["x" * 300, "y" * 300]})[0]


def test_reserved_underscore_property_name() -> None:
    assert "starts with '_'" in reasons_for({"person": "p", "event": "E", "timestamp": 1, "_p": "other"})[0]


def test_names_equal_ignoring_case_collide() -> None:
    (reason,) = reasons_for({"person": "p", "event": "E", "timestamp": 1, "Plan": "a", "plan": "b"})
    assert "case-insensitive" in reason


def test_no_timestamp_anywhere() -> None:
    assert reasons_for({"person": "p", "event": "E"}) == [
        "no timestamp: the mapping names no timestamp field and the RECORD has no time_extracted"
    ]


def test_bad_or_missing_timestamp_field() -> None:
    assert reasons_for({"person": "p", "event": "E", "timestamp": None}) == [
        "timestamp field 'timestamp' is missing or empty"
    ]
    assert "neither ISO 8601 nor unix seconds" in reasons_for({"person": "p", "event": "E", "timestamp": "soon"})[0]


def test_not_a_finite_number() -> None:
    assert "not a finite number" in reasons_for({"person": "p", "event": "E", "timestamp": 1, "v": float("nan")})[0]


def test_set_without_properties() -> None:
    assert reasons_for({"person": "p", "timestamp": 1, "gone": None}, fields=["person", "timestamp", "gone"]) == [
        "a set beacon needs at least one property, and none is left"
    ]


def test_every_broken_rule_is_reported_and_no_beacon_is_built() -> None:
    setting = [{"kind": "event"}, {"kind": "alias"}]
    reasons = reasons_for({"person": "p", "event": "a:b", "alias": "x" * 300, "v": "y" * 600}, setting)  # type: ignore[arg-type]
    assert len(reasons) == 4
    assert any("no timestamp" in reason for reason in reasons)


def test_stream_mapping_defaults() -> None:
    mapping = StreamMapping.from_setting({}, ["person", "event", "timestamp"])
    assert (mapping.kind, mapping.person, mapping.event, mapping.timestamp) == (
        "event",
        "person",
        "{event}",
        "timestamp",
    )
    assert StreamMapping.from_setting({}, ["person", "event"]).timestamp is None
