"""Redaction of secrets from an entry's ``details``, in the caller's thread, before encoding.

Two rules, both applied at any depth of the details:

* **Keys.** A key names a secret when, read as words (case changes, ``-``, ``_``,
  ``.`` and spaces separate them, so ``X-Api-Key`` is ``x api key`` and
  ``openaiApiKey`` is ``openai api key``), the words up to some word boundary end
  with one of the sensitive names, written without separators: ``X-Api-Key``,
  ``openai_api_key``, ``accessToken``, ``DB_PASSWORD`` and ``set-cookie`` all
  match, ``tokenizer``, ``author`` and ``secretary`` do not. The value under such
  a key is replaced by :data:`MASK`, whatever it is (a dict or list goes whole).
  A key that ends with a name in the plural (``tokens``, ``prompt_tokens``,
  ``credentials``, ``cookies``) holds several: every string under it, at any
  depth, is masked, while numbers, booleans and nulls are kept, so that counts
  such as ``"prompt_tokens": 812`` stay readable.
* **Values.** Every other string is searched for the value patterns (bearer
  tokens, JWTs, well-known API key formats, private keys, passwords in URLs); each
  match is replaced by :data:`MASK`, the rest of the string is kept.

The caller's object is never changed: when something must be masked, a copy is
made. When nothing needs masking, which is the common case, :meth:`Redactor.redact`
returns the very object it was given, having only walked it once: key verdicts
are cached, and the built-in value patterns are searched for only when one of
their literal markers (``eyJ``, ``sk-``, ``AKIA``, ``://``, ...) occurs in the
payload's strings. Patterns from the settings that are not built in have no such
marker and are searched in every string. The same walk tells whether the details
are plain JSON (:meth:`Redactor.redact_plain`), so that their encoding need not walk
them again. The default rules are in :mod:`cleveragents.domain.redaction_rules`.

Input that is not valid details (not a mapping, a key that is not a ``str``, a
value that is not JSON) is left as it is, for the validation that follows to
reject with its usual error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from cleveragents.domain.limits import MAX_DETAILS_DEPTH
from cleveragents.domain.redaction_rules import (
    BUILTIN_PATTERNS,
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
)

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "DEFAULT_REDACT_PATTERNS",
    "MASK",
    "Redactor",
    "compile_pattern",
    "normalise_key_name",
]

#: What replaces a redacted value, or the part of a string that matched a pattern.
MASK: Final = "[REDACTED]"

_MARKERS: Final = dict(BUILTIN_PATTERNS)

# Words of a key: runs of capitals before a capitalised word (the "API" of "APIKey"),
# capitalised or lower-case words, runs of capitals, runs of digits.
_WORDS: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")

# Verdicts on keys: not sensitive, names one secret, names several (plural).
_PLAIN: Final = 0
_SINGULAR: Final = 1
_PLURAL: Final = 2
#: Values the walk need not look into.
_LEAVES: Final = frozenset({int, float, bool, type(None)})
#: Values the walk need not look into that are plain JSON as they are (floats: if finite).
_SCALARS: Final[frozenset[type]] = frozenset({int, bool, type(None)})
# What a walk found: plain JSON and nothing to mask; not plain JSON; a key naming a secret.
_CLEAN: Final = 0
_ODD: Final = 1
_MASK: Final = 2
#: Most key verdicts kept; the cache starts over when it is full.
_CACHE_SIZE: Final = 4096


def normalise_key_name(name: str) -> str:
    """A sensitive key name as it is matched: lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", name.lower())


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a value pattern; ValueError naming it when it is not a valid regular expression."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"the redaction pattern {pattern!r} is not a valid regex: {exc}") from None


class Redactor:
    """Masks the secrets in details; see the module docstring for the rules.

    Thread-safe: its only state after construction is a cache of key verdicts,
    which concurrent callers may fill (and reset) without harm.
    """

    def __init__(self, keys: Iterable[str], patterns: Iterable[str]) -> None:
        names = {normalise_key_name(key) for key in keys}
        names.discard("")
        self._names = tuple(sorted(names))
        self._cache: dict[object, int] = {}
        gated: list[tuple[tuple[str, ...], re.Pattern[str]]] = []
        ungated: list[str] = []
        for pattern in dict.fromkeys(patterns):  # unique, in order
            compiled = compile_pattern(pattern)
            markers = _MARKERS.get(pattern)
            if markers is None:
                ungated.append(pattern)
            else:
                gated.append((markers, compiled))
        self._gated = tuple(gated)
        self._markers = tuple(dict.fromkeys(m for markers, _ in gated for m in markers))
        # Patterns from the settings that are not built in: searched one by one (joined
        # into one alternation, their group numbers and back-references would shift).
        self._ungated = tuple(compile_pattern(p) for p in ungated)
        self._all = (*(compiled for _, compiled in gated), *self._ungated)

    @property
    def key_names(self) -> tuple[str, ...]:
        """The sensitive names, normalised (see :func:`normalise_key_name`)."""
        return self._names

    # -- the hot path --------------------------------------------------------------------

    def redact(self, details: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``details`` with every secret masked: the same object when there is nothing to mask.

        Never changes ``details`` or anything in it.
        """
        masked: Mapping[str, Any] | None = self.redact_plain(details)[0]
        return masked

    def redact_plain(self, details: Mapping[str, Any] | None) -> tuple[Any, bool]:
        """:meth:`redact`'s result, and whether it is plain JSON, known from the same walk.

        Plain JSON is a ``dict`` of exactly the built-in JSON types, numbers finite,
        nested at most :data:`MAX_DETAILS_DEPTH` levels (keys are not checked: the
        encoder refuses what is not a ``str``). ``encode_plain_details`` need not walk
        plain details again; anything else gets :func:`encode_details`'s full check.
        """
        if details is None or not isinstance(details, Mapping):
            return details, False
        strings: list[str] = []
        found = self._walk(details, strings, 1)
        if found == _MASK:
            return self._copy_mapping(details), False  # not walked to its end
        plain = found == _CLEAN and type(details) is dict
        if strings and self._any_string_matches(strings):
            return self._copy_mapping(details), plain  # a copy of plain JSON is plain
        return details, plain

    def _any_string_matches(self, strings: list[str]) -> bool:
        """True when a value pattern matches one of ``strings``."""
        if self._markers:
            text = "\n".join(strings)  # a marker is in the text iff it is in one of the strings
            for marker in self._markers:
                if marker in text:
                    for markers, compiled in self._gated:
                        for m in markers:
                            if m in text:
                                for string in strings:
                                    if compiled.search(string):
                                        return True
                                break
                    break
        for compiled in self._ungated:
            for string in strings:
                if compiled.search(string):
                    return True
        return False

    def _walk(
        self,
        mapping: Mapping[Any, Any],
        strings: list[str],
        depth: int,
        _isfinite: Callable[[float], bool] = math.isfinite,
        _scalars: frozenset[type] = _SCALARS,
    ) -> int:
        """Walk ``mapping`` (at ``depth``): its key verdicts, its values; collect the strings.

        :data:`_MASK` at the first key that names a secret (the walk stops there),
        else :data:`_CLEAN` when what was walked is plain JSON, :data:`_ODD` when not.
        (The defaults bind globals as locals: this is the hot path of every ``record()``.)
        """
        cache = self._cache
        state = _CLEAN if depth <= MAX_DETAILS_DEPTH else _ODD
        for key, value in mapping.items():
            verdict = cache.get(key)
            if verdict is None:
                verdict = self._classify(key)
            kind = type(value)
            if verdict:
                if verdict == _SINGULAR:
                    return _MASK
                if kind in _scalars or (kind is float and _isfinite(value)):
                    continue  # a count under a plural name ("prompt_tokens": 812) is kept
                if _holds_string(value):
                    return _MASK
                state = _ODD  # kept unwalked: encode_details checks it
            elif kind is str:
                strings.append(value)
            elif kind is float:
                if not _isfinite(value):
                    state = _ODD
            elif kind not in _scalars:
                found = self._walk_inside(value, kind, strings, depth + 1)
                if found == _MASK:
                    return _MASK
                state |= found
        return state

    def _walk_items(
        self,
        items: Iterable[Any],
        strings: list[str],
        depth: int,
        _isfinite: Callable[[float], bool] = math.isfinite,
        _scalars: frozenset[type] = _SCALARS,
    ) -> int:
        """:meth:`_walk` for the items of a list or tuple (they have no keys)."""
        state = _CLEAN if depth <= MAX_DETAILS_DEPTH else _ODD
        for item in items:
            kind = type(item)
            if kind is str:
                strings.append(item)
                continue
            if kind in _scalars or (kind is float and _isfinite(item)):
                continue
            found = self._walk_inside(item, kind, strings, depth + 1)  # NaN, inf: _ODD
            if found == _MASK:
                return _MASK
            state |= found
        return state

    def _walk_inside(self, value: Any, kind: type, strings: list[str], depth: int) -> int:
        """Walk a value that is not a string or a number (at ``depth``): see :meth:`_walk`."""
        if kind is dict:
            return self._walk(value, strings, depth)
        if kind is list or kind is tuple:
            return self._walk_items(value, strings, depth)
        if isinstance(value, Mapping):  # walked for secrets; not plain JSON
            return self._walk(value, strings, depth) or _ODD
        return _ODD  # not looked into (a str or list subclass, a non-JSON value)

    # -- key verdicts --------------------------------------------------------------------

    def _classify(self, key: object) -> int:
        verdict = self.key_verdict(key) if isinstance(key, str) else _PLAIN
        cache = self._cache
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = verdict
        return verdict

    def key_verdict(self, key: str) -> int:
        """0: not sensitive; 1: names a secret (mask the value); 2: names several (plural)."""
        words = [word.lower() for word in _WORDS.findall(key)]
        verdict = _PLAIN
        prefix = ""
        for word in words:
            prefix += word
            for name in self._names:
                if prefix.endswith(name):
                    return _SINGULAR
                if verdict == _PLAIN and prefix.endswith(name + "s"):
                    verdict = _PLURAL
        return verdict

    def is_sensitive_key(self, key: str) -> bool:
        """True when the value under ``key`` is (at least partly) masked."""
        return self.key_verdict(key) != _PLAIN

    # -- the copy ------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every match of every value pattern replaced by :data:`MASK`."""
        for markers, compiled in self._gated:
            for marker in markers:
                if marker in text:
                    text = compiled.sub(MASK, text)
                    break
        for compiled in self._ungated:
            text = compiled.sub(MASK, text)
        return text

    def _copy_mapping(self, mapping: Mapping[Any, Any]) -> dict[Any, Any]:
        copy: dict[Any, Any] = {}
        cache = self._cache
        for key, value in mapping.items():
            verdict = cache.get(key)
            if verdict is None:
                verdict = self._classify(key)
            if verdict == _SINGULAR:
                copy[key] = MASK
            elif verdict == _PLURAL:
                copy[key] = _mask_strings(value)
            else:
                copy[key] = self._copy_value(value)
        return copy

    def _copy_value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.redact_text(value)
        if kind in _LEAVES:
            return value
        if kind is dict:
            return self._copy_mapping(value)
        if kind is list or kind is tuple:
            return kind(self._copy_value(item) for item in value)
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return self._copy_mapping(value)
        if isinstance(value, list | tuple):
            return type(value)(self._copy_value(item) for item in value)
        return value


def _holds_string(value: object) -> bool:
    """True when ``value`` is a string or holds one at any depth."""
    kind = type(value)
    if kind is str:
        return True
    if kind in _LEAVES:
        return False
    items: Iterable[Any]
    if kind is dict or isinstance(value, Mapping):
        items = value.values()  # type: ignore[attr-defined]
    elif isinstance(value, list | tuple):
        items = value
    else:
        return isinstance(value, str)
    for item in items:  # noqa: SIM110 - a loop: any() over a generator is slower here
        if _holds_string(item):
            return True
    return False


def _mask_strings(value: Any) -> Any:
    """``value`` with every string in it, at any depth, replaced by :data:`MASK`."""
    if isinstance(value, str):
        return MASK
    if isinstance(value, Mapping):
        return {key: _mask_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_strings(item) for item in value)
    return value
