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
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from cleveragents.domain.rows import EntryRow, SystemRow
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.exit_hooks import run_at_exit
from cleveragents.infrastructure.spool import Spool

__all__ = ["MAX_FAILURES_IN_ROW", "AuditWriter", "BatchSink", "RetryPolicy"]

_log = structlog.get_logger("cleveragents.audit.writer")

#: Failures of the writer loop with no batch done in between, after which the writer gives up.
MAX_FAILURES_IN_ROW = 8


class BatchSink(Protocol):
    """Where the writer puts its batches: one transaction per call, raising on failure."""

    def write_batch(self, rows: Sequence[EntryRow]) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often a batch is retried after a transient error."""

    deadline_s: float = 30.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0

    def delay_s(self, attempt: int) -> float:
        """The pause before retry number ``attempt`` (0-based): doubling, capped."""
        # The exponent is capped: 2**attempt beyond ~1024 no longer converts to a float.
        return float(min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt, 64))))


class _Barrier:
    """A flush request: released once every row queued before it is written or failed.

    And once the writer's declarations about those rows (``writer.dropped``,
    ``writer.spooled``) are written: when system rows are queued behind the barrier,
    the writer queues it again after them (``deferred``), so that a ``verify()`` after
    ``flush()`` sees the declarations.
    """

    __slots__ = ("deferred", "done", "failed_at")

    def __init__(self) -> None:
        self.done = False
        self.failed_at = 0
        self.deferred = False


class _Stop:
    """Tells the writer to drain what is queued and end."""

    __slots__ = ()


_STOP = _Stop()


class AuditWriter:
    """Drains an :class:`AuditQueue` into a :class:`BatchSink` on one daemon thread."""

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
        # With an identity, the writer accounts for itself in the chain (accounting.py):
        # drops and spooled rows are declared as they happen, writer.closed at the end.
        self._identity = identity
        self._declared_dropped = 0
        self._system_taken = 0  # system rows taken from the queue so far
        self._sink = sink
        self._batch_size = batch_size
        self._retry = retry
        self._is_transient = is_transient
        self._describe = describe
        self._exit_timeout_s = exit_timeout_s
        self._spool = spool
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._state = threading.Condition()  # guards _finished and barrier releases
        self._finished = False
        # ``failed`` when barriers were last released: failures up to there were reported.
        self._failed_released = 0
        self._stop_deadline = float("inf")
        self._interrupt = threading.Event()  # cuts a retry backoff short when stop() is called
        # The batch being written, the writer_seqs of its rows already counted (written
        # or given up), and the flushes waiting on it: what a failure must settle.
        self._in_hand: Sequence[EntryRow] = ()
        self._settled: set[int | None] = set()
        self._barriers_in_hand: list[_Barrier] = []
        self._stopping = False  # the stop message was taken
        self._account_closed = False  # writer.closed was queued
        self._failures_in_row = 0
        # writer.spooled declarations still to queue: (writer_seqs, spool or None, error).
        self._undeclared: list[tuple[list[int], str | None, str]] = []
        # Counters, written by the writer thread only.
        self.written = 0
        self.failed = 0
        self.spooled = 0
        self.retried = 0
        self.batches = 0

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
        with self._state:
            # Not self.failed: rows queued before this call may have failed already,
            # before this line, and this flush must report them.
            failed_before = self._failed_released
        barrier = _Barrier()
        self._queue.put_control(barrier)
        with self._state:
            self._state.wait_for(lambda: barrier.done or self._finished, _nonnegative(timeout))
        return barrier.done and barrier.failed_at == failed_before

    def stop(self, timeout: float | None) -> bool:
        """Drain what is queued, then end the thread; True when it ended within ``timeout``.

        Retries of a failing batch are cut short at the deadline; what is left
        then is counted as failed and logged by the writer.
        """
        if self.on_writer_thread():
            _log.error("audit_stop_on_writer_thread", hint="the writer cannot join itself")
            self._queue.put_control(_STOP)
            return False
        if self._thread.is_alive():
            limit = _nonnegative(timeout)
            if limit is not None:
                self._stop_deadline = self._clock() + limit
            self._queue.put_control(_STOP)
            self._interrupt.set()
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
        unwritten = self._unsettled()
        _log.error(
            "audit_exit_incomplete",
            reason=reason,
            in_hand=_callers(unwritten),
            queue_depth=self._queue.entries_waiting(),
            hint="entries not committed by the deadline are spooled",
        )
        if unwritten:  # writer.opened alone, say, is spooled too
            self._give_up(unwritten, reason)
        self.fail_orphans(reason)
        # The closing account goes to the spool too: once replayed, the trail shows a
        # writer that closed with everything it accepted, not one that was killed.
        self._close_account()
        self.fail_orphans(reason)

    def _unsettled(self) -> list[EntryRow]:
        """The rows of the batch in hand not yet counted as written or failed."""
        with self._state:
            return [row for row in self._in_hand if row[8] not in self._settled]

    def fail_orphans(self, reason: str = "the writer thread is not running") -> None:
        """Take the entries still waiting in the queue, count them as failed and spool them.

        For rows no writer will take: after the thread ended, or when it is stuck
        past the close deadline.
        """
        orphans: list[EntryRow] = []
        controls: list[object] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if type(item) is EntryRow or type(item) is SystemRow:
                orphans.append(item)
            else:
                controls.append(item)
        if self._thread.is_alive():  # a stuck writer that recovers still sees its stop and flushes
            for message in controls:
                self._queue.put_control(message)
        if orphans:
            try:
                self._give_up(orphans, reason)
            except Exception:  # the spool, or the log, failed: still counted
                self._count_lost(orphans, reason)

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
            self._queue.refuse(f"the audit writer failed and could not recover: {_text(exc)}")
            _log.critical("audit_writer_crashed", error=_text(exc), exc_info=True)
            self.fail_orphans("the writer thread crashed")
        finally:
            with self._state:
                self._finished = True
                self._state.notify_all()

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

    def _recover(self, exc: BaseException) -> bool:
        """After ``exc`` escaped a step: settle the batch in hand; False when giving up.

        The rows of the batch not yet counted are spooled (committed ones were counted
        when committed), the flushes waiting on it are released, and the loop resumes.
        """
        self._failures_in_row += 1
        reason = f"the audit writer failed: {_text(exc)}"
        rows = self._unsettled()
        _log.critical(
            "audit_writer_failed",
            error=_text(exc),
            in_hand=_callers(rows),
            failures_in_row=self._failures_in_row,
            exc_info=exc,
        )
        if rows:
            try:
                self._give_up(rows, reason)
            except BaseException:  # even the spool or the log failed
                self._count_lost(rows, reason)
        self._in_hand = ()
        self._release(self._barriers_in_hand)
        self._barriers_in_hand = []
        if self._failures_in_row < MAX_FAILURES_IN_ROW:
            _log.warning("audit_writer_resumed", after=_text(exc))
            return True
        self._queue.refuse(
            f"the audit writer gave up after {self._failures_in_row} failures in a row;"
            f" the last: {_text(exc)}"
        )
        _log.critical("audit_writer_gave_up", failures_in_row=self._failures_in_row)
        if not self._account_closed:  # to the spool with what is queued: a replay brings it
            try:
                self._close_account()
                self._account_closed = True
            except Exception as close_error:
                _log.critical("audit_writer_close_failed", error=_text(close_error))
        self.fail_orphans("the writer thread gave up")
        return False

    def _drain_rest(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._drain_once(item)

    def _drain_once(self, item: object) -> None:
        """Write ``item`` and whatever else is queued, up to a batch (the stop message noted)."""
        batch: list[EntryRow] = []
        barriers: list[_Barrier] = []
        with self._state:
            self._in_hand, self._settled = batch, set()
        self._barriers_in_hand = barriers
        while True:
            if type(item) is EntryRow:
                batch.append(item)
            elif type(item) is SystemRow:
                batch.append(item)
                self._system_taken += 1
            elif type(item) is _Barrier:
                barriers.append(item)
                break  # rows queued after a flush barrier must not count towards it
            elif item is _STOP:
                self._stopping = True
            if len(batch) >= self._batch_size:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        if batch:
            self._write(batch)
        self._in_hand = ()
        if self._identity is not None:
            if self._queue.rejected > self._declared_dropped:
                self._declare_dropped()
            self._declare_spooled()
        if barriers and self._queue.system_put > self._system_taken:
            # System rows are queued behind the barriers: writer.dropped or writer.spooled
            # about the rows before them. Release the barriers after those (once).
            for barrier in [b for b in barriers if not b.deferred]:
                barrier.deferred = True
                barrier.failed_at = self.failed  # the failures this flush reports
                self._queue.put_control(barrier)
                barriers.remove(barrier)
        self._release(barriers)
        self._barriers_in_hand = []

    def _release(self, barriers: list[_Barrier]) -> None:
        """Release ``barriers``: their flushes return, reporting the failures up to now."""
        if not barriers:
            return
        with self._state:
            for barrier in barriers:
                if not barrier.deferred:
                    barrier.failed_at = self.failed
                barrier.done = True
            self._failed_released = max(
                self._failed_released, *(barrier.failed_at for barrier in barriers)
            )
            self._state.notify_all()

    def _declare_dropped(self) -> None:
        """Queue a ``writer.dropped`` row for the entries refused since the last one."""
        assert self._identity is not None
        total = self._queue.rejected
        self._queue.put_system(self._identity.dropped(total - self._declared_dropped, total))
        self._declared_dropped = total

    def _close_account(self) -> None:
        """Queue what is left to declare and ``writer.closed``; the drain writes them."""
        if self._identity is None:
            return
        if self._queue.rejected > self._declared_dropped:
            self._declare_dropped()
        self._declare_spooled()
        self._queue.put_system(
            self._identity.closed(
                last_writer_seq=self._queue.last_writer_seq,
                recorded=self._queue.entries_put,
                written=self.written,
                failed=self.failed,
                dropped=self._queue.rejected,
            )
        )

    def _write(self, batch: list[EntryRow]) -> None:
        failures: list[tuple[EntryRow, BaseException]] = []
        self._write_or_split(batch, failures)
        if failures:
            first_error = failures[0][1]
            self._give_up([row for row, _ in failures], self._describe(first_error))

    def _give_up(self, rows: Sequence[EntryRow], error: str) -> None:
        """Count ``rows`` as failed, keep them in the spool if there is one, and log it.

        Rows already counted (committed, or given up before) are skipped. System rows
        go to the spool too, but are not counted: the stats count the caller's
        entries. On the running writer, the caller's rows given up are then declared
        in the chain with a ``writer.spooled`` row (``spool`` null: not in the spool).
        """
        with self._state:
            rows = [row for row in rows if row[8] not in self._settled]
        if not rows:
            return
        kept: Sequence[EntryRow] = ()
        lost: Sequence[EntryRow] = rows
        spooled_to: str | None = None
        if self._spool is not None:
            try:
                unencodable = self._spool.append(rows, error)
            except Exception as exc:  # an OSError, or anything else: the rows are not kept
                _log.critical(
                    "audit_spool_failed",
                    spool=str(self._spool.path),
                    count=_callers(rows),
                    error=_text(exc),
                )
            else:
                spooled_to = str(self._spool.path)
                left_out = {row[8] for row, _ in unencodable}
                kept = [row for row in rows if row[8] not in left_out]
                lost = [row for row, _ in unencodable]
                for row, reason in unencodable:
                    _log.critical("audit_spool_refused_entry", event_id=row[0], error=reason)
        self._count_failed(kept, spooled_to, error, spooled=True)
        total_failed = self._count_failed(lost, None, error, spooled=False)
        _log.error(
            "audit_entries_failed",
            count=_callers(rows),
            error=error,
            spool=spooled_to,
            lost=_callers(lost),
            event_ids=[row[0] for row in rows[:10]],
            total_failed=total_failed,
            hint=(
                f"replay them with: cleveragents-audit replay {spooled_to}"
                if spooled_to
                else "these entries are lost"
            ),
        )
        if self._identity is not None and self.on_writer_thread():
            self._declare_spooled()

    def _count_lost(self, rows: Sequence[EntryRow], error: str) -> None:
        """The last resort of :meth:`_recover`: count ``rows`` as failed, declared lost."""
        with self._state:
            rows = [row for row in rows if row[8] not in self._settled]
        self._count_failed(rows, None, error, spooled=False)

    def _count_failed(
        self, rows: Sequence[EntryRow], spool: str | None, error: str, *, spooled: bool
    ) -> int:
        """Count ``rows`` as failed (and spooled), settled, to be declared; the total failed."""
        count = _callers(rows)
        with self._state:
            self._settled.update(row[8] for row in rows)
            self.failed += count
            if spooled:
                self.spooled += count
            total = self.failed
        if count and self._identity is not None and self.on_writer_thread():
            writer_seqs = [row[8] for row in rows if type(row) is EntryRow and row[8] is not None]
            self._undeclared.append((writer_seqs, spool, error))
        return total

    def _declare_spooled(self) -> None:
        """Queue a ``writer.spooled`` row for each group of rows given up and not declared.

        A group stays listed until its row is queued: a declaration that fails is
        made again after the next batch, or at close.
        """
        assert self._identity is not None
        while self._undeclared:
            writer_seqs, spool, error = self._undeclared[0]
            self._queue.put_system(self._identity.spooled(writer_seqs, spool=spool, error=error))
            del self._undeclared[0]

    def _write_or_split(
        self, batch: list[EntryRow], failures: list[tuple[EntryRow, BaseException]]
    ) -> None:
        """Write ``batch`` with retries; on a lasting error, halve it to isolate bad rows."""
        error = self._write_with_retry(batch)
        if error is None:
            return
        if len(batch) == 1 or self._is_transient(error):
            # A single bad row, or a transient error that outlasted its deadline:
            # splitting further cannot help.
            failures.extend((row, error) for row in batch)
            return
        middle = len(batch) // 2
        self._write_or_split(batch[:middle], failures)
        self._write_or_split(batch[middle:], failures)

    def _write_with_retry(self, batch: list[EntryRow]) -> BaseException | None:
        """Write ``batch`` in one transaction; return the error that finally stopped it."""
        give_up_at = self._clock() + self._retry.deadline_s
        attempt = 0
        while True:
            try:
                self._sink.write_batch(batch)
            except BaseException as exc:  # any error of the sink fails the rows
                if not self._is_transient(exc):
                    return exc
                now = self._clock()
                deadline = min(give_up_at, self._stop_deadline)
                if now >= deadline:
                    return exc
                delay = min(self._retry.delay_s(attempt), deadline - now)
                attempt += 1
                self.retried += 1
                _log.warning(
                    "audit_write_retry",
                    attempt=attempt,
                    rows=len(batch),
                    delay_s=round(delay, 3),
                    error=self._describe(exc),
                )
                if self._interrupt.wait(delay):
                    # stop() cut this pause short; later pauses honour the policy again
                    # (capped by the stop deadline) instead of retrying in a tight loop.
                    self._interrupt.clear()
                continue
            with self._state:  # a row given up meanwhile (abandon() at exit) stays counted there
                committed = [row for row in batch if row[8] not in self._settled]
                self._settled.update(row[8] for row in committed)
                callers = _callers(committed)
                self.written += callers
            if callers:  # like written, batches count the caller's: not writer.opened alone
                self.batches += 1
            return None


def _callers(rows: Sequence[EntryRow]) -> int:
    """How many of ``rows`` are the caller's (not a :class:`SystemRow`)."""
    return sum(type(row) is EntryRow for row in rows)


def _text(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, never raising (a broken ``__str__`` included)."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


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
