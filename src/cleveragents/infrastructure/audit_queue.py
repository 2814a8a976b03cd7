"""The bounded queue between ``record()`` and the writer thread, and its overflow strategy.

The only thing the caller's side and the writer share: ``record()`` puts rows, the
writer takes them (see :mod:`cleveragents.infrastructure.writer`). What a put does
when the queue is full (wait for room, at most so long, or refuse) is the queue's
:class:`Overflow` strategy. Waiting producers are woken, never polled: a thread on
the queue's condition, an asyncio task on a future of its loop that the queue
resolves (``call_soon_threadsafe``) when room appears, and all of them when the
queue is closed, refuses entries, or loses its writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

from cleveragents.domain.errors import (
    AuditQueueFullError,
    AuditServiceClosedError,
    AuditWriterError,
)
from cleveragents.domain.rows import EntryRow, PendingRow, SystemRow, with_writer_seq

__all__ = ["AuditQueue", "Overflow"]

_log = structlog.get_logger("cleveragents.audit")

# What a put that found the queue full comes to (see AuditQueue._admit).
_ADMITTED = "admitted"
_FULL = "full"
_REFUSED = "refused"
_CLOSED = "closed"
_NO_WRITER = "no writer"
_TIMED_OUT = "timed out"

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]


@dataclass(frozen=True, slots=True)
class Overflow:
    """What a put that finds the queue full does: wait for room, or refuse the entry at once.

    ``block``: wait, at most ``timeout_s`` seconds (None: for as long as it takes).
    """

    block: bool = True
    timeout_s: float | None = None


class AuditQueue:
    """The bounded queue between ``record()`` and the writer.

    Entries (row tuples) count against ``maxsize``; control messages (flush
    barriers, stop) enter through :meth:`put_control` and ignore the bound, so a
    full queue can never keep a flush or a close out. The items travel through a
    C-level :class:`queue.SimpleQueue`; the bound and the counters live under one
    small lock, so an uncontended ``put_nowait`` costs a lock round trip and an
    append, and waking the writer costs the caller nothing in Python.
    """

    def __init__(self, maxsize: int, overflow: Overflow = Overflow()) -> None:
        self.maxsize = maxsize
        self.overflow = overflow
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
        self._blocked = 0  # producer threads waiting for room
        self._async_waiters: deque[_Waiter] = deque()  # producer tasks waiting for room
        self.refusal: str | None = None  # set when the writer gave up: why
        self._closed = False  # the service closed: waits for room end
        self._no_writer = False  # no writer will make room: waits end, overflows are refused

    def put_nowait(self, row: PendingRow) -> None:
        """Queue ``row`` with the next ``writer_seq``, or raise :class:`queue.Full` at once.

        Raises:
            AuditWriterError: the writer gave up (:meth:`refuse`).
        """
        with self._lock:
            if self.refusal is not None:
                raise AuditWriterError(self.refusal)
            if self._entries >= self.maxsize:
                raise queue.Full
            self._enqueue(row, EntryRow)

    def put_when_full(self, row: PendingRow, *, from_writer: bool = False) -> None:
        """Apply the overflow strategy to ``row``, which found the queue full.

        ``from_writer``: the caller is the writer thread, which cannot wait for room
        it must make itself.

        Raises:
            AuditQueueFullError: refused (counted in ``rejected``): the strategy says
                not to wait (longer), or no writer will make room.
            AuditServiceClosedError: :meth:`close` was called while waiting.
            AuditWriterError: the writer gave up (:meth:`refuse`).
        """
        self._reject_unless_blocking(row)
        if from_writer:
            self._reject(row, "the audit queue is full and record() runs on the writer thread")
        deadline = _deadline(self.overflow.timeout_s)
        with self._room:
            self._blocked += 1
            try:
                while (outcome := self._admit(row, deadline)) is _FULL:
                    self._room.wait(_left(deadline))
            except BaseException:  # KeyboardInterrupt, SystemExit: a wake-up taken is passed on
                if self._entries < self.maxsize:
                    self._room.notify()
                    self._wake_one()
                raise
            finally:
                self._blocked -= 1
        self._settle(row, outcome, "record()")

    async def aput_when_full(self, row: PendingRow) -> None:
        """:meth:`put_when_full` for a task: waits on a future of its loop, holding no thread.

        A task cancelled while it waits queues nothing, and its future is dropped.
        """
        self._reject_unless_blocking(row)
        loop = asyncio.get_running_loop()
        deadline = _deadline(self.overflow.timeout_s)
        while True:
            with self._lock:
                outcome = self._admit(row, deadline)
                if outcome is _FULL:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._async_waiters.append((loop, waiter))
            if outcome is not _FULL:
                break
            await self._await_room(waiter, _left(deadline))
        self._settle(row, outcome, "arecord()")

    async def _await_room(self, waiter: asyncio.Future[None], timeout_s: float | None) -> None:
        """Wait for ``waiter`` to be resolved (room, or an end to waiting), or ``timeout_s``."""
        try:
            if timeout_s is None:
                await waiter
            else:  # not wait_for: on 3.11 it swallows a cancel that races the wake-up
                async with asyncio.timeout(timeout_s):
                    await waiter
        except TimeoutError:
            self._forget(waiter)  # the caller looks again and finds the deadline passed
        except BaseException:
            self._forget(waiter)
            raise

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter that stopped waiting; a wake-up it was handed goes to the next one."""
        with self._lock:
            for index, (_, queued) in enumerate(self._async_waiters):
                if queued is waiter:
                    del self._async_waiters[index]
                    return
            self._wake_one()

    def _admit(self, row: PendingRow, deadline: float | None) -> str:
        """With the lock held: queue ``row`` if there is room; else why not (or ``_FULL``)."""
        if self.refusal is not None:
            return _REFUSED
        if self._entries < self.maxsize:
            self._enqueue(row, EntryRow)
            return _ADMITTED
        if self._closed:
            return _CLOSED
        if self._no_writer:
            return _NO_WRITER
        if deadline is not None and time.monotonic() >= deadline:
            return _TIMED_OUT
        return _FULL

    def _settle(self, row: PendingRow, outcome: str, caller: str) -> None:
        """Return if ``row`` was admitted; else raise what ``outcome`` says."""
        if outcome is _ADMITTED:
            return
        if outcome is _REFUSED:
            raise AuditWriterError(self.refusal)
        if outcome is _CLOSED:
            raise AuditServiceClosedError(
                f"the audit service was closed while {caller} waited for room"
            )
        if outcome is _NO_WRITER:
            self._reject(row, "the audit queue is full and its writer is not running")
        self._reject(row, f"the audit queue stayed full for {self.overflow.timeout_s} s")

    def _reject_unless_blocking(self, row: PendingRow) -> None:
        if not self.overflow.block:
            self._reject(row, "the audit queue is full")

    def _reject(self, row: PendingRow, reason: str) -> None:
        """Count ``row`` as rejected (the writer declares it: writer.dropped) and raise."""
        rejected = self.note_rejected()
        _log.warning(
            "audit_entry_rejected",
            reason=reason,
            event_type=row.event_type,
            event_id=row.event_id,
            total_rejected=rejected,
        )
        raise AuditQueueFullError(
            f"{reason} ({self.maxsize} entries waiting);"
            f" the {row.event_type} entry was not recorded"
        )

    def _enqueue(self, row: PendingRow, kind: type[EntryRow]) -> None:
        """With the lock held: queue ``row`` as a ``kind`` row with the next ``writer_seq``.

        Signal-safe: a signal handler (SIGTERM's ``SystemExit``) runs only when a call
        returns, so the row is built first and the counters change only in plain
        stores right before the one call that queues it. An exception raised here
        leaves either nothing changed or the row queued, never a ``writer_seq``
        taken and not queued (a gap ``verify`` would report).
        """
        writer_seq = self.last_writer_seq + 1
        item = with_writer_seq(row, writer_seq, kind)
        if kind is EntryRow:
            self._entries += 1
            self.entries_put += 1
        else:
            self.system_put += 1
        self.last_writer_seq = writer_seq
        self._items.put(item)

    def put_system(self, row: PendingRow) -> None:
        """Queue a system row with the next ``writer_seq``; it takes no room and is not counted."""
        with self._lock:
            self._enqueue(row, SystemRow)

    def refuse(self, reason: str) -> None:
        """From now on, refuse entries with :class:`AuditWriterError` saying ``reason``."""
        with self._lock:
            self.refusal = reason
            self._wake_all()

    def close(self) -> None:
        """The service is closing: waits for room end with :class:`AuditServiceClosedError`.

        ``put_nowait`` still queues while there is room (a record() racing the close).
        """
        with self._lock:
            self._closed = True
            self._wake_all()

    def writer_ended(self) -> None:
        """No writer will make room any more: waits for room end, refused (``rejected``)."""
        with self._lock:
            self._no_writer = True
            self._wake_all()

    def waiting(self) -> int:
        """Producers (threads and tasks) waiting for room now."""
        with self._lock:
            return self._blocked + len(self._async_waiters)

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
        if type(item) is EntryRow:
            with self._lock:
                self._entries -= 1
                if self._blocked:
                    self._room.notify()
                if self._async_waiters:
                    self._wake_one()
        return item

    def _wake_one(self) -> None:
        """With the lock held: resolve the first waiting task's future (on its loop)."""
        while self._async_waiters:
            loop, waiter = self._async_waiters.popleft()
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits there
                loop.call_soon_threadsafe(_resolve, waiter)
                return

    def _wake_all(self) -> None:
        """With the lock held: wake every producer waiting for room, to look again."""
        self._room.notify_all()
        while self._async_waiters:
            loop, waiter = self._async_waiters.popleft()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    """On the waiter's loop: let its task look again (unless it stopped waiting)."""
    if not waiter.done():
        waiter.set_result(None)


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def _left(deadline: float | None) -> float | None:
    """Seconds to ``deadline`` (None: no deadline); never negative."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
