"""Validation and canonical encoding of an entry's ``details``.

``details`` must be a mapping with ``str`` keys whose values are JSON values:
``None``, ``bool``, ``int``, finite ``float``, ``str``, lists (or tuples) and
mappings of those, at any depth. It is checked and encoded once, in the caller's
thread, as compact JSON with sorted keys; that text is what the writer stores.

The check has a fast path, :func:`_is_plain_json`, which accepts only the exact
built-in types nested at most :data:`MAX_DETAILS_DEPTH` levels and answers yes or
no; anything else (a subclass such as a ``StrEnum`` member, a bad value, deeper
nesting) goes through :func:`_validate`, which either raises an error naming the
offending path or accepts the payload. Encoding is orjson, which also refuses a
string with a lone surrogate (U+D800..U+DFFF, not valid UTF-8): then, and for
integers beyond 64 bits, :func:`_validate` names the bad string or the standard
library encodes the big integers. The canonical JSON may be at most
:data:`MAX_DETAILS_BYTES` long.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from cleveragents.domain.limits import MAX_DETAILS_BYTES, MAX_DETAILS_DEPTH, lone_surrogate

__all__ = [
    "decode_details",
    "encode_details",
    "encode_plain_details",
    "jsonb_can_hold",
    "load_json_exact",
]

_SCALARS = (str, int, bool, type(None))
_PLAIN_LEAVES: frozenset[type] = frozenset({str, int, bool, type(None)})
_CONTAINERS: frozenset[type] = frozenset({dict, list, tuple})
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def encode_details(details: Mapping[str, Any] | None) -> str:
    """Return ``details`` as canonical JSON text.

    Raises:
        TypeError: ``details`` is not a mapping, a key is not a ``str``, or a
            value is not a JSON value.
        ValueError: a number is NaN or infinite, a string holds a lone surrogate,
            the nesting is deeper than :data:`MAX_DETAILS_DEPTH` or the JSON longer
            than :data:`MAX_DETAILS_BYTES`.
    """
    if details is None:
        return "{}"
    if type(details) is not dict:
        if not isinstance(details, Mapping):
            raise TypeError(
                f"details must be a mapping with str keys, not {type(details).__name__}"
            )
        details = dict(details)
    if not _is_plain_json(details, 1):
        _validate(details, "details", 1)
    return encode_plain_details(details)


def encode_plain_details(details: dict[str, Any]) -> str:
    """:func:`encode_details` for details known to be plain JSON, not walked again.

    Plain JSON: a ``dict`` of exactly the built-in JSON types, numbers finite, nested
    at most :data:`MAX_DETAILS_DEPTH` levels (what ``Redactor.redact_plain`` tells).
    A key that is not a ``str``, a lone surrogate, the size: checked as there.
    """
    try:
        data = orjson.dumps(details, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a lone surrogate, an integer beyond 64 bits, a key not a str
        _validate(details, "details", 1)  # names what is wrong; big integers pass
        text = json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        _check_size(len(text.encode("utf-8")))
        return text
    if len(data) > MAX_DETAILS_BYTES:
        _check_size(len(data))
    return data.decode()


def _check_size(size: int) -> None:
    if size > MAX_DETAILS_BYTES:
        raise ValueError(
            f"details are {size} bytes of canonical JSON; at most {MAX_DETAILS_BYTES}"
            " are allowed (MAX_DETAILS_BYTES)"
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

    Raises:
        ValueError: ``text`` is not JSON, or is nested too deeply to read.
    """
    if isinstance(text, bytes):
        exact = _LONG_DIGITS_BYTES.search(text) is not None
    else:
        exact = _LONG_DIGITS.search(text) is not None
    if not exact:
        return orjson.loads(text)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply to read") from None


def jsonb_can_hold(text: str) -> bool:
    """True unless the details ``text`` holds U+0000, which PostgreSQL's JSONB refuses.

    Such details are kept exactly in the text column; their JSONB copy stays NULL.
    """
    return "\\u0000" not in text


def _is_plain_json(
    container: dict[Any, Any] | list[Any] | tuple[Any, ...],
    depth: int,
    _leaves: frozenset[type] = _PLAIN_LEAVES,
    _containers: frozenset[type] = _CONTAINERS,
    _isfinite: Callable[[float], bool] = math.isfinite,
    _max_depth: int = MAX_DETAILS_DEPTH,
) -> bool:
    """True when ``container`` (a dict, list or tuple at ``depth``) is made of exactly the
    built-in JSON types, numbers finite, nested at most :data:`MAX_DETAILS_DEPTH` levels.

    Strings are not looked into: orjson refuses lone surrogates when it encodes. (The
    defaults bind globals as locals: this is the hot path of every ``record()``.)
    """
    if depth > _max_depth:
        return False
    if type(container) is dict:
        for key, item in container.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if kind in _leaves:
                continue
            if kind is float:
                if _isfinite(item):
                    continue
                return False
            if kind not in _containers or not _is_plain_json(item, depth + 1):
                return False
        return True
    for item in container:
        kind = type(item)
        if kind in _leaves:
            continue
        if kind is float:
            if _isfinite(item):
                continue
            return False
        if kind not in _containers or not _is_plain_json(item, depth + 1):
            return False
    return True


def _validate(value: object, path: str, depth: int) -> None:
    """Raise TypeError or ValueError naming ``path`` if ``value`` is not a JSON value."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{_short(path)} is {value!r}; details allow finite numbers only")
    elif isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, _SCALARS):
        return
    elif isinstance(value, Mapping | list | tuple) and depth > MAX_DETAILS_DEPTH:
        raise ValueError(
            f"{_short(path)} is nested {depth} levels deep; details allow at most"
            f" {MAX_DETAILS_DEPTH} levels (MAX_DETAILS_DEPTH)"
        )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{_short(path)} has the key {key!r} of type {type(key).__name__};"
                    " keys must be str"
                )
            _check_string(key, f"the key {key!r} of {path}")
            _validate(item, f"{path}[{key!r}]", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _validate(item, f"{path}[{index}]", depth + 1)
    else:
        raise TypeError(f"{_short(path)} is a {type(value).__name__}, which is not a JSON value")


def _check_string(text: str, path: str) -> None:
    surrogate = lone_surrogate(text)
    if surrogate is not None:
        raise ValueError(
            f"{_short(path)} holds the lone surrogate U+{ord(text[surrogate]):04X} at index"
            f" {surrogate}, which is not valid UTF-8 and cannot be stored"
        )


def _short(path: str) -> str:
    """``path``, its middle elided when it is long (deep nesting, long keys)."""
    return path if len(path) <= 240 else f"{path[:120]}...{path[-100:]}"
