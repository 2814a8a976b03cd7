"""Hypothesis strategies and helpers for the redaction tests."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from cleveragents.domain.redaction import DEFAULT_REDACT_KEYS, normalise_key_name

NAMES = [normalise_key_name(key) for key in DEFAULT_REDACT_KEYS]

_separators = st.sampled_from(["_", "-", ".", " ", ""])


@st.composite
def sensitive_keys(draw: st.DrawFn) -> str:
    """A key naming a secret: a default name, maybe after other words, in any case style."""
    name = draw(st.sampled_from(DEFAULT_REDACT_KEYS))
    words = name.split("_")
    style = draw(st.sampled_from(["lower", "upper", "title", "camel"]))
    separator = draw(_separators)
    if style == "lower":
        core = separator.join(words)
    elif style == "upper":
        core = separator.join(w.upper() for w in words)
    elif style == "title":
        core = separator.join(w.title() for w in words)
    else:
        core = words[0] + "".join(w.title() for w in words[1:])
    prefix = draw(st.sampled_from(["", "x", "openai", "db", "my", "aws"]))
    if prefix:
        joiner = draw(st.sampled_from(["_", "-", ".", " "]))
        core = prefix + core[0].upper() + core[1:] if style == "camel" else prefix + joiner + core
    suffix = draw(st.sampled_from(["", "_value", "-id", "2"]))
    return core + suffix


#: Lower-case keys that end with no name and no plural: not sensitive by the rules.
plain_keys = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10).filter(
    lambda key: not any(key.endswith((n, n + "s")) for n in NAMES)
)
#: Strings with none of the patterns' markers, so no pattern can match them.
plain_strings = st.text(alphabet=string.ascii_lowercase + " ,.!?0123456789", max_size=40).filter(
    lambda text: "basic" not in text and "earer" not in text
)
plain_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    plain_strings,
)
plain_values = st.recursive(
    plain_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(plain_keys, children, max_size=4)
    ),
    max_leaves=15,
)

SECRET = "hunter2-0f7c"


def contains_secret(value: object) -> bool:
    """True when the marker secret survives anywhere in ``value``."""
    if isinstance(value, str):
        return SECRET in value
    if isinstance(value, Mapping):
        return any(contains_secret(k) or contains_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_secret(item) for item in value)
    return False


def plant(tree: Any, key: str, secret: Any, path: list[int]) -> dict[str, Any]:
    """Put ``{key: secret}`` inside lists and dicts next to ``tree``, as ``path`` says."""
    holder: Any = {key: secret}
    for step in path:
        holder = [tree, holder] if step % 2 else {"level": holder, "sibling": tree}
    return {"tree": tree, "planted": holder}


secret_values = st.one_of(
    st.just(SECRET),
    st.lists(st.just(SECRET), min_size=1, max_size=3),
    st.dictionaries(plain_keys, st.just(SECRET), min_size=1, max_size=3),
    st.builds(lambda n: {"deep": [{"deeper": SECRET, "n": n}]}, st.integers()),
)
