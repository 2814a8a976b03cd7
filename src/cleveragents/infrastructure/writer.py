"""The write-behind writer: one thread that drains the queue into the database in batches.

The caller's side (``AuditService.record``) and this side are joined only by an
:class:`AuditQueue`, as in the standard library's ``QueueHandler`` and
``QueueListener``: ``record()`` never does I/O, and this thread never validates.

What the writer guarantees:

- Group commit: whatever is queued, up to ``batch_size`` rows, goes in one
  transaction. Rows from one producer keep their order.
- ``flush(timeout)`` is a barrier that travels through the queue; the writer
  keeps running after it. ``stop(timeout)`` drains what is queued, then ends the
  thread. Both return False rather than wait for ever: on timeout, when the
  thread has died, and when called from the writer thread itself. Control
  messages bypass the queue's bound, so a full queue cannot keep them out.
- A transient error (a lock, a dropped connection) is retried with capped
  exponential backoff until the batch's retry deadline. Any other error splits
  the batch to find the rows that cannot be written, so the good ones commit.
  What cannot be written is counted in ``failed`` and logged; nothing vanishes
  silently.
- The thread survives any exception, unknown ones and non-``Exception`` ones
  included, from any step (the sink, the spool, the writer's own accounting): the
  rows of the batch in hand that were not committed are spooled (or, when even the
  spool fails, counted as failed and declared lost), the flushes waiting on the
  batch are released, the failure is logged, and the loop resumes. Each row is
  counted once, in ``written`` or ``failed``. Only after
  :data:`MAX_FAILURES_IN_ROW` failures without a batch done in between does the
  writer give up: it spools what is queued and the queue refuses new entries
  with :class:`AuditWriterError`, so nothing is queued into nothing.
- At interpreter exit, every running writer is stopped with its close timeout,
  so a process that ends without ``close()`` still persists what it recorded.

This module is the drain loop. Beside it: retries and the split of a batch
(``write_retry``, ``bisection``), what became of each row (``writer_ledger``), the
writer's own declarations (``writer_accounting``), flush and stop (``writer_control``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import structlog

from cleveragents.domain.rows import EntryRow, SystemRow
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.exit_hooks import run_at_exit
from cleveragents.infrastructure.spool import Spool
from cleveragents.infrastructure.write_retry import BatchSink, RetryingWrite, RetryPolicy
from cleveragents.infrastructure.writer_accounting import WriterAccount
from cleveragents.infrastructure.writer_control import STOP, Barrier, Flushes
from cleveragents.infrastructure.writer_ledger import WriterLedger, callers, error_text

__all__ = ["MAX_FAILURES_IN_ROW", "AuditWriter", "BatchSink", "RetryPolicy"]

_log = structlog.get_logger("cleveragents.audit.writer")

#: Failures of the writer loop with no batch done in between, after which the writer gives up.
MAX_FAILURES_IN_ROW = 8


class AuditWriter:
    """Drains an :class:`AuditQueue` into a :class:`BatchSink` on one daemon thread.

    The entry's way: :meth:`_serve` takes an item from the queue, :meth:`_drain_once`
    gathers a batch behind it, :meth:`_write` writes it (retried and split by
    :mod:`~cleveragents.infrastructure.write_retry`, what fails given up to the spool
    by :mod:`~cleveragents.infrastructure.writer_ledger`), the writer's own
    declarations are queued (:mod:`~cleveragents.infrastructure.writer_accounting`),
    and the flushes waiting on the batch are released.
    """

    def __init__(
        self,
        entries: AuditQueue,
        sink: BatchSink,
        *,
        batch_size: int,
        retry: RetryPolicy,
        is_transient: Callable[[BaseException], bool],
        exit_timeout_s: float,
        describe: Callable[[BaseException], str] = lambda exc: f"{type(exc).__name__}: {exc}",
        spool: Spool | None = None,
        identity: WriterIdentity | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "cleveragents-audit-writer",
    ) -> None:
        self._queue = entries
        # With an identity, the writer accounts for itself in the chain: drops and
        # spooled rows are declared as they happen, writer.closed at the end.
        self._account = None if identity is None else WriterAccount(entries, identity)
        self._retrying = RetryingWrite(
            sink, retry, is_transient=is_transient, describe=describe, clock=clock
        )
        self._batch_size = batch_size
        self._describe = describe
        self._exit_timeout_s = exit_timeout_s
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        state = threading.Condition()  # guards the counters, barrier releases, the end
        self._ledger = WriterLedger(state, spool, self._account, self.on_writer_thread)
        self._flushes = Flushes(state, lambda: self._ledger.failed)
        self._system_taken = 0  # system rows taken from the queue so far
        self._barriers_in_hand: list[Barrier] = []  # the flushes waiting on the batch
        self._stopping = False  # the stop message was taken
        self._account_closed = False  # writer.closed was queued
        self._failures_in_row = 0

    # -- counters, written by the writer thread -----------------------------------------

    @property
    def written(self) -> int:
        """The caller's rows committed."""
        return self._ledger.written

    @property
    def failed(self) -> int:
        """The caller's rows that could not be written (spooled or lost)."""
        return self._ledger.failed

    @property
    def spooled(self) -> int:
        """The caller's rows that could not be written and are kept in the spool."""
        return self._ledger.spooled

    @property
    def retried(self) -> int:
        """Retries after transient errors."""
        return self._retrying.retried

    @property
    def batches(self) -> int:
        """Transactions committed that held caller rows."""
        return self._ledger.batches

    # -- lifecycle, called from other threads -------------------------------------------

    def start(self) -> None:
        """Start the thread; it is stopped at interpreter exit if nobody stops it first."""
        self._thread.start()
        _running.add(self)

    def is_alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def on_writer_thread(self) -> bool:
        """True when the caller is the writer thread (or a handler running on it)."""
        return threading.current_thread() is self._thread

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued before this call is committed.

        Returns True when they all are; False on timeout, when one of them could
        not be written (unless an earlier flush was released after that failure
        and could report it), when the writer is not running, or when called from
        the writer thread (which cannot wait for itself).
        """
        if self.on_writer_thread():
            _log.warning("audit_flush_on_writer_thread", hint="flush() cannot wait for itself")
            return False
        if not self._thread.is_alive():
            return False
        # Not self.failed: rows queued before this call may have failed already,
        # before this line, and this flush must report them.
        failed_before = self._flushes.failed_reported()
        barrier = Barrier()
        self._queue.put_control(barrier)
        released = self._flushes.wait(barrier, _nonnegative(timeout))
        return released and barrier.failed_at == failed_before

    def stop(self, timeout: float | None) -> bool:
        """Drain what is queued, then end the thread; True when it ended within ``timeout``.

        Retries of a failing batch are cut short at the deadline; what is left
        then is counted as failed and logged by the writer.
        """
        if self.on_writer_thread():
            _log.error("audit_stop_on_writer_thread", hint="the writer cannot join itself")
            self._queue.put_control(STOP)
            return False
        if self._thread.is_alive():
            limit = _nonnegative(timeout)
            if limit is not None:
                self._retrying.stop_by(self._clock() + limit)
            self._queue.put_control(STOP)
            self._retrying.interrupt()
            # Still in _running while joining: if the join is interrupted (a second
            # Ctrl-C, a SIGTERM), the exit hook still drains this writer.
            self._thread.join(limit)
            if self._thread.is_alive():
                return False
        _running.discard(self)
        self.fail_orphans()
        return True

    def abandon(self, reason: str) -> None:
        """At exit, the writer is stuck past its deadline: spool its batch, the queue and
        its ``writer.closed``.

        Whether the part being written gets committed later is unknown: every row of
        the batch in hand not counted yet is spooled (a replay skips the stored ones)
        and counted once, as failed (a late commit does not count it again).
        """
        _running.discard(self)
        unwritten = self._ledger.unsettled()
        _log.error(
            "audit_exit_incomplete",
            reason=reason,
            in_hand=callers(unwritten),
            queue_depth=self._queue.entries_waiting(),
            hint="entries not committed by the deadline are spooled",
        )
        if unwritten:  # writer.opened alone, say, is spooled too
            self._ledger.give_up(unwritten, reason)
        self.fail_orphans(reason)
        # The closing account goes to the spool too: once replayed, the trail shows a
        # writer that closed with everything it accepted, not one that was killed.
        self._close_account()
        self.fail_orphans(reason)

    def fail_orphans(self, reason: str = "the writer thread is not running") -> None:
        """Take the entries still waiting in the queue, count them as failed and spool them.

        For rows no writer will take: after the thread ended, or when it is stuck
        past the close deadline.
        """
        # A stuck writer that recovers still sees its stop and flushes.
        self._ledger.give_up_queued(self._queue, reason, requeue_controls=self._thread.is_alive)

    def forget_after_fork(self) -> None:
        """In a forked child: this writer's thread is the parent's; never stop it at exit."""
        _running.discard(self)

    def stop_at_exit(self) -> None:
        """Stop with the exit timeout; spool what the stuck writer holds and what is queued."""
        if not self.stop(self._exit_timeout_s):
            self.abandon("the writer did not finish before the exit deadline")

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    self._serve()
                    return
                except BaseException as exc:  # the writer must outlive anything
                    if not self._recover(exc):
                        return
        except BaseException as exc:  # the recovery itself failed: give up, refuse entries
            self._queue.refuse(f"the audit writer failed and could not recover: {error_text(exc)}")
            _log.critical("audit_writer_crashed", error=error_text(exc), exc_info=True)
            self.fail_orphans("the writer thread crashed")
        finally:
            self._queue.writer_ended()  # producers waiting for room stop waiting
            self._flushes.finish()

    def _serve(self) -> None:
        """The loop: drain batches until the stop message, then the rest and writer.closed."""
        while not self._stopping:
            self._drain_once(self._queue.get())
            self._failures_in_row = 0
        # Rows that raced in after the stop message are written too, then the
        # writer's closing account.
        self._drain_rest()
        if not self._account_closed:
            self._close_account()
            self._account_closed = True
        self._drain_rest()

    def _drain_once(self, item: object) -> None:
        """Write ``item`` and whatever else is queued, up to a batch (the stop message noted)."""
        batch: list[EntryRow] = []  # in hand as it grows: abandon() at exit sees it
        barriers: list[Barrier] = []
        self._ledger.take(batch)
        self._barriers_in_hand = barriers
        self._gather(item, batch, barriers)
        if batch:
            self._write(batch)
        self._ledger.put_down()
        if self._account is not None:
            self._account.declare()
        self._flushes.release_after_system_rows(
            barriers,
            rows_behind=self._queue.system_put > self._system_taken,
            requeue=self._queue.put_control,
        )
        self._barriers_in_hand = []

    def _gather(self, item: object, batch: list[EntryRow], barriers: list[Barrier]) -> None:
        """Put ``item`` and what follows it in the queue into ``batch``, up to a flush."""
        while True:
            if type(item) is EntryRow:
                batch.append(item)
            elif type(item) is SystemRow:
                batch.append(item)
                self._system_taken += 1
            elif type(item) is Barrier:
                barriers.append(item)
                return  # rows queued after a flush barrier must not count towards it
            elif item is STOP:
                self._stopping = True
            if len(batch) >= self._batch_size:
                return
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return

    def _close_account(self) -> None:
        """Queue what is left to declare and ``writer.closed``; the drain writes them."""
        if self._account is not None:
            self._account.close(written=self.written, failed=self.failed)

    def _write(self, batch: list[EntryRow]) -> None:
        """Write ``batch``; give up to the spool the rows that cannot be written."""
        failures = self._retrying.write_or_split(batch, self._ledger.count_written)
        if failures:
            first_error = failures[0][1]
            self._ledger.give_up([row for row, _ in failures], self._describe(first_error))

    def _drain_rest(self) -> None:
        """Write what is queued, without waiting for more (after the stop message)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._drain_once(item)

    def _recover(self, exc: BaseException) -> bool:
        """After ``exc`` escaped a step: settle the batch in hand; False when giving up.

        The rows of the batch not yet counted are spooled (committed ones were counted
        when committed), the flushes waiting on it are released, and the loop resumes.
        """
        self._failures_in_row += 1
        reason = f"the audit writer failed: {error_text(exc)}"
        rows = self._ledger.unsettled()
        _log.critical(
            "audit_writer_failed",
            error=error_text(exc),
            in_hand=callers(rows),
            failures_in_row=self._failures_in_row,
            exc_info=exc,
        )
        if rows:
            try:
                self._ledger.give_up(rows, reason)
            except BaseException:  # even the spool or the log failed
                self._ledger.count_lost(rows, reason)
        self._ledger.put_down()
        self._flushes.release(self._barriers_in_hand)
        self._barriers_in_hand = []
        if self._failures_in_row < MAX_FAILURES_IN_ROW:
            _log.warning("audit_writer_resumed", after=error_text(exc))
            return True
        self._give_up_for_good(exc)
        return False

    def _give_up_for_good(self, exc: BaseException) -> None:
        """Too many failures in a row: refuse new entries, close the account, spool the queue."""
        self._queue.refuse(
            f"the audit writer gave up after {self._failures_in_row} failures in a row;"
            f" the last: {error_text(exc)}"
        )
        _log.critical("audit_writer_gave_up", failures_in_row=self._failures_in_row)
        if not self._account_closed:  # to the spool with what is queued: a replay brings it
            try:
                self._close_account()
                self._account_closed = True
            except Exception as close_error:
                _log.critical("audit_writer_close_failed", error=error_text(close_error))
        self.fail_orphans("the writer thread gave up")


def _nonnegative(timeout: float | None) -> float | None:
    return None if timeout is None else max(0.0, timeout)


# Writers still running at interpreter exit. The threads are daemons, so a writer
# stuck on a dead database cannot keep the process alive; this hook gives each one
# its exit timeout to drain first.
_running: set[AuditWriter] = set()


def _stop_running_writers() -> None:
    for writer in list(_running):
        writer.stop_at_exit()


run_at_exit(_stop_running_writers, priority=0)
