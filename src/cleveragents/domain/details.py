"""Validation and canonical encoding of an entry's ``details``.

``details`` must be a mapping with ``str`` keys whose values are JSON values:
``None``, ``bool``, ``int``, finite ``float``, ``str``, lists (or tuples) and
mappings of those, at any depth. It is checked and encoded once, in the caller's
thread, as compact JSON with sorted keys; that text is what the writer stores.

The check has a fast path, :func:`_is_plain_json`, which accepts only the exact
built-in types and answers yes or no; anything else (a subclass such as a
``StrEnum`` member, a bad value) goes through :func:`_validate`, which either
raises an error naming the offending path or accepts the payload. Encoding is
orjson, or the standard library for integers beyond 64 bits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["decode_details", "encode_details", "jsonb_can_hold", "load_json_exact"]

_SCALARS = (str, int, bool, type(None))
_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def encode_details(details: Mapping[str, Any] | None) -> str:
    """Return ``details`` as canonical JSON text.

    Raises:
        TypeError: ``details`` is not a mapping, a key is not a ``str``, or a
            value is not a JSON value.
        ValueError: a number is NaN or infinite.
    """
    if details is None:
        return "{}"
    if type(details) is not dict:
        if not isinstance(details, Mapping):
            raise TypeError(
                f"details must be a mapping with str keys, not {type(details).__name__}"
            )
        details = dict(details)
    if not _is_plain_json(details):
        _validate(details, "details")
    try:
        return orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson cannot encode
        return json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )


def decode_details(text: str) -> dict[str, Any]:
    """Return the mapping that :func:`encode_details` encoded as ``text``."""
    value = load_json_exact(text)
    if not isinstance(value, dict):
        raise ValueError(f"stored details are not a JSON object: {text[:80]!r}")
    return value


def load_json_exact(text: str | bytes) -> Any:
    """Parse JSON ``text``, integers beyond 64 bits kept exact.

    orjson reads such integers as floats; text with a run of 19 or more digits may
    hold one, so it is read by the standard library, which keeps ints exact.
    """
    if isinstance(text, bytes):
        exact = _LONG_DIGITS_BYTES.search(text) is not None
    else:
        exact = _LONG_DIGITS.search(text) is not None
    return json.loads(text) if exact else orjson.loads(text)


def jsonb_can_hold(text: str) -> bool:
    """True unless the details ``text`` holds U+0000, which PostgreSQL's JSONB refuses.

    Such details are kept exactly in the text column; their JSONB copy stays NULL.
    """
    return "\\u0000" not in text


def _is_plain_json(value: object) -> bool:
    """True when ``value`` is made of exactly the built-in JSON types, numbers finite."""
    kind = type(value)
    if kind in _PLAIN_LEAVES:
        return True
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return False
            if type(item) not in _PLAIN_LEAVES and not _is_plain_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # type: ignore[attr-defined]
            if type(item) not in _PLAIN_LEAVES and not _is_plain_json(item):
                return False
        return True
    return False


def _validate(value: object, path: str) -> None:
    """Raise TypeError or ValueError naming ``path`` if ``value`` is not a JSON value."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value!r}; details allow finite numbers only")
    elif isinstance(value, _SCALARS):
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{path} has the key {key!r} of type {type(key).__name__}; keys must be str"
                )
            _validate(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _validate(item, f"{path}[{index}]")
    else:
        raise TypeError(f"{path} is a {type(value).__name__}, which is not a JSON value")
