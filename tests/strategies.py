"""Hypothesis strategies for JSON payloads."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Integers well beyond 64 bits, which the fast JSON encoder cannot handle.
BIG = 2**200

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-BIG, max_value=BIG),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(), children, max_size=5),
    ),
    max_leaves=25,
)

#: What ``details`` may be: a dict with str keys and JSON values.
json_details: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(), json_values, max_size=6
)
