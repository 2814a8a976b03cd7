"""The lines ``import`` reads: an entry to re-chain, or an entry of ``export --chain``.

:func:`parse_entry_line` reads a line of any JSON Lines export (``query --json``,
``export``) as an entry to append as a new link; :func:`parse_chain_line` a line of
``export --chain`` with its chain fields, to be stored as it is. Each raises
:class:`LineError` naming what is wrong with the line.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from cleveragents.domain.chain import canonical_header, entry_hash
from cleveragents.domain.details import decode_details, encode_details
from cleveragents.domain.event_types import coerce_stored_event_type
from cleveragents.domain.limits import check_text
from cleveragents.domain.rows import ChainedRow, EntryRow
from cleveragents.infrastructure.spool import NOT_REPLAYED

__all__ = ["LineError", "is_chain_line", "parse_chain_line", "parse_entry_line"]


class LineError(ValueError):
    """A line of an import file that is not an entry."""


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DETAILS_KEY = b',"details":'
#: The longest writer_id a column holds (a UUID).
_WRITER_ID_LENGTH = 36


def _text_field(entry: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = entry.get(name)
    if value is None:
        if required:
            raise LineError(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise LineError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _decode_line(line: bytes) -> dict[str, Any]:
    try:
        return decode_details(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise LineError("not UTF-8") from None
    except ValueError as exc:
        raise LineError(f"not a JSON object ({exc})") from None


def _entry_row(entry: dict[str, Any], *, declarations: bool) -> EntryRow:
    """The row an entry's fields describe, without a writer; ``declarations``: a
    ``retention.purged`` or ``spool.replayed`` entry is taken too (a kept chain)."""
    event_id = _text_field(entry, "event_id", required=True)
    assert event_id is not None
    try:
        if len(event_id) != 36:
            raise ValueError
        uuid.UUID(event_id)
    except ValueError:
        raise LineError(f"event_id {event_id!r} is not a UUID") from None
    event_type = _text_field(entry, "event_type", required=True)
    try:
        kind = coerce_stored_event_type(event_type)
    except ValueError:
        raise LineError(f"unknown event_type {event_type!r}") from None
    if kind.value in NOT_REPLAYED and not declarations:
        raise LineError(
            f"{kind.value} entries are not imported: they belong to their own trail"
            " (export --chain moves them with their chain)"
        )
    created_text = _text_field(entry, "created_at", required=True)
    assert created_text is not None
    try:
        created_at = datetime.fromisoformat(created_text)
    except ValueError:
        raise LineError(f"created_at {created_text!r} is not an ISO 8601 time") from None
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise LineError(f"created_at {created_text!r} has no time zone")
    if "details" not in entry:
        raise LineError("details is missing")
    try:
        details = encode_details(entry["details"])
    except (TypeError, ValueError) as exc:
        raise LineError(str(exc)) from None
    actor, resource, correlation_id = (
        _text_field(entry, name) for name in ("actor", "resource", "correlation_id")
    )
    try:  # the limits record() keeps, so both backends take the row
        check_text("actor", actor)
        check_text("resource", resource)
        check_text("correlation_id", correlation_id)
    except ValueError as exc:
        raise LineError(str(exc)) from None
    return EntryRow(
        event_id,
        kind.value,
        actor,
        resource,
        details,
        correlation_id,
        created_at,
        None,  # re-chained, an entry belongs to no writer of this database
        None,
    )


def parse_entry_line(line: bytes) -> EntryRow:
    """The row that one line of a JSON Lines export describes (to be re-chained).

    Raises:
        LineError: the line is not a JSON object, or a field is missing or wrong.
    """
    return _entry_row(_decode_line(line), declarations=False)


def _hash_field(entry: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise LineError(f"{name} {value!r} is not a SHA-256 hex digest")
    return value


def _count_field(entry: dict[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if type(value) is not int or value < 1:
        raise LineError(f"{name} {value!r} is not a positive integer")
    return value


def parse_chain_line(line: bytes) -> ChainedRow:
    """The row, chain fields included, that one line of ``export --chain`` describes.

    The details are the text the entry was hashed with: the canonical encoding, or
    else the text as it stands in the line (an entry stored before the canonical form).

    Raises:
        LineError: the line is not an entry, or a chain field is missing or wrong.
    """
    entry = _decode_line(line)
    if "seq" not in entry or "entry_hash" not in entry:
        raise LineError(
            "seq or entry_hash is missing: every line of a chain export (export --chain)"
            " carries the chain's fields"
        )
    row = _entry_row(entry, declarations=True)
    seq = _count_field(entry, "seq")
    prev_hash = _hash_field(entry, "prev_hash")
    hashed = _hash_field(entry, "entry_hash")
    mac = _hash_field(entry, "hmac", optional=True)
    writer_id = _text_field(entry, "writer_id")
    if writer_id is not None and len(writer_id) > _WRITER_ID_LENGTH:
        raise LineError(f"writer_id {writer_id[:40]!r}... is longer than a writer id")
    writer_seq = _count_field(entry, "writer_seq", optional=True)
    assert seq is not None
    assert prev_hash is not None
    assert hashed is not None
    details = row.details
    if _hash_of(row, details, seq, prev_hash, writer_id, writer_seq) != hashed:
        raw = _raw_details(line)
        if raw is not None and _hash_of(row, raw, seq, prev_hash, writer_id, writer_seq) == hashed:
            details = raw
    return ChainedRow(
        *row[:4],
        details,
        row.correlation_id,
        row.created_at,
        writer_id,
        writer_seq,
        seq,
        prev_hash,
        hashed,
        mac,
    )


def _hash_of(
    row: EntryRow,
    details: str,
    seq: int,
    prev_hash: str,
    writer_id: str | None,
    writer_seq: int | None,
) -> str:
    header = canonical_header(
        seq, row[0], row[1], row[2], row[3], details, row[5], row[6], writer_id, writer_seq
    )
    return entry_hash(prev_hash, header)


def _raw_details(line: bytes) -> str | None:
    """The details text as it stands in an exported line (spliced in last), or None."""
    start = line.find(_DETAILS_KEY)
    body = line[start + len(_DETAILS_KEY) :].rstrip()
    if start < 0 or not body.endswith(b"}"):
        return None
    try:
        return body[:-1].decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_chain_line(line: bytes) -> bool:
    """True for a line of a chain export (it has the chain's fields)."""
    try:
        entry = decode_details(line.decode("utf-8"))
    except ValueError:  # not an entry at all: the parser names the problem
        return False
    return "entry_hash" in entry and "seq" in entry
