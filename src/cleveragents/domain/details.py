"""Validation and canonical encoding of an entry's ``details``.

``details`` must be a mapping with ``str`` keys whose values are JSON values:
``None``, ``bool``, ``int``, finite ``float``, ``str``, lists (or tuples) and
mappings of those, at any depth. It is encoded once, in the caller's thread, as
compact JSON with sorted keys; that text is what the writer stores.

The fast path is orjson, which rejects non-``str`` keys and unknown types but
writes NaN and infinities as ``null``. Output containing ``null`` or any orjson
error therefore goes through :func:`_validate`, a plain walk that either raises
an error naming the offending path or confirms the payload (large integers, for
instance, which orjson cannot encode, are encoded by the standard library).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["decode_details", "encode_details"]

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_SCALARS = (str, int, bool, type(None))


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
    try:
        encoded = orjson.dumps(details, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        _validate(details, "details")
        return json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    if b"null" in encoded:
        _validate(details, "details")
    return encoded.decode()


def decode_details(text: str) -> dict[str, Any]:
    """Return the mapping that :func:`encode_details` encoded as ``text``."""
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"stored details are not a JSON object: {text[:80]!r}")
    return value


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
