"""Writer accounting: the system entries a writer appends about itself.

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

A writer without ``writer.closed``, or with a hole in its ``writer_seq`` that no
declaration covers, is what ``verify`` reports as possible loss. These rows are
built here as 8-tuples; the queue (or the synchronous path) adds ``writer_seq``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from typing import Any

from cleveragents.domain.details import encode_details
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow, with_writer_seq

__all__ = [
    "ImportDeclaration",
    "WriterIdentity",
    "library_version",
    "replayed_declaration",
    "system_row",
    "writer_seq_ranges",
]

#: The actor of every system entry.
SYSTEM_ACTOR = "cleveragents-audit"


@cache
def library_version() -> str:
    """The installed cleveragents-audit version."""
    try:
        return metadata.version("cleveragents-audit")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


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


@dataclass(frozen=True, slots=True)
class WriterIdentity:
    """Who a writer is: a fresh ``writer_id`` per service instance and per forked child."""

    mode: str  # "async" or "sync"
    parent_writer_id: str | None = None
    writer_id: str = field(default_factory=new_event_id)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def forked(self) -> WriterIdentity:
        """The identity of this writer's forked child (call in the child)."""
        return WriterIdentity(self.mode, parent_writer_id=self.writer_id)

    def opened(self) -> PendingRow:
        """The ``writer.opened`` row."""
        details: dict[str, Any] = {
            "host": self.host,
            "pid": self.pid,
            "version": library_version(),
            "mode": self.mode,
        }
        if self.parent_writer_id is not None:
            details["parent_writer_id"] = self.parent_writer_id
        return system_row(SystemEventType.WRITER_OPENED, details, writer_id=self.writer_id)

    def closed(
        self, *, last_writer_seq: int, recorded: int, written: int, failed: int, dropped: int
    ) -> PendingRow:
        """The ``writer.closed`` row: the last ``writer_seq`` before it, and the totals."""
        return system_row(
            SystemEventType.WRITER_CLOSED,
            {
                "last_writer_seq": last_writer_seq,
                "recorded": recorded,
                "written": written,
                "failed": failed,
                "dropped": dropped,
            },
            writer_id=self.writer_id,
        )

    def dropped(self, count: int, total: int) -> PendingRow:
        """The ``writer.dropped`` row: ``count`` more entries refused on overflow."""
        return system_row(
            SystemEventType.WRITER_DROPPED,
            {"count": count, "total": total, "reason": "queue full (overflow policy)"},
            writer_id=self.writer_id,
        )

    def spooled(self, writer_seqs: Iterable[int], *, spool: str | None, error: str) -> PendingRow:
        """The ``writer.spooled`` row for caller entries given up with these ``writer_seqs``."""
        ranges = writer_seq_ranges(writer_seqs)
        return system_row(
            SystemEventType.WRITER_SPOOLED,
            {
                "count": sum(last - first + 1 for first, last in ranges),
                "writer_seqs": ranges,
                "spool": spool,
                "error": error,
            },
            writer_id=self.writer_id,
        )


def writer_seq_ranges(writer_seqs: Iterable[int]) -> list[list[int]]:
    """``[[first, last], ...]``: the sorted, merged runs of ``writer_seqs``."""
    ranges: list[list[int]] = []
    for number in sorted(set(writer_seqs)):
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ranges


def replayed_declaration(rows: Sequence[EntryRow]) -> EntryRow | None:
    """The ``spool.replayed`` row for the writers' rows among ``rows``, or None if none."""
    by_writer: dict[str, list[int]] = {}
    for row in rows:
        if row.writer_id is not None and row.writer_seq is not None:
            by_writer.setdefault(row.writer_id, []).append(row.writer_seq)
    if not by_writer:
        return None
    ranges = {writer: writer_seq_ranges(numbers) for writer, numbers in by_writer.items()}
    details = {"writers": ranges, "count": sum(map(len, by_writer.values()))}
    return with_writer_seq(
        system_row(SystemEventType.SPOOL_REPLAYED, details, writer_id=None), None
    )


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
        if not rows:
            return None
        details = {
            "count": len(rows),
            "first_seq": first_seq,
            "last_seq": first_seq + len(rows) - 1,
            "source": self.source,
            "import_id": self.import_id,
        }
        return with_writer_seq(
            system_row(SystemEventType.TRAIL_IMPORTED, details, writer_id=None), None
        )
