"""One codec for an entry as a JSON line: the spool's, the export's and the import's.

Writing: :func:`json_line` writes a stored row (``query --json``, ``export``),
:func:`chain_line` a stored row with its chain fields (``export --chain``) and
:func:`spool_line` an :class:`~cleveragents.domain.rows.EntryRow` with the error that
kept it out of the database (the dead-letter spool). ``details`` is always written
as the text it is, so that a reader finds the text an entry was hashed with.

Reading: :func:`decode_entry` reads a line as an :class:`EntryRow`, with one set of
rules (the limits of ``record()``, :mod:`cleveragents.domain.limits` and
:mod:`cleveragents.domain.details`); its :class:`LineRules` say what a reader takes
beyond the entry's own fields (:data:`SPOOL_RULES`, :data:`REIMPORT_RULES`).
:func:`decode_chained` reads a line of ``export --chain`` as a
:class:`~cleveragents.domain.rows.ChainedRow`. Both raise :class:`RowError` naming
what is wrong with the line.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from cleveragents.domain.chain import entry_hash, header_of
from cleveragents.domain.details import decode_details, encode_details, load_json_exact
from cleveragents.domain.event_types import SystemEventType, coerce_stored_event_type
from cleveragents.domain.limits import check_text
from cleveragents.domain.rows import ChainedRow, EntryRow
from cleveragents.infrastructure.persistence.browse import BrowsedChainRow, BrowsedRow

__all__ = [
    "NOT_REPLAYED",
    "REIMPORT_RULES",
    "SPOOL_RULES",
    "STORED_FIELDS",
    "LineRules",
    "RowError",
    "chain_line",
    "decode_chained",
    "decode_entry",
    "is_chain_line",
    "iso_time",
    "json_line",
    "spool_line",
]


class RowError(ValueError):
    """A JSON line that is not an entry: the message names what is wrong."""


#: The fields of a :class:`BrowsedRow`, in its order (the columns of a CSV export).
STORED_FIELDS: tuple[str, ...] = BrowsedRow._fields
#: The chain fields a chain line carries, in its order.
_CHAIN_LINE_FIELDS = BrowsedChainRow._fields[len(STORED_FIELDS) :]

#: System entries a spool or an import never brings in: a purge's, a replay's or an
#: import's own declaration is made where it happens, and one from elsewhere could hide
#: a deletion (or excuse a checkpoint that does not match).
NOT_REPLAYED = frozenset(
    {
        SystemEventType.RETENTION_PURGED.value,
        SystemEventType.SPOOL_REPLAYED.value,
        SystemEventType.TRAIL_IMPORTED.value,
    }
)

_T = TypeVar("_T")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DETAILS_KEY = b',"details":'
#: The longest writer_id a column holds (a UUID).
_WRITER_ID_LENGTH = 36
_TEXT_FIELDS = ("actor", "resource", "correlation_id")


# -- writing -------------------------------------------------------------------------------


def iso_time(moment: datetime) -> str:
    """ISO 8601 with microseconds and the UTC offset: what JSON and CSV carry."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def json_line(row: Sequence[Any], extra: Mapping[str, Any] | None = None) -> bytes:
    """One JSON Lines record of a :class:`BrowsedRow` (or a row of its columns), newline
    included; ``details`` is spliced in last, as stored.

    ``extra``: more fields, written after the entry's own and before ``details``.
    """
    # Unpacked into names: as fast as indexing, twice as fast as a SQLAlchemy Row's attributes.
    entry_id, event_id, event_type, actor, resource, correlation_id, created_at, details = row
    fields = {
        "id": entry_id,
        "event_id": event_id,
        "event_type": event_type,
        "actor": actor,
        "resource": resource,
        "correlation_id": correlation_id,
        "created_at": iso_time(created_at),
    }
    if extra:
        fields.update(extra)
    text: str = details
    return orjson.dumps(fields)[:-1] + b',"details":' + text.encode() + b"}\n"


def chain_line(row: BrowsedChainRow) -> bytes:
    """One line of a chain export: a :func:`json_line` with the chain's fields too."""
    stored = [getattr(row, name) for name in STORED_FIELDS]
    return json_line(stored, {name: getattr(row, name) for name in _CHAIN_LINE_FIELDS})


def spool_line(row: EntryRow, error: str, spooled_at: str) -> bytes:
    """One line of the spool: ``row`` with the ``error`` that kept it out, newline included."""
    details = row.details
    line = {
        "event_id": row.event_id,
        "event_type": row.event_type,
        "actor": row.actor,
        "resource": row.resource,
        "details": orjson.Fragment(details),
        "correlation_id": row.correlation_id,
        "created_at": row.created_at.isoformat(),
        "writer_id": row.writer_id,
        "writer_seq": row.writer_seq,
        "error": error,
        "spooled_at": spooled_at,
    }
    try:
        return orjson.dumps(line) + b"\n"
    except TypeError:
        # Text that is not valid UTF-8 (a lone surrogate, which record() refuses): kept
        # as an ASCII escape, so that the entry is not lost; a replay reports the line.
        line["details"] = json.loads(details)
        return json.dumps(line, ensure_ascii=True).encode("ascii") + b"\n"


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineRules:
    """What a reader of entry lines takes beyond an entry's own fields."""

    #: Keep writer_id and writer_seq (the spool), or drop them (an entry re-chained here
    #: belongs to no writer of this database).
    keep_writer: bool
    #: Why a declaration (:data:`NOT_REPLAYED`) is refused, ``{}`` for its type; None:
    #: declarations are taken (a chain keeps them).
    refuse_declarations: str | None
    #: Refuse a line without ``details`` (the spool takes one as ``{}``, as it always has).
    details_required: bool = True
    #: The event_id must parse as a UUID; else any 36 characters (what the spool took).
    strict_event_id: bool = True


#: The spool's lines: the writer's fields kept, declarations refused; as lenient as the
#: spool has always been on details and event_id, so that no spooled entry is lost.
SPOOL_RULES = LineRules(
    True,
    "{} is written by the command itself, never replayed",
    details_required=False,
    strict_event_id=False,
)
#: The lines of an export, re-chained by ``import``.
REIMPORT_RULES = LineRules(
    False,
    "{} entries are not imported: they belong to their own trail"
    " (export --chain moves them with their chain)",
)
_CHAIN_RULES = LineRules(True, None)


def _read_object(line: bytes) -> dict[str, Any]:
    try:
        value = load_json_exact(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise RowError("not UTF-8") from None
    except ValueError as exc:
        raise RowError(f"not a JSON object ({exc})") from None
    if not isinstance(value, dict):
        raise RowError(f"not a JSON object (the line is {line[:80].decode(errors='replace')!r})")
    return value


def _text_field(entry: dict[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise RowError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _required_text(entry: dict[str, Any], name: str) -> str:
    value = _text_field(entry, name)
    if value is None:
        raise RowError(f"{name} is missing")
    return value


def _hash_field(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise RowError(f"{name} {value!r} is not a SHA-256 hex digest")
    return value


def _count_field(entry: dict[str, Any], name: str) -> int:
    value = entry.get(name)
    if type(value) is not int or value < 1:
        raise RowError(f"{name} {value!r} is not a positive integer")
    return value


def _unless_null(
    entry: dict[str, Any], name: str, read: Callable[[dict[str, Any], str], _T]
) -> _T | None:
    return None if entry.get(name) is None else read(entry, name)


def _event_id(entry: dict[str, Any], rules: LineRules) -> str:
    event_id = _required_text(entry, "event_id")
    try:
        if len(event_id) != 36:
            raise ValueError
        if rules.strict_event_id:
            uuid.UUID(event_id)
    except ValueError:
        raise RowError(f"event_id {event_id!r} is not a UUID") from None
    return event_id


def _event_type(entry: dict[str, Any], rules: LineRules) -> str:
    event_type = _required_text(entry, "event_type")
    try:
        kind = coerce_stored_event_type(event_type).value
    except ValueError:
        raise RowError(f"unknown event_type {event_type!r}") from None
    if kind in NOT_REPLAYED and rules.refuse_declarations is not None:
        raise RowError(rules.refuse_declarations.format(kind))
    return kind


def _created_at(entry: dict[str, Any]) -> datetime:
    created_text = _required_text(entry, "created_at")
    try:
        created_at = datetime.fromisoformat(created_text)
    except ValueError:
        raise RowError(f"created_at {created_text!r} is not an ISO 8601 time") from None
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise RowError(f"created_at {created_text!r} has no time zone")
    return created_at


def _details(entry: dict[str, Any], rules: LineRules) -> str:
    if "details" not in entry and rules.details_required:
        raise RowError("details is missing")
    try:
        return encode_details(entry.get("details"))
    except (TypeError, ValueError) as exc:
        raise RowError(str(exc)) from None


def _texts(entry: dict[str, Any]) -> list[str | None]:
    texts = [_text_field(entry, name) for name in _TEXT_FIELDS]
    try:  # the limits record() keeps, so both backends take the row
        for name, value in zip(_TEXT_FIELDS, texts, strict=True):
            check_text(name, value)
    except ValueError as exc:
        raise RowError(str(exc)) from None
    return texts


def _writer(entry: dict[str, Any]) -> tuple[str | None, int | None]:
    writer_id = _text_field(entry, "writer_id")  # older spool lines have neither
    if writer_id is not None and len(writer_id) > _WRITER_ID_LENGTH:
        raise RowError(f"writer_id {writer_id[:40]!r}... is longer than a writer id")
    return writer_id, _unless_null(entry, "writer_seq", _count_field)


def _entry_row(entry: dict[str, Any], rules: LineRules) -> EntryRow:
    event_id = _event_id(entry, rules)
    event_type = _event_type(entry, rules)
    created_at = _created_at(entry)
    details = _details(entry, rules)
    actor, resource, correlation_id = _texts(entry)
    writer_id, writer_seq = _writer(entry) if rules.keep_writer else (None, None)
    return EntryRow(
        event_id,
        event_type,
        actor,
        resource,
        details,
        correlation_id,
        created_at,
        writer_id,
        writer_seq,
    )


def decode_entry(line: bytes, rules: LineRules) -> EntryRow:
    """The row that one JSON line describes, read by ``rules``.

    Raises:
        RowError: the line is not a JSON object, or a field is missing or wrong.
    """
    return _entry_row(_read_object(line), rules)


def decode_chained(line: bytes) -> ChainedRow:
    """The row, chain fields included, that one line of ``export --chain`` describes.

    The details are the text the entry was hashed with: the canonical encoding, or
    else the text as it stands in the line (an entry stored before the canonical form).

    Raises:
        RowError: the line is not an entry, or a chain field is missing or wrong.
    """
    entry = _read_object(line)
    if "seq" not in entry or "entry_hash" not in entry:
        raise RowError(
            "seq or entry_hash is missing: every line of a chain export (export --chain)"
            " carries the chain's fields"
        )
    row = _entry_row(entry, _CHAIN_RULES)
    seq = _count_field(entry, "seq")
    prev_hash = _hash_field(entry, "prev_hash")
    hashed = _hash_field(entry, "entry_hash")
    mac = _unless_null(entry, "hmac", _hash_field)
    if _hash_of(row, seq, prev_hash) != hashed:
        raw = _raw_details(line)
        if raw is not None and _hash_of(row._replace(details=raw), seq, prev_hash) == hashed:
            row = row._replace(details=raw)
    return ChainedRow(*row, seq, prev_hash, hashed, mac)


def _hash_of(row: EntryRow, seq: int, prev_hash: str) -> str:
    return entry_hash(prev_hash, header_of(seq, row))


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
