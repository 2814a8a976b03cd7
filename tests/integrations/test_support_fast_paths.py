"""to_jsonable and clip_text: the fast paths for plain values give what the general path gives."""

from __future__ import annotations

from cleveragents.domain.limits import MAX_TEXT_BYTES
from cleveragents.integrations._support import (
    MAX_ITEMS,
    MAX_STRING_CHARS,
    clip_text,
    to_jsonable,
)


def test_plain_values_come_back_equal() -> None:
    """Plain JSON comes back as it is; with non-ASCII text, as an equal copy."""
    plain = {"a": [1, 2.5, None, True, "x"], "n": {"m": [], "k": {"j": "i"}}}
    assert to_jsonable(plain) is plain
    value = {"a": [1, 2.5, None, True, "x"], "é": {"ü": "naïve"}, "n": {"m": []}}
    converted = to_jsonable(value)
    assert converted == value
    assert converted is not value


def test_what_is_not_plain_is_converted_at_any_depth() -> None:
    """A non-finite float, a tuple or bytes deep inside plain JSON is still converted."""
    assert to_jsonable({"a": [{"b": float("nan")}]}) == {"a": [{"b": "nan"}]}
    assert to_jsonable({"a": [{"b": (1, 2)}]}) == {"a": [{"b": [1, 2]}]}
    assert to_jsonable([{"b": b"\x01"}]) == [{"b": "AQ=="}]
    assert to_jsonable({"a": {1: "x"}}) == {"a": {"1": "x"}}


def test_strings_are_cleaned_and_clipped() -> None:
    """Lone surrogates become U+FFFD (values and keys); long strings are clipped, with a note."""
    assert to_jsonable({"k\ud800": "a\udfffb"}) == {"k\ufffd": "a\ufffdb"}
    long = "x" * (MAX_STRING_CHARS + 5)
    assert to_jsonable([long]) == [f"{'x' * MAX_STRING_CHARS}... [5 more characters]"]
    assert to_jsonable({long: 1}) == {f"{'x' * MAX_STRING_CHARS}... [5 more characters]": 1}


def test_keys_that_are_not_text_become_text() -> None:
    """Keys that are not str become their str."""
    assert to_jsonable({1: "a", None: "b"}) == {"1": "a", "None": "b"}


def test_big_and_deep_containers_are_bounded() -> None:
    """More than MAX_ITEMS items are cut with a note; deep nesting ends in a note."""
    many = {str(i): i for i in range(MAX_ITEMS + 2)}
    converted = to_jsonable(many)
    assert len(converted) == MAX_ITEMS + 1
    assert converted["..."] == "2 more items"
    assert len(to_jsonable(list(range(MAX_ITEMS + 2)))) == MAX_ITEMS + 1
    deep: list[object] = []
    node = deep
    for _ in range(100):
        child: list[object] = []
        node.append(child)
        node = child
    text = str(to_jsonable(deep))
    assert "nested deeper than" in text


def test_clip_text() -> None:
    """Short ASCII text comes back as it is; NUL is removed; long text is cut to the limit."""
    assert clip_text("tool:get_weather") == "tool:get_weather"
    assert clip_text("a\x00b") == "ab"
    assert clip_text(None) is None
    assert clip_text(42) == "42"
    clipped = clip_text("é" * MAX_TEXT_BYTES)
    assert clipped is not None
    assert clipped.endswith("...")
    assert len(clipped.encode("utf-8")) <= MAX_TEXT_BYTES
