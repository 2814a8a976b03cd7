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
- At interpreter exit, every running writer is stopped with its close timeout,
  so a process that ends without ``close()`` still persists what it recorded.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.exit_hooks import run_at_exit
from cleveragents.infrastructure.persistence.rows import EntryRow, SystemRow
from cleveragents.infrastructure.spool import Spool

__all__ = ["AuditQueue", "AuditWriter", "BatchSink", "RetryPolicy"]

_log = structlog.get_logger("cleveragents.audit.writer")

#: A row before the queue gives it its ``writer_seq``: the first 8 fields of an EntryRow.
PartialRow = tuple[Any, ...]


class BatchSink(Protocol):
    """Where the writer puts its batches: one transaction per call, raising on failure."""

    def write_batch(self, rows: Sequence[EntryRow]) -> None: ...


class AuditQueue:
    """The bounded queue between ``record()`` and the writer.

    Entries (row tuples) count against ``maxsize``; control messages (flush
    barriers, stop) enter through :meth:`put_control` and ignore the bound, so a
    full queue can never keep a flush or a close out. The items travel through a
    C-level :class:`queue.SimpleQueue`; the bound and the counters live under one
    small lock, so an uncontended ``put_nowait`` costs a lock round trip and an
    append, and waking the writer costs the caller nothing in Python.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.entries_put = 0  # caller entries ever accepted
        self.rejected = 0  # caller entries refused on overflow
        # The writer_seq of the last row accepted (caller entries and system rows). It
        # is assigned and the row queued under one lock, so queue order is its order.
        self.last_writer_seq = 0
        self.system_put = 0  # system rows ever queued
        self._entries = 0  # entries waiting
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._blocked = 0  # producers waiting for room

    def put_nowait(self, row: PartialRow) -> None:
        """Queue ``row`` with the next ``writer_seq``, or raise :class:`queue.Full` at once."""
        with self._lock:
            if self._entries >= self.maxsize:
                raise queue.Full
            self._entries += 1
            self.entries_put += 1
            self.last_writer_seq += 1
            self._items.put((*row, self.last_writer_seq))

    def put(self, row: PartialRow, timeout: float | None = None) -> None:
        """Queue ``row``, waiting up to ``timeout`` seconds for room; else :class:`queue.Full`."""
        with self._room:
            self._blocked += 1
            try:
                if not self._room.wait_for(lambda: self._entries < self.maxsize, timeout):
                    raise queue.Full
            finally:
                self._blocked -= 1
            self._entries += 1
            self.entries_put += 1
            self.last_writer_seq += 1
            self._items.put((*row, self.last_writer_seq))

    def put_system(self, row: PartialRow) -> None:
        """Queue a system row with the next ``writer_seq``; it takes no room and is not counted."""
        with self._lock:
            self.last_writer_seq += 1
            self.system_put += 1
            self._items.put(SystemRow((*row, self.last_writer_seq)))

    def note_rejected(self) -> int:
        """Count one caller entry refused on overflow; the total."""
        with self._lock:
            self.rejected += 1
            return self.rejected

    def put_control(self, message: object) -> None:
        """Queue ``message`` even when the queue is full."""
        self._items.put(message)

    def get(self) -> Any:
        """The next item, waiting for one."""
        return self._taken(self._items.get())

    def get_nowait(self) -> Any:
        """The next item, or :class:`queue.Empty`."""
        return self._taken(self._items.get_nowait())

    def qsize(self) -> int:
        """Items waiting, control messages included."""
        return self._items.qsize()

    def entries_waiting(self) -> int:
        """Entries waiting, control messages not counted."""
        return self._entries

    def full(self) -> bool:
        """True when ``put_nowait`` would raise :class:`queue.Full`."""
        return self._entries >= self.maxsize

    def _taken(self, item: Any) -> Any:
        if type(item) is tuple:
            with self._lock:
                self._entries -= 1
                if self._blocked:
                    self._room.notify()
        return item


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
        # The batch being written and ``written`` before it: what a crash loses.
        self._in_hand: Sequence[EntryRow] = ()
        self._written_before = 0
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

        Which rows of the batch in hand get committed later is unknown: all of them
        are spooled (a replay skips the stored ones), counted once as failed.
        """
        _running.discard(self)
        unwritten = self._unwritten_in_hand()
        _log.error(
            "audit_exit_incomplete",
            reason=reason,
            in_hand=unwritten,
            queue_depth=self._queue.entries_waiting(),
            hint="entries not committed by the deadline are spooled",
        )
        if unwritten > 0 or _holds_system_rows(self._in_hand):  # writer.opened alone, say
            self._give_up(self._in_hand, reason, count=unwritten)
        self.fail_orphans(reason)
        # The closing account goes to the spool too: once replayed, the trail shows a
        # writer that closed with everything it accepted, not one that was killed.
        self._close_account()
        self.fail_orphans(reason)

    def _unwritten_in_hand(self) -> int:
        """Rows of the batch being written that are not committed (halves may be)."""
        return _callers(self._in_hand) - (self.written - self._written_before)

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
            if type(item) is tuple or type(item) is SystemRow:
                orphans.append(item)
            else:
                controls.append(item)
        if self._thread.is_alive():  # a stuck writer that recovers still sees its stop and flushes
            for message in controls:
                self._queue.put_control(message)
        if orphans:
            self._give_up(orphans, reason)

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
            stopping = False
            while not stopping:
                stopping = self._drain_once(self._queue.get())
            # Rows that raced in after the stop message are written too, then the
            # writer's closing account.
            self._drain_rest()
            self._close_account()
            self._drain_rest()
        except BaseException:
            # The rows of the batch in hand that were not written are lost with the thread.
            lost = self._unwritten_in_hand()
            _log.critical(
                "audit_writer_crashed",
                in_hand=lost,
                queue_depth=self._queue.entries_waiting(),
                exc_info=True,
            )
            if lost or _holds_system_rows(self._in_hand):
                # Which rows of the batch were committed is unknown: spool them all;
                # a replay skips the ones that are stored already.
                self._give_up(self._in_hand, "the writer thread crashed", count=lost)
            raise
        finally:
            with self._state:
                self._finished = True
                self._state.notify_all()

    def _drain_rest(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._drain_once(item)

    def _drain_once(self, item: object) -> bool:
        """Write ``item`` and whatever else is queued, up to a batch; True on stop."""
        batch: list[EntryRow] = []
        barriers: list[_Barrier] = []
        stop = False
        while True:
            if type(item) is tuple:
                batch.append(item)
            elif type(item) is SystemRow:
                batch.append(item)
                self._system_taken += 1
            elif type(item) is _Barrier:
                barriers.append(item)
                break  # rows queued after a flush barrier must not count towards it
            elif item is _STOP:
                stop = True
            if len(batch) >= self._batch_size:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        if batch:
            self._write(batch)
        if self._identity is not None and self._queue.rejected > self._declared_dropped:
            self._declare_dropped()
        if barriers and self._queue.system_put > self._system_taken:
            # System rows are queued behind the barriers: writer.dropped or writer.spooled
            # about the rows before them. Release the barriers after those (once).
            for barrier in [b for b in barriers if not b.deferred]:
                barrier.deferred = True
                barrier.failed_at = self.failed  # the failures this flush reports
                self._queue.put_control(barrier)
                barriers.remove(barrier)
        if barriers:
            with self._state:
                for barrier in barriers:
                    if not barrier.deferred:
                        barrier.failed_at = self.failed
                    barrier.done = True
                self._failed_released = max(
                    self._failed_released, *(barrier.failed_at for barrier in barriers)
                )
                self._state.notify_all()
        return stop

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
        self._in_hand, self._written_before = batch, self.written
        self._write_or_split(batch, failures)
        self._in_hand = ()
        if failures:
            first_error = failures[0][1]
            self._give_up([row for row, _ in failures], self._describe(first_error))

    def _give_up(self, rows: Sequence[EntryRow], error: str, *, count: int | None = None) -> None:
        """Count ``rows`` as failed, keep them in the spool if there is one, and log it.

        System rows go to the spool too, but are not counted: the stats count the
        caller's entries. On the running writer, the caller's rows given up are then
        declared in the chain with a ``writer.spooled`` row.
        """
        if count is None:
            count = _callers(rows)
        spooled_to: str | None = None
        if self._spool is not None:
            try:
                self._spool.append(rows, error)
                spooled_to = str(self._spool.path)
            except OSError as exc:
                _log.critical(
                    "audit_spool_failed",
                    spool=str(self._spool.path),
                    count=count,
                    error=f"{type(exc).__name__}: {exc}",
                )
        with self._state:
            self.failed += count
            if spooled_to is not None:
                self.spooled += count
            total_failed = self.failed
        if self._identity is not None and self.on_writer_thread():
            writer_seqs = [row[8] for row in rows if type(row) is tuple and row[8] is not None]
            if writer_seqs:
                self._queue.put_system(
                    self._identity.spooled(writer_seqs, spool=spooled_to, error=error)
                )
        _log.error(
            "audit_entries_failed",
            count=count,
            error=error,
            spool=spooled_to,
            event_ids=[row[0] for row in rows[:10]],
            total_failed=total_failed,
            hint=(
                f"replay them with: cleveragents-audit replay {spooled_to}"
                if spooled_to
                else "these entries are lost"
            ),
        )

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
            except Exception as exc:
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
            callers = _callers(batch)
            self.written += callers
            if callers:  # like written, batches count the caller's: not writer.opened alone
                self.batches += 1
            return None


def _callers(rows: Sequence[EntryRow]) -> int:
    """How many of ``rows`` are the caller's (not a :class:`SystemRow`)."""
    return sum(type(row) is tuple for row in rows)


def _holds_system_rows(rows: Sequence[EntryRow]) -> bool:
    """True when ``rows`` hold a :class:`SystemRow` (spooled like the caller's, not counted)."""
    return len(rows) > _callers(rows)


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
