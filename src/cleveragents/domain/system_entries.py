"""The library's own entries: each one's details built and read in this one place.

Every service instance, and every forked child of one, is a *writer* with its own
``writer_id`` (UUIDv7). Each entry it accepts gets the next ``writer_seq``
(1, 2, 3, ... with no gaps), and the writer appends, in the same sequence:

- ``writer.opened`` first: host, pid, library version, mode;
- ``writer.dropped`` when ``record()`` refused entries on overflow: how many, so
  that they are declared rather than silently missing (a refused entry never got
  a ``writer_seq``);
- ``writer.spooled`` when rows went to the spool instead of the database while the
  writer kept running: their ``writer_seq`` ranges (a replay appends them later,
  out of order, and the declaration tells ``verify`` that this is expected);
- ``writer.closed`` last, on close: the last ``writer_seq`` and the totals.

A replay of the spool appends what it re-appends followed by ``spool.replayed``
(no writer of its own): for each writer, the ``writer_seq`` ranges it brought back,
which ``verify`` then accepts after later entries of that writer, even after its
``writer.closed``.

A re-chaining import (an export made without ``--chain``) appends, in each of its
transactions, ``trail.imported`` after the entries it stored (no writer either): how
many, the seqs they got here, the source file. ``verify`` names it when a checkpoint
of the source chain is checked against this trail.

A purge appends ``retention.purged`` before it deletes the prefix: through which seq
and hash, how many entries, older than when. ``verify`` starts after the newest one.

A writer without ``writer.closed``, or with a hole in its ``writer_seq`` that no
declaration covers, is what ``verify`` reports as possible loss. The writers' rows
are built as :class:`PendingRow` (the queue, or the synchronous path, adds
``writer_seq``); the declarations without a writer as :class:`SystemRow`. The readers
(``*Details.parse``) take a stored row's details text and never raise: what is not of
the format reads as absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from cleveragents.domain.details import encode_details
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow, SystemRow, with_writer_seq

__all__ = [
    "SYSTEM_ACTOR",
    "DroppedDetails",
    "ImportDeclaration",
    "ImportedDetails",
    "PurgedDetails",
    "ReplayedDetails",
    "SpooledDetails",
    "read_details",
    "retention_purged",
    "spool_replayed",
    "system_row",
    "trail_imported",
    "writer_closed",
    "writer_dropped",
    "writer_opened",
    "writer_seq_ranges",
    "writer_spooled",
]

#: The actor of every system entry.
SYSTEM_ACTOR = "cleveragents-audit"

#: A ``[first, last]`` run of numbers, both included, as a declaration reads it.
Range = tuple[int, int]

# The keys of the details, each written and read under this one name.
_COUNT = "count"
_WRITER_SEQS = "writer_seqs"  # writer.spooled
_WRITERS = "writers"  # spool.replayed
_FIRST_SEQ, _LAST_SEQ, _SOURCE, _IMPORT_ID = "first_seq", "last_seq", "source", "import_id"
_THROUGH_SEQ, _THROUGH_HASH = "through_seq", "through_hash"  # retention.purged


def system_row(
    kind: SystemEventType, details: Mapping[str, Any], *, writer_id: str | None
) -> PendingRow:
    """A system entry, ``writer_seq`` to come."""
    return PendingRow(
        new_event_id(),
        kind.value,
        SYSTEM_ACTOR,
        None,
        encode_details(details),
        None,
        datetime.now(UTC),
        writer_id,
    )


def _declaration(kind: SystemEventType, details: Mapping[str, Any]) -> SystemRow:
    """A system entry of no writer (no ``writer_seq`` either)."""
    return cast(
        SystemRow, with_writer_seq(system_row(kind, details, writer_id=None), None, SystemRow)
    )


# -- a writer's own entries ----------------------------------------------------------------


def writer_opened(
    writer_id: str,
    *,
    host: str,
    pid: int,
    version: str,
    mode: str,
    parent_writer_id: str | None = None,
) -> PendingRow:
    """The ``writer.opened`` row: where the writer runs, and its parent when it is a fork."""
    details: dict[str, Any] = {"host": host, "pid": pid, "version": version, "mode": mode}
    if parent_writer_id is not None:
        details["parent_writer_id"] = parent_writer_id
    return system_row(SystemEventType.WRITER_OPENED, details, writer_id=writer_id)


def writer_closed(
    writer_id: str,
    *,
    last_writer_seq: int,
    recorded: int,
    written: int,
    failed: int,
    dropped: int,
) -> PendingRow:
    """The ``writer.closed`` row: the last ``writer_seq`` before it, and the totals."""
    details = {
        "last_writer_seq": last_writer_seq,
        "recorded": recorded,
        "written": written,
        "failed": failed,
        "dropped": dropped,
    }
    return system_row(SystemEventType.WRITER_CLOSED, details, writer_id=writer_id)


def writer_dropped(writer_id: str, count: int, total: int) -> PendingRow:
    """The ``writer.dropped`` row: ``count`` more entries refused on overflow."""
    details = {_COUNT: count, "total": total, "reason": "queue full (overflow policy)"}
    return system_row(SystemEventType.WRITER_DROPPED, details, writer_id=writer_id)


def writer_spooled(
    writer_id: str, writer_seqs: Iterable[int], *, spool: str | None, error: str
) -> PendingRow:
    """The ``writer.spooled`` row for caller entries given up with these ``writer_seqs``."""
    ranges = writer_seq_ranges(writer_seqs)
    details = {
        _COUNT: sum(last - first + 1 for first, last in ranges),
        _WRITER_SEQS: ranges,
        "spool": spool,
        "error": error,
    }
    return system_row(SystemEventType.WRITER_SPOOLED, details, writer_id=writer_id)


def writer_seq_ranges(writer_seqs: Iterable[int]) -> list[list[int]]:
    """``[[first, last], ...]``: the sorted, merged runs of ``writer_seqs``."""
    ranges: list[list[int]] = []
    for number in sorted(set(writer_seqs)):
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ranges


# -- declarations of no writer -------------------------------------------------------------


def spool_replayed(rows: Sequence[EntryRow]) -> SystemRow | None:
    """The ``spool.replayed`` row for the writers' rows among ``rows``, or None if none."""
    by_writer: dict[str, list[int]] = {}
    for row in rows:
        if row.writer_id is not None and row.writer_seq is not None:
            by_writer.setdefault(row.writer_id, []).append(row.writer_seq)
    if not by_writer:
        return None
    ranges = {writer: writer_seq_ranges(numbers) for writer, numbers in by_writer.items()}
    details = {_WRITERS: ranges, _COUNT: sum(map(len, by_writer.values()))}
    return _declaration(SystemEventType.SPOOL_REPLAYED, details)


def trail_imported(
    rows: Sequence[EntryRow], first_seq: int, *, source: str, import_id: str
) -> SystemRow | None:
    """The ``trail.imported`` row for ``rows`` (seq ``first_seq`` on), or None if none."""
    if not rows:
        return None
    details = {
        _COUNT: len(rows),
        _FIRST_SEQ: first_seq,
        _LAST_SEQ: first_seq + len(rows) - 1,
        _SOURCE: source,
        _IMPORT_ID: import_id,
    }
    return _declaration(SystemEventType.TRAIL_IMPORTED, details)


@dataclass(frozen=True, slots=True)
class ImportDeclaration:
    """Builds the ``trail.imported`` row that ends each transaction of a re-chaining import.

    Called with the new rows and the seq the first of them gets (``bulk.append``'s
    ``declare``); every transaction of one import shares its ``import_id``.
    """

    source: str  # the file imported, or "-" for standard input
    import_id: str = field(default_factory=new_event_id)

    def __call__(self, rows: Sequence[EntryRow], first_seq: int) -> EntryRow | None:
        """The declaration of ``rows`` (seq ``first_seq`` on), or None when there are none."""
        return trail_imported(rows, first_seq, source=self.source, import_id=self.import_id)


def retention_purged(
    *, through_seq: int, through_hash: str, count: int, before: datetime
) -> SystemRow:
    """The ``retention.purged`` row: the chain up to ``through_seq`` is removed."""
    details = {
        _THROUGH_SEQ: through_seq,
        _THROUGH_HASH: through_hash,
        _COUNT: count,
        "before": before.isoformat(),
    }
    return _declaration(SystemEventType.RETENTION_PURGED, details)


# -- reading them back ---------------------------------------------------------------------


def read_details(text: str) -> dict[str, Any]:
    """The details object of a stored row; empty when ``text`` is not a JSON object.

    (A row put in by hand on SQLite may hold any type: that reads as empty too.)
    """
    try:
        value = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _ranges(value: object) -> tuple[Range, ...]:
    """The ``[first, last]`` pairs of integers in ``value``; anything else is left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        (pair[0], pair[1])
        for pair in value
        if isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair)
    )


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def _count(value: object) -> int:
    """A declared count: a positive integer, else 0."""
    return value if type(value) is int and value > 0 else 0


@dataclass(frozen=True, slots=True)
class DroppedDetails:
    """What a ``writer.dropped`` entry declares: ``count`` more entries refused."""

    count: int

    @classmethod
    def parse(cls, text: str) -> DroppedDetails:
        """Read a stored ``writer.dropped`` details text."""
        return cls(_count(read_details(text).get(_COUNT)))


@dataclass(frozen=True, slots=True)
class SpooledDetails:
    """What a ``writer.spooled`` entry declares: the ``writer_seq`` ranges it spooled."""

    writer_seqs: tuple[Range, ...]

    @classmethod
    def parse(cls, text: str) -> SpooledDetails:
        """Read a stored ``writer.spooled`` details text."""
        return cls(_ranges(read_details(text).get(_WRITER_SEQS)))


@dataclass(frozen=True, slots=True)
class ReplayedDetails:
    """What a ``spool.replayed`` entry declares: per writer, the ranges brought back."""

    writers: Mapping[str, tuple[Range, ...]]

    @classmethod
    def parse(cls, text: str) -> ReplayedDetails:
        """Read a stored ``spool.replayed`` details text."""
        writers = read_details(text).get(_WRITERS)
        if not isinstance(writers, dict):
            return cls({})
        return cls({writer_id: _ranges(ranges) for writer_id, ranges in writers.items()})


@dataclass(frozen=True, slots=True)
class ImportedDetails:
    """What a ``trail.imported`` entry declares (None: absent or not of the format)."""

    import_id: str | None
    first_seq: int | None
    last_seq: int | None
    count: int  # 0 when not a positive integer
    source: str | None

    @classmethod
    def parse(cls, text: str) -> ImportedDetails:
        """Read a stored ``trail.imported`` details text."""
        details = read_details(text)
        import_id, source = details.get(_IMPORT_ID), details.get(_SOURCE)
        return cls(
            import_id if isinstance(import_id, str) else None,
            _int(details.get(_FIRST_SEQ)),
            _int(details.get(_LAST_SEQ)),
            _count(details.get(_COUNT)),
            source if isinstance(source, str) else None,
        )


@dataclass(frozen=True, slots=True)
class PurgedDetails:
    """What a ``retention.purged`` entry declares (None: absent or not of the format)."""

    through_seq: int | None
    through_hash: str | None

    @classmethod
    def parse(cls, text: str) -> PurgedDetails:
        """Read a stored ``retention.purged`` details text."""
        details = read_details(text)
        hashed = details.get(_THROUGH_HASH)
        return cls(_int(details.get(_THROUGH_SEQ)), hashed if isinstance(hashed, str) else None)
