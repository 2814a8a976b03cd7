"""The limits every entry keeps, the same on SQLite and PostgreSQL.

They are checked by ``record()`` in the caller's thread, so an entry either fits both
backends or is refused at the call with an error naming the field: nothing is
accepted that one backend would later refuse (PostgreSQL's index rows hold about
2,700 bytes, its text no U+0000, and neither backend stores a lone surrogate).
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_DETAILS_BYTES",
    "MAX_DETAILS_DEPTH",
    "MAX_TEXT_BYTES",
    "check_text",
    "lone_surrogate",
    "texts_fit",
]

#: ``actor``, ``resource`` and ``correlation_id``: at most this many bytes of UTF-8 (indexed).
MAX_TEXT_BYTES = 1024
#: ``details``: at most this many bytes of canonical JSON (UTF-8).
MAX_DETAILS_BYTES = 1024 * 1024
#: ``details``: at most this many levels of nested objects and arrays (the mapping itself is 1).
MAX_DETAILS_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


def texts_fit(
    actor: object, resource: object, correlation_id: object, _max: int = MAX_TEXT_BYTES
) -> bool:
    """True when the three are None or short ASCII ``str`` without NUL: the common case.

    Cheap (``str.isascii`` is a flag in CPython; written out, not looped, as it runs
    in every ``record()``); False says only "look closer" with :func:`check_text`,
    which raises for what is wrong or accepts the rest.
    """
    return (
        (
            actor is None
            or (
                type(actor) is str
                and actor.isascii()
                and len(actor) <= _max
                and "\x00" not in actor
            )
        )
        and (
            resource is None
            or (
                type(resource) is str
                and resource.isascii()
                and len(resource) <= _max
                and "\x00" not in resource
            )
        )
        and (
            correlation_id is None
            or (
                type(correlation_id) is str
                and correlation_id.isascii()
                and len(correlation_id) <= _max
                and "\x00" not in correlation_id
            )
        )
    )


def check_text(name: str, value: object) -> None:
    """Raise unless ``value`` is None or a ``str`` that both backends store as given.

    Raises:
        TypeError: ``value`` is not a ``str``.
        ValueError: it holds a lone surrogate or U+0000 (NUL), or is longer than
            :data:`MAX_TEXT_BYTES` bytes of UTF-8.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    surrogate = lone_surrogate(value)
    if surrogate is not None:
        raise ValueError(
            f"{name} holds the lone surrogate U+{ord(value[surrogate]):04X} at index"
            f" {surrogate}, which is not valid UTF-8 and cannot be stored"
        )
    if "\x00" in value:
        raise ValueError(
            f"{name} holds U+0000 (NUL) at index {value.index(chr(0))}, which PostgreSQL"
            " text cannot store"
        )
    size = len(value.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ValueError(
            f"{name} is {size} bytes of UTF-8; at most {MAX_TEXT_BYTES} are allowed"
            " (MAX_TEXT_BYTES)"
        )


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate (U+D800..U+DFFF) in ``text``, or None."""
    if text.isascii():
        return None
    match = _SURROGATE.search(text)
    return None if match is None else match.start()
