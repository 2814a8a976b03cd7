"""to_jsonable and clip_text: the fast paths for plain values give what the general path gives."""

from __future__ import annotations

from datetime import UTC, datetime

from cleveragents.domain.limits import MAX_TEXT_BYTES
from cleveragents.integrations._support import MAX_ITEMS, MAX_STRING_CHARS, clip_text, to_jsonable


def test_plain_json_comes_back_equal_and_unshared() -> None:
    """Plain dicts, lists and leaves are kept as they are, in new containers."""
    details = {"a": [1, True, None, "x", {"b": 2.5}], "c": {"d": []}}

    converted = to_jsonable(details)

    assert converted == details
    assert converted is not details
    assert converted["a"] is not details["a"]


def test_text_that_is_not_plain_ascii_is_still_cleaned_and_clipped() -> None:
    """Lone surrogates (in values and keys) become U+FFFD; long text is cut with a note."""
    long_text = "y" * (MAX_STRING_CHARS + 5)

    converted = to_jsonable({"bad\ud800key": ["caf\u00e9", "x\udfffy"], "long": long_text})

    assert converted == {
        "bad\ufffdkey": ["caf\u00e9", "x\ufffdy"],
        "long": f"{'y' * MAX_STRING_CHARS}... [5 more characters]",
    }


def test_big_and_deep_containers_take_the_general_path() -> None:
    """More than MAX_ITEMS items are cut with a count; non-JSON values inside are converted."""
    converted = to_jsonable(
        {"items": list(range(MAX_ITEMS + 2)), "at": [datetime(2026, 1, 2, tzinfo=UTC)]}
    )

    assert converted["items"][-1] == "... 2 more items"
    assert len(converted["items"]) == MAX_ITEMS + 1
    assert converted["at"] == ["2026-01-02T00:00:00+00:00"]


def test_clip_text_keeps_plain_ascii_and_drops_nul() -> None:
    """Short ASCII is kept (without NUL); long or non-str values take the general path."""
    assert clip_text("agent:a") == "agent:a"
    assert clip_text("a\x00b") == "ab"
    assert clip_text(42) == "42"
    assert clip_text("x" * (MAX_TEXT_BYTES + 1)) == "x" * (MAX_TEXT_BYTES - 3) + "..."
