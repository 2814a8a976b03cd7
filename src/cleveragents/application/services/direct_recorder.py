"""Synchronous recording: each entry is committed (INSERT + COMMIT) before ``record()`` returns.

The recorder is the writer in the chain's accounting: it writes its own
``writer.opened`` and ``writer.closed``, and numbers its rows (``writer_seq``) under
one lock, so the database sees them in that order. ``arecord()`` runs the write in
a worker thread of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import structlog

from cleveragents.application.services.databases import TrailDatabase
from cleveragents.domain.errors import AuditServiceClosedError
from cleveragents.domain.rows import PendingRow, with_writer_seq
from cleveragents.domain.stats import AuditStats
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.persistence.errors import describe
from cleveragents.infrastructure.trace_context import audit_io

__all__ = ["DirectRecorder"]

_log = structlog.get_logger("cleveragents.audit")

_REFUSED = "the audit service is closed; record() is refused"


class DirectRecorder:
    """Commits each row through a :class:`TrailDatabase` in the caller's thread."""

    is_async = False

    def __init__(self, database: TrailDatabase) -> None:
        self._database = database
        self.closed = False
        self._identity = WriterIdentity("sync")
        self.writer_id = self._identity.writer_id
        self._lock = threading.Lock()  # close(), and the counters below
        self._written = 0
        self._failed = 0
        self._adapter_failed = 0
        # arecord(): its INSERT runs in a thread of the recorder's own, not in the
        # loop's default executor (made on first use).
        self._arecord_writes: ThreadPoolExecutor | None = None
        # writer_seq is taken and the row committed under this lock, so the database
        # sees this writer's rows in writer_seq order.
        self._write_lock = threading.Lock()
        self._writer_seq = 0
        try:
            self._write_system(self._identity.opened())
        except BaseException:
            database.dispose()
            raise

    def record(self, row: PendingRow) -> int:
        """Commit ``row``; its database id."""
        with self._write_lock:
            if self.closed:  # close() ran since the service looked; its writer.closed is written
                raise AuditServiceClosedError(_REFUSED)
            self._open_forked_child()
            try:
                entry_id = self._append(row)
            except Exception as exc:
                with self._lock:
                    self._failed += 1
                # describe(): the driver's message only, never the statement's parameters,
                # which are audit data (an injected session's engine may not hide them).
                _log.error(
                    "audit_entry_failed",
                    event_type=row.event_type,
                    event_id=row.event_id,
                    error=describe(exc),
                )
                raise
        with self._lock:
            self._written += 1
        return entry_id

    async def arecord(self, row: PendingRow) -> int:
        """:meth:`record` in the recorder's own worker thread (one: writes are serial).

        Not in the loop's default executor: a stuck database would hold its few
        threads, which asyncio also needs (``to_thread``, ``getaddrinfo``).
        """
        with self._lock:
            if self.closed:
                raise AuditServiceClosedError(_REFUSED)
            if self._arecord_writes is None:
                self._arecord_writes = ThreadPoolExecutor(
                    1, thread_name_prefix="cleveragents-audit-arecord"
                )
            writes = self._arecord_writes
            # Under the lock, so close() cannot shut the thread down in between.
            future = writes.submit(contextvars.copy_context().run, self.record, row)
        return await asyncio.wrap_future(future)

    def _write_system(self, row: PendingRow) -> None:
        """Append a system row (writer.opened, writer.closed)."""
        with self._write_lock:
            self._open_forked_child()
            self._append(row)

    def _open_forked_child(self) -> None:
        """A forked child appends its ``writer.opened`` before anything else."""
        if self._writer_seq == 0 and self._identity.parent_writer_id is not None:
            self._append(self._identity.opened())

    def _append(self, row: PendingRow) -> int:
        """Commit ``row`` with the next writer_seq (taken only if the commit succeeds)."""
        writer_seq = self._writer_seq + 1
        with audit_io():  # spans of this write are the trail's own, never audited
            entry_id = self._database.write_one(with_writer_seq(row, writer_seq))
        self._writer_seq = writer_seq
        return entry_id

    def flush(self, timeout: float | None) -> bool:
        """Nothing is pending: True."""
        return True

    def close(self) -> None:
        """Append ``writer.closed`` (a failure is logged, not raised) and dispose. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self._arecord_writes is not None:
            self._arecord_writes.shutdown(wait=False)  # after the writes already submitted
        try:
            with self._write_lock:  # the totals and writer_seq of the rows before it
                self._open_forked_child()
                self._append(self._closing_account())
        except Exception as exc:
            _log.error(
                "audit_writer_close_failed",
                error=describe(exc),
                hint="verify will show this writer as unterminated",
            )
        self._database.dispose()

    def _closing_account(self) -> PendingRow:
        """The ``writer.closed`` row: the last writer_seq and the totals."""
        with self._lock:
            written, failed = self._written, self._failed
        return self._identity.closed(
            last_writer_seq=self._writer_seq,
            recorded=written + failed,
            written=written,
            failed=failed,
            dropped=0,
        )

    def stats(self) -> AuditStats:
        """The counters: every entry is written or failed at once, one batch each."""
        return AuditStats(
            enqueued=self._written + self._failed,
            written=self._written,
            failed=self._failed,
            rejected=0,
            retried=0,
            batches=self._written,
            queue_depth=0,
            adapter_failed=self._adapter_failed,
        )

    def note_adapter_failure(self) -> int:
        """Count one event an adapter could not record; the total."""
        with self._lock:
            self._adapter_failed += 1
            return self._adapter_failed

    def before_fork(self) -> None:
        """Before os.fork(): hold writes."""
        self._database.before_fork()

    def after_fork_in_parent(self) -> None:
        """After os.fork(), in the parent: let writes go on."""
        self._database.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """In a forked child: own connections, and a writer of its own in the accounting.

        Its ``writer.opened`` is written before its first entry.
        """
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._identity = self._identity.forked()
        self.writer_id = self._identity.writer_id
        self._arecord_writes = None  # the parent's thread is not in the child
        self._writer_seq = 0
        self._written = self._failed = 0  # the child's own totals
        self._database.after_fork_in_child()
