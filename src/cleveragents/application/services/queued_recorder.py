"""Asynchronous recording: rows are queued, and a writer thread commits them in batches.

``record()`` costs the caller a queue put; the :class:`AuditWriter` drains the
:class:`AuditQueue` into the database (through a :class:`CheckpointingSink` when
automatic checkpoints are on). A full queue applies the queue's overflow strategy.
Closing drains the queue within ``audit_close_timeout_s``; what is left is spooled.
"""

from __future__ import annotations

import queue
import threading

import structlog

from cleveragents.application.trail import CheckpointingSink
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import PENDING_ID
from cleveragents.domain.rows import PendingRow
from cleveragents.domain.stats import AuditStats
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue, Overflow
from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.persistence.errors import describe, is_transient
from cleveragents.infrastructure.spool import Spool
from cleveragents.infrastructure.writer import AuditWriter, BatchSink, RetryPolicy

__all__ = ["DEFAULT_CHECKPOINT_EVERY", "QueuedRecorder"]

_log = structlog.get_logger("cleveragents.audit")

# Automatic checkpoints with a path and neither a count nor an interval: this often.
DEFAULT_CHECKPOINT_EVERY = 10_000


class QueuedRecorder:
    """Queues rows for a writer thread of its own, which commits them to ``database``."""

    is_async = True

    def __init__(self, database: AuditDatabase, settings: Settings, spool: Spool) -> None:
        self._database = database
        self._settings = settings
        self._spool = spool
        self._overflow = Overflow(settings.audit_overflow == "block", settings.audit_block_timeout)
        self.closed = False
        self._lock = threading.Lock()  # close(), and the adapter failures
        self._adapter_failed = 0
        self._identity = WriterIdentity("async")
        self._start()

    def _start(self) -> None:
        """A queue, its ``writer.opened``, and a started writer thread."""
        self.writer_id = self._identity.writer_id
        self._queue = AuditQueue(self._settings.audit_queue_maxsize, self._overflow)
        self._queue.put_system(self._identity.opened())
        self._checkpoints = self._checkpointing_sink()
        sink: BatchSink = self._database if self._checkpoints is None else self._checkpoints
        self._writer = AuditWriter(
            self._queue,
            sink,
            batch_size=self._settings.audit_batch_size,
            retry=RetryPolicy(deadline_s=self._settings.audit_retry_deadline),
            is_transient=is_transient,
            describe=describe,
            exit_timeout_s=self._settings.audit_close_timeout_s,
            spool=self._spool,
            identity=self._identity,
        )
        self._writer.start()

    def _checkpointing_sink(self) -> CheckpointingSink | None:
        """With ``audit_checkpoint_path``: the sink that also writes checkpoints when due."""
        path = self._settings.audit_checkpoint_path
        if path is None:
            return None
        every = self._settings.audit_checkpoint_every
        interval_s = self._settings.audit_checkpoint_interval_s
        return CheckpointingSink(
            self._database,
            path.absolute(),
            every=DEFAULT_CHECKPOINT_EVERY if every is None and interval_s is None else every,
            interval_s=interval_s,
        )

    def record(self, row: PendingRow) -> int:
        """Queue ``row`` (the overflow strategy applies when full); ``PENDING_ID``."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._queue.put_when_full(row, from_writer=self._writer.on_writer_thread())
        if self.closed:
            self._spool_if_orphaned()
        return PENDING_ID

    async def arecord(self, row: PendingRow) -> int:
        """:meth:`record` for a task: a wait for room is on the loop, holding no thread."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            await self._queue.aput_when_full(row)
        if self.closed:
            self._spool_if_orphaned()
        return PENDING_ID

    def _spool_if_orphaned(self) -> None:
        """After a record() that raced close(): if no writer will take the entry, spool it.

        The entry is then accounted for like any other the database did not get
        (counted, logged, replayable), so the call returns normally: raising would
        tell the caller it was not recorded, and a retry would duplicate it.
        """
        if not self._writer.is_alive():
            self._writer.fail_orphans("the service was closed while record() ran")

    def flush(self, timeout: float | None) -> bool:
        """Wait for the writer to commit what was queued before the call."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Drain and stop the writer within the close deadline, then dispose. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._queue.close()  # producers waiting for room: the service is closed
        writer, timeout_s = self._writer, self._settings.audit_close_timeout_s
        if writer.on_writer_thread():
            writer.stop(None)  # logs; the writer ends once it has drained the queue
            return
        if not writer.stop(timeout_s):
            _log.error(
                "audit_close_incomplete",
                timeout_s=timeout_s,
                hint="the writer is stuck on the database; what is still queued is spooled",
            )
            # The batch in the writer's hand stays its own: committed if the database
            # comes back, else spooled by the exit hook, which still tracks the writer.
            writer.fail_orphans("the writer did not finish before the close deadline")
            return  # the writer still uses the engine: leave it to the process exit
        if self._checkpoints is not None:
            self._checkpoints.write_now()  # the head after writer.closed
        self._database.dispose()

    def stats(self) -> AuditStats:
        """The queue's and the writer's counters."""
        return AuditStats(
            enqueued=self._queue.entries_put,
            written=self._writer.written,
            failed=self._writer.failed,
            spooled=self._writer.spooled,
            rejected=self._queue.rejected,
            retried=self._writer.retried,
            batches=self._writer.batches,
            queue_depth=self._queue.entries_waiting(),
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
        """In a forked child: own connections, a fresh queue and a writer of its own.

        Entries the parent had queued stay the parent's to write; the child's
        records go through its own writer, a new one in the chain's accounting.
        """
        self._lock = threading.Lock()
        self._identity = self._identity.forked()
        self.writer_id = self._identity.writer_id
        self._database.after_fork_in_child()
        self._writer.forget_after_fork()
        if not self.closed:
            self._start()
