"""Writer accounting: who a writer is, read from the running process.

:class:`WriterIdentity` gathers what ``writer.opened`` says about the writer (host,
pid, library version) and builds the writer's own system entries through
:mod:`cleveragents.domain.system_entries`, where every system entry's details are
built and read (see there for what each one declares).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import PendingRow
from cleveragents.domain.system_entries import (
    writer_closed,
    writer_dropped,
    writer_opened,
    writer_spooled,
)

__all__ = ["WriterIdentity", "library_version"]


@cache
def library_version() -> str:
    """The installed cleveragents-audit version."""
    try:
        return metadata.version("cleveragents-audit")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


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
        return writer_opened(
            self.writer_id,
            host=self.host,
            pid=self.pid,
            version=library_version(),
            mode=self.mode,
            parent_writer_id=self.parent_writer_id,
        )

    def closed(
        self, *, last_writer_seq: int, recorded: int, written: int, failed: int, dropped: int
    ) -> PendingRow:
        """The ``writer.closed`` row: the last ``writer_seq`` before it, and the totals."""
        return writer_closed(
            self.writer_id,
            last_writer_seq=last_writer_seq,
            recorded=recorded,
            written=written,
            failed=failed,
            dropped=dropped,
        )

    def dropped(self, count: int, total: int) -> PendingRow:
        """The ``writer.dropped`` row: ``count`` more entries refused on overflow."""
        return writer_dropped(self.writer_id, count, total)

    def spooled(self, writer_seqs: Iterable[int], *, spool: str | None, error: str) -> PendingRow:
        """The ``writer.spooled`` row for caller entries given up with these ``writer_seqs``."""
        return writer_spooled(self.writer_id, writer_seqs, spool=spool, error=error)
