"""What became of each row the writer took: written, or failed (kept in the spool, or lost).

Each row is counted once, by its ``writer_seq``: the rows of the batch in hand
already counted (committed, or given up) are its *settled* set, so a failure that
comes after part of a batch committed, or an ``abandon()`` at exit racing a late
commit, never counts a row twice. Rows given up go to the spool when there is one;
the caller's rows given up are then declared in the chain (``writer.spooled``, see
:mod:`cleveragents.infrastructure.writer_accounting`). System rows go to the spool
too, but are not counted: the stats count the caller's entries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

import structlog

from cleveragents.domain.rows import EntryRow, SystemRow
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.spool import Spool
from cleveragents.infrastructure.writer_accounting import WriterAccount

__all__ = ["WriterLedger", "callers", "error_text"]

_log = structlog.get_logger("cleveragents.audit.writer")


class WriterLedger:
    """The writer's counters and the batch in hand, under the writer's ``state`` lock.

    The counters are written by the writer thread, and by ``abandon()`` or
    ``fail_orphans()`` once that thread is stuck or gone.
    """

    def __init__(
        self,
        state: threading.Condition,
        spool: Spool | None,
        account: WriterAccount | None,
        on_writer_thread: Callable[[], bool],
    ) -> None:
        self._state = state
        self._spool = spool
        self._account = account
        self._on_writer_thread = on_writer_thread
        # The batch being written and the writer_seqs of its rows already counted.
        self._in_hand: Sequence[EntryRow] = ()
        self._settled: set[int | None] = set()
        self.written = 0
        self.failed = 0
        self.spooled = 0
        self.batches = 0

    def take(self, batch: Sequence[EntryRow]) -> None:
        """``batch`` is the batch in hand now, none of its rows counted yet."""
        with self._state:
            self._in_hand, self._settled = batch, set()

    def put_down(self) -> None:
        """The batch in hand is done with: every row of it is counted."""
        self._in_hand = ()

    def unsettled(self) -> list[EntryRow]:
        """The rows of the batch in hand not yet counted as written or failed."""
        with self._state:
            return [row for row in self._in_hand if row.writer_seq not in self._settled]

    def count_written(self, rows: Sequence[EntryRow]) -> None:
        """``rows`` committed: count the caller's ones as written (once each)."""
        with self._state:  # a row given up meanwhile (abandon() at exit) stays counted there
            committed = [row for row in rows if row.writer_seq not in self._settled]
            self._settled.update(row.writer_seq for row in committed)
            count = callers(committed)
            self.written += count
        if count:  # like written, batches count the caller's: not writer.opened alone
            self.batches += 1

    def give_up(self, rows: Sequence[EntryRow], error: str) -> None:
        """Count ``rows`` as failed, keep them in the spool if there is one, and log it.

        Rows already counted (committed, or given up before) are skipped. On the
        running writer, the caller's rows given up are then declared in the chain with
        a ``writer.spooled`` row (``spool`` null: not in the spool).
        """
        rows = self._not_settled(rows)
        if not rows:
            return
        kept, lost, spooled_to = self._to_spool(rows, error)
        self._count_failed(kept, spooled_to, error, spooled=True)
        total_failed = self._count_failed(lost, None, error, spooled=False)
        _log.error(
            "audit_entries_failed",
            count=callers(rows),
            error=error,
            spool=spooled_to,
            lost=callers(lost),
            event_ids=[row.event_id for row in rows[:10]],
            total_failed=total_failed,
            hint=(
                f"replay them with: cleveragents-audit replay {spooled_to}"
                if spooled_to
                else "these entries are lost"
            ),
        )
        if self._account is not None and self._on_writer_thread():
            self._account.declare_spooled()

    def give_up_queued(
        self, entries: AuditQueue, reason: str, *, requeue_controls: Callable[[], bool]
    ) -> None:
        """Take the rows still waiting in ``entries``, count them as failed and spool them.

        Control messages (flushes, stop) taken on the way are put back when
        ``requeue_controls()`` says so once the queue is drained (the writer still runs).
        """
        orphans: list[EntryRow] = []
        controls: list[object] = []
        while True:
            try:
                item = entries.get_nowait()
            except queue.Empty:
                break
            if type(item) is EntryRow or type(item) is SystemRow:
                orphans.append(item)
            else:
                controls.append(item)
        if requeue_controls():
            for message in controls:
                entries.put_control(message)
        if orphans:
            try:
                self.give_up(orphans, reason)
            except Exception:  # the spool, or the log, failed: still counted
                self.count_lost(orphans, reason)

    def count_lost(self, rows: Sequence[EntryRow], error: str) -> None:
        """The last resort when giving up failed: count ``rows`` as failed, declared lost."""
        self._count_failed(self._not_settled(rows), None, error, spooled=False)

    def _not_settled(self, rows: Sequence[EntryRow]) -> list[EntryRow]:
        with self._state:
            return [row for row in rows if row.writer_seq not in self._settled]

    def _to_spool(
        self, rows: Sequence[EntryRow], error: str
    ) -> tuple[Sequence[EntryRow], Sequence[EntryRow], str | None]:
        """Append ``rows`` to the spool: the rows kept, the rows lost, and the spool's path."""
        if self._spool is None:
            return (), rows, None
        try:
            unencodable = self._spool.append(rows, error)
        except Exception as exc:  # an OSError, or anything else: the rows are not kept
            _log.critical(
                "audit_spool_failed",
                spool=str(self._spool.path),
                count=callers(rows),
                error=error_text(exc),
            )
            return (), rows, None
        left_out = {row.writer_seq for row, _ in unencodable}
        for row, reason in unencodable:
            _log.critical("audit_spool_refused_entry", event_id=row.event_id, error=reason)
        kept = [row for row in rows if row.writer_seq not in left_out]
        return kept, [row for row, _ in unencodable], str(self._spool.path)

    def _count_failed(
        self, rows: Sequence[EntryRow], spool: str | None, error: str, *, spooled: bool
    ) -> int:
        """Count ``rows`` as failed (and spooled), settled, to be declared; the total failed."""
        count = callers(rows)
        with self._state:
            self._settled.update(row.writer_seq for row in rows)
            self.failed += count
            if spooled:
                self.spooled += count
            total = self.failed
        if count and self._account is not None and self._on_writer_thread():
            self._account.note_given_up(
                [
                    row.writer_seq
                    for row in rows
                    if type(row) is EntryRow and row.writer_seq is not None
                ],
                spool,
                error,
            )
        return total


def callers(rows: Sequence[EntryRow]) -> int:
    """How many of ``rows`` are the caller's (not a :class:`SystemRow`)."""
    return sum(type(row) is EntryRow for row in rows)


def error_text(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, never raising (a broken ``__str__`` included)."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__
