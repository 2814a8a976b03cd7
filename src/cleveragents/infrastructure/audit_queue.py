"""The bounded queue between ``record()`` and the writer thread.

The only thing the caller's side and the writer share: ``record()`` puts rows, the
writer takes them (see :mod:`cleveragents.infrastructure.writer`).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from cleveragents.domain.errors import AuditWriterError
from cleveragents.domain.rows import EntryRow, PendingRow, SystemRow, with_writer_seq

__all__ = ["AuditQueue"]


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
        self.refusal: str | None = None  # set when the writer gave up: why

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
            self._entries += 1
            self.entries_put += 1
            self.last_writer_seq += 1
            self._items.put(with_writer_seq(row, self.last_writer_seq))

    def put(self, row: PendingRow, timeout: float | None = None) -> None:
        """Queue ``row``, waiting up to ``timeout`` seconds for room; else :class:`queue.Full`."""
        with self._room:
            self._blocked += 1
            try:
                if not self._room.wait_for(
                    lambda: self._entries < self.maxsize or self.refusal is not None, timeout
                ):
                    raise queue.Full
            finally:
                self._blocked -= 1
            if self.refusal is not None:
                raise AuditWriterError(self.refusal)
            self._entries += 1
            self.entries_put += 1
            self.last_writer_seq += 1
            self._items.put(with_writer_seq(row, self.last_writer_seq))

    def put_system(self, row: PendingRow) -> None:
        """Queue a system row with the next ``writer_seq``; it takes no room and is not counted."""
        with self._lock:
            self.last_writer_seq += 1
            self.system_put += 1
            self._items.put(with_writer_seq(row, self.last_writer_seq, SystemRow))

    def refuse(self, reason: str) -> None:
        """From now on, refuse entries with :class:`AuditWriterError` saying ``reason``."""
        with self._lock:
            self.refusal = reason
            self._room.notify_all()

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
        return item
