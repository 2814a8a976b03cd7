"""The rows an entry travels as, from ``record()`` to the INSERT: named tuples.

A row is a tuple of immutable values: cheap to build in the caller's thread, not
tracked by the garbage collector, and handed to the insert as it is. Its fields
have names, and every module reads them by name (``row.writer_seq``); positional
access (``row[8]``) is for this module only.

- :class:`PendingRow`: what ``record()`` builds, before the queue (or the
  synchronous writer) gives it its ``writer_seq``.
- :class:`EntryRow`: a pending row with its ``writer_seq``, as the writer hands it
  to the insert; the chain columns (seq, prev_hash, entry_hash, hmac) are added by
  the insert, under the chain's lock.
- :class:`SystemRow`: an :class:`EntryRow` the library writes itself (a
  :class:`~cleveragents.domain.event_types.SystemEventType`). Its own type, so the
  writer tells it from a caller's row with one ``type()`` check.
- :class:`ChainedRow`: an entry with its chain fields already given: a row of
  another database's chain, imported as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = [
    "CHAIN_FIELDS",
    "ROW_FIELDS",
    "ChainedRow",
    "EntryRow",
    "PendingRow",
    "SystemRow",
    "with_writer_seq",
]


class PendingRow(NamedTuple):
    """An entry checked and encoded by ``record()``, waiting for its ``writer_seq``."""

    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: str  # canonical JSON
    correlation_id: str | None
    created_at: datetime
    writer_id: str | None


class EntryRow(NamedTuple):
    """An entry as the insert takes it: a :class:`PendingRow` and its ``writer_seq``."""

    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: str  # canonical JSON
    correlation_id: str | None
    created_at: datetime
    writer_id: str | None
    writer_seq: int | None


class SystemRow(EntryRow):
    """A row the library writes itself: it takes no room in the queue and is not counted."""

    __slots__ = ()


class ChainedRow(NamedTuple):
    """An :class:`EntryRow`'s fields and its chain fields, as another chain stored them."""

    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: str
    correlation_id: str | None
    created_at: datetime
    writer_id: str | None
    writer_seq: int | None
    seq: int
    prev_hash: str
    entry_hash: str
    hmac: str | None


#: The columns of an :class:`EntryRow`, in its order (the INSERT's column list).
ROW_FIELDS: tuple[str, ...] = EntryRow._fields
#: The columns the insert adds to an :class:`EntryRow`, in a :class:`ChainedRow`'s order.
CHAIN_FIELDS: tuple[str, ...] = ChainedRow._fields[len(ROW_FIELDS) :]

_new = tuple.__new__


def with_writer_seq(
    row: PendingRow, writer_seq: int | None, kind: type[EntryRow] = EntryRow
) -> EntryRow:
    """``row`` as an :class:`EntryRow` (or ``kind``) with ``writer_seq``: one C-level call."""
    return _new(kind, (*row, writer_seq))
