"""The writer's own entries in the chain: ``writer.dropped``, ``writer.spooled``, ``writer.closed``.

With a :class:`~cleveragents.infrastructure.accounting.WriterIdentity`, the writer
accounts for itself: entries refused on overflow are declared by ``writer.dropped``,
entries given up (to the spool, or lost) by ``writer.spooled``, and its totals by
``writer.closed`` at the end. Each declaration is queued as a system row behind the
rows it speaks of, and the drain writes it like any other row.
"""

from __future__ import annotations

from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue

__all__ = ["WriterAccount"]


class WriterAccount:
    """The declarations one writer still owes the chain, queued as they fall due."""

    def __init__(self, entries: AuditQueue, identity: WriterIdentity) -> None:
        self._queue = entries
        self._identity = identity
        self._declared_dropped = 0  # the queue's ``rejected`` at the last writer.dropped
        # writer.spooled declarations still to queue: (writer_seqs, spool or None, error).
        self._undeclared: list[tuple[list[int], str | None, str]] = []

    def note_given_up(self, writer_seqs: list[int], spool: str | None, error: str) -> None:
        """Rows with these ``writer_seqs`` were given up (to ``spool``, or lost): declare them."""
        self._undeclared.append((writer_seqs, spool, error))

    def declare(self) -> None:
        """Queue what is due: ``writer.dropped`` for new refusals, ``writer.spooled`` rows."""
        if self._queue.rejected > self._declared_dropped:
            self._declare_dropped()
        self.declare_spooled()

    def close(self, *, written: int, failed: int) -> None:
        """Queue what is left to declare and ``writer.closed``; the drain writes them."""
        self.declare()
        self._queue.put_system(
            self._identity.closed(
                last_writer_seq=self._queue.last_writer_seq,
                recorded=self._queue.entries_put,
                written=written,
                failed=failed,
                dropped=self._queue.rejected,
            )
        )

    def declare_spooled(self) -> None:
        """Queue a ``writer.spooled`` row for each group of rows given up and not declared.

        A group stays listed until its row is queued: a declaration that fails is
        made again after the next batch, or at close.
        """
        while self._undeclared:
            writer_seqs, spool, error = self._undeclared[0]
            self._queue.put_system(self._identity.spooled(writer_seqs, spool=spool, error=error))
            del self._undeclared[0]

    def _declare_dropped(self) -> None:
        """Queue a ``writer.dropped`` row for the entries refused since the last one."""
        total = self._queue.rejected
        self._queue.put_system(self._identity.dropped(total - self._declared_dropped, total))
        self._declared_dropped = total
