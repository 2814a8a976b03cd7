"""Validation and canonical encoding of an entry's details."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleveragents.domain.details import decode_details, encode_details
from tests.strategies import json_details, json_values
from tests.support import assert_same_json


class _Color(enum.Enum):
    RED = 1


def test_none_is_an_empty_object() -> None:
    """details=None is stored as {}."""
    assert encode_details(None) == "{}"
    assert decode_details(encode_details(None)) == {}


def test_encoding_is_compact_with_sorted_keys() -> None:
    """The stored text is canonical: sorted keys, no spaces, so equal payloads store equally."""
    assert encode_details({"b": 1, "a": [1, 2.5, None], "c": {"z": True, "y": "x"}}) == (
        '{"a":[1,2.5,null],"b":1,"c":{"y":"x","z":true}}'
    )
    assert encode_details({"b": 1, "a": 2}) == encode_details({"a": 2, "b": 1})


def test_any_mapping_is_accepted() -> None:
    """A read-only or ordered mapping works like a dict."""
    assert decode_details(encode_details(MappingProxyType({"a": 1}))) == {"a": 1}
    assert decode_details(encode_details(OrderedDict(b=2, a=1))) == {"a": 1, "b": 2}


def test_tuples_are_stored_as_lists() -> None:
    """A tuple is a JSON array."""
    assert decode_details(encode_details({"t": (1, "two", (3,))})) == {"t": [1, "two", [3]]}


def test_unicode_text_round_trips() -> None:
    """Non-ASCII text, control characters and quotes survive encoding."""
    payload = {"ключ": 'значение ✓ "quoted" \\ \x00\n\t', "emoji": "🦜"}
    assert decode_details(encode_details(payload)) == payload


def test_null_in_text_takes_the_checked_path_and_still_round_trips() -> None:
    """A string 'null' or a None value is not mistaken for a non-finite number."""
    payload = {"a": "null", "b": None, "c": [None, "nullable"]}
    assert decode_details(encode_details(payload)) == payload


@pytest.mark.parametrize(
    "value", [2**64, -(2**63) - 1, 2**64 - 1, -(2**63), 10**30, -(10**40), 2**200]
)
def test_big_integers_round_trip_exactly(value: int) -> None:
    """Integers beyond 64 bits are stored and read back exactly, as ints."""
    payload = {"n": value, "nested": [value, {"m": value}], "small": 1, "f": 0.5}
    text = encode_details(payload)
    assert json.loads(text) == payload
    assert_same_json(decode_details(text), payload)


@pytest.mark.parametrize(
    "details",
    [
        [("a", 1)],
        "a=1",
        42,
        {1, 2},
    ],
)
def test_details_that_are_not_a_mapping_raise_type_error(details: Any) -> None:
    """details must be a mapping."""
    with pytest.raises(TypeError, match="mapping"):
        encode_details(details)


@pytest.mark.parametrize(
    ("details", "path"),
    [
        ({1: "x"}, "details"),
        ({"a": {2: "x"}}, "details['a']"),
        ({"a": [{"ok": 1}, {None: 1}]}, "details['a'][1]"),
        ({"a": {"b": {(1, 2): "x"}}}, "details['a']['b']"),
        ({"a": {True: 1}}, "details['a']"),
    ],
)
def test_non_str_keys_at_any_depth_raise_type_error(details: Any, path: str) -> None:
    """A key that is not a str, however deep, raises TypeError naming where it is."""
    with pytest.raises(TypeError) as caught:
        encode_details(details)
    assert path in str(caught.value)
    assert "key" in str(caught.value)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    ("wrap", "path"),
    [
        (lambda x: {"x": x}, "details['x']"),
        (lambda x: {"a": [1, {"b": x}]}, "details['a'][1]['b']"),
        (lambda x: {"a": (x,)}, "details['a'][0]"),
    ],
)
def test_non_finite_numbers_raise_value_error(number: float, wrap: Any, path: str) -> None:
    """NaN and infinities, at any depth, raise ValueError naming where they are."""
    with pytest.raises(ValueError, match="finite") as caught:
        encode_details(wrap(number))
    assert path in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset({"a"}),
        b"bytes",
        bytearray(b"x"),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.date(2024, 1, 1),
        dt.time(12, 0),
        dt.timedelta(seconds=1),
        decimal.Decimal("1.5"),
        complex(1, 2),
        object(),
        ValueError("boom"),
        print,
        range(3),
    ],
    ids=lambda value: type(value).__name__,
)
@pytest.mark.parametrize("depth", ["top", "nested"])
def test_non_json_values_raise_type_error(value: Any, depth: str) -> None:
    """Sets, bytes, dates and times, decimals and other objects raise TypeError naming the path."""
    details = {"v": value} if depth == "top" else {"a": [0, {"v": value}]}
    with pytest.raises(TypeError) as caught:
        encode_details(details)
    assert ("details['v']" if depth == "top" else "details['a'][1]['v']") in str(caught.value)


@pytest.mark.parametrize("value", [uuid.uuid4(), _Color.RED], ids=["uuid", "enum"])
def test_objects_orjson_knows_are_still_rejected(value: Any) -> None:
    """A UUID or plain Enum member (which orjson could encode) is not a JSON value: TypeError."""
    with pytest.raises(TypeError):
        encode_details({"v": value})


def test_decode_rejects_text_that_is_not_an_object() -> None:
    """Stored details are always a JSON object; anything else is reported."""
    with pytest.raises(ValueError, match="not a JSON object"):
        decode_details("[1, 2]")


@given(payload=json_details)
def test_any_json_payload_round_trips_exactly(payload: dict[str, Any]) -> None:
    """encode then decode gives back the same values, of the same types."""
    text = encode_details(payload)
    assert_same_json(decode_details(text), payload)
    assert json.loads(text) == payload


@given(payload=json_details)
def test_encoding_is_canonical(payload: dict[str, Any]) -> None:
    """The same payload with its keys in reverse order encodes to the same text."""
    reversed_payload = dict(reversed(list(payload.items())))
    assert encode_details(reversed_payload) == encode_details(payload)


@given(
    good=json_details,
    bad=st.sampled_from([float("nan"), float("inf"), {1}, b"x", object(), dt.date(2020, 1, 1)]),
    where=json_values,
)
def test_one_bad_value_anywhere_rejects_the_payload(
    good: dict[str, Any], bad: Any, where: Any
) -> None:
    """Hiding one bad value inside an otherwise valid payload is still caught."""
    payload = dict(good)
    payload["bad"] = [where, {"deep": bad}]
    with pytest.raises((TypeError, ValueError)):
        encode_details(payload)


@given(good=json_details, key=st.one_of(st.integers(), st.none(), st.booleans(), st.floats()))
def test_one_bad_key_anywhere_rejects_the_payload(good: dict[str, Any], key: Any) -> None:
    """A non-str key nested inside an otherwise valid payload raises TypeError."""
    payload = dict(good)
    payload["nest"] = [{"inner": {key: 1}}]
    with pytest.raises(TypeError):
        encode_details(payload)
