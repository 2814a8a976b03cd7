"""The control messages the writer takes from the queue: flush barriers, and the stop.

Control messages enter the queue through ``put_control`` and bypass its bound, so a
full queue cannot keep them out. A flush puts a :class:`Barrier` in the queue and
waits until the writer releases it, or the writer thread ends. The barrier reports
the ``failed`` count at its release, so that a flush returns False when a row queued
before it could not be written, unless an earlier flush released after that failure
could report it. :data:`STOP` tells the writer to drain what is queued and end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["STOP", "Barrier", "Flushes", "Stop"]


class Barrier:
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


class Stop:
    """Tells the writer to drain what is queued and end."""

    __slots__ = ()


#: The stop message (one is enough: it carries nothing).
STOP = Stop()


class Flushes:
    """The flushes waiting on one writer, and whether its thread has finished."""

    def __init__(self, state: threading.Condition, failed: Callable[[], int]) -> None:
        self._state = state  # the writer's lock: its counters change under it too
        self._failed = failed  # the writer's ``failed`` count, read under that lock
        self._finished = False
        # ``failed`` when barriers were last released: failures up to there were reported.
        self._failed_released = 0

    def failed_reported(self) -> int:
        """The failures the flushes released so far could report."""
        with self._state:
            return self._failed_released

    def wait(self, barrier: Barrier, timeout: float | None) -> bool:
        """Wait until ``barrier`` is released (True) or the thread ends or time runs out."""
        with self._state:
            self._state.wait_for(lambda: barrier.done or self._finished, timeout)
        return barrier.done

    def release(self, barriers: list[Barrier]) -> None:
        """Release ``barriers``: their flushes return, reporting the failures up to now."""
        if not barriers:
            return
        with self._state:
            for barrier in barriers:
                if not barrier.deferred:
                    barrier.failed_at = self._failed()
                barrier.done = True
            self._failed_released = max(
                self._failed_released, *(barrier.failed_at for barrier in barriers)
            )
            self._state.notify_all()

    def release_after_system_rows(
        self, barriers: list[Barrier], *, rows_behind: bool, requeue: Callable[[Barrier], None]
    ) -> None:
        """Release ``barriers``, or, when system rows are queued behind them, requeue them.

        Those rows are ``writer.dropped`` or ``writer.spooled`` about the rows before the
        barriers: a barrier is released after them, and deferred once only.
        """
        if rows_behind:
            for barrier in [b for b in barriers if not b.deferred]:
                barrier.deferred = True
                barrier.failed_at = self._failed()  # the failures this flush reports
                requeue(barrier)
                barriers.remove(barrier)
        self.release(barriers)

    def finish(self) -> None:
        """The writer thread has ended: no barrier will be released, every flush returns."""
        with self._state:
            self._finished = True
            self._state.notify_all()
