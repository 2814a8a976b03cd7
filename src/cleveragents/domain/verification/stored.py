"""The stored rows the verifier reads, where a row is, and checks on their values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import orjson

__all__ = ["Place", "StoredRow", "is_hex64", "malformed", "same_json"]


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored row, as the verifier needs it."""

    id: int
    seq: int | None
    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: str
    correlation_id: str | None
    created_at: datetime
    writer_id: str | None
    writer_seq: int | None
    prev_hash: str | None
    entry_hash: str | None
    hmac: str | None
    details_json: str | None = None  # PostgreSQL's JSONB copy of details, as text


class Place(NamedTuple):
    """Where a row is, without its contents."""

    id: int
    seq: int | None
    event_id: str
    writer_id: str | None
    writer_seq: int | None

    @classmethod
    def of(cls, row: StoredRow) -> Place:
        """Where ``row`` is."""
        return cls(row.id, row.seq, row.event_id, row.writer_id, row.writer_seq)


_TEXT_FIELDS = ("event_id", "event_type", "details")
_OPTIONAL_TEXT_FIELDS = (
    "actor",
    "resource",
    "correlation_id",
    "writer_id",
    "prev_hash",
    "entry_hash",
    "hmac",
)


def malformed(row: StoredRow) -> str | None:
    """What in ``row`` is not of its column's type (a blob, a number, text that is no time)."""
    for name in _TEXT_FIELDS:
        if type(getattr(row, name)) is not str:
            return f"{name} is not text"
    for name in _OPTIONAL_TEXT_FIELDS:
        value = getattr(row, name)
        if value is not None and type(value) is not str:
            return f"{name} is not text"
    for name in ("seq", "writer_seq"):
        value = getattr(row, name)
        if value is not None and type(value) is not int:
            return f"{name} is not an integer"
    moment = row.created_at
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        return "created_at is not a time"
    return None


def same_json(text: str, copy: str) -> bool:
    """True when two JSON texts hold the same value (numbers compared exactly, as JSONB does).

    Fast path: the copy, re-encoded canonically, is the text itself. Else (JSONB writes
    1e16 as 10000000000000000, say) both are parsed with exact decimals and compared.
    """
    try:
        if orjson.dumps(orjson.loads(copy), option=orjson.OPT_SORT_KEYS) == text.encode():
            return True
    except (orjson.JSONDecodeError, TypeError):
        pass
    try:
        return bool(
            json.loads(text, parse_float=Decimal, parse_int=Decimal)
            == json.loads(copy, parse_float=Decimal, parse_int=Decimal)
        )
    except ValueError:
        return False


def is_hex64(text: str) -> bool:
    """True when ``text`` is 64 hex digits (a SHA-256 digest, or an HMAC of one)."""
    if len(text) != 64:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
