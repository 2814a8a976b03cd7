"""How the writer puts one batch into its sink: retried while the error is transient, split
when it lasts.

A transient error (a lock, a dropped connection) is retried with capped exponential
backoff until the batch's retry deadline, or the stop deadline when ``stop()`` set
one; ``stop()`` also cuts the pause under way short. Any other error splits the batch
(:func:`~cleveragents.infrastructure.bisection.bisect_failures`) to find the rows
that cannot be written, so the good ones commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.bisection import bisect_failures

__all__ = ["BatchSink", "RetryPolicy", "RetryingWrite"]

_log = structlog.get_logger("cleveragents.audit.writer")


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


class RetryingWrite:
    """Writes batches into a :class:`BatchSink` under a :class:`RetryPolicy`.

    Used by the writer thread only, except :meth:`stop_by` and :meth:`interrupt`,
    which ``stop()`` calls from another thread.
    """

    def __init__(
        self,
        sink: BatchSink,
        policy: RetryPolicy,
        *,
        is_transient: Callable[[BaseException], bool],
        describe: Callable[[BaseException], str],
        clock: Callable[[], float],
    ) -> None:
        self._sink = sink
        self._policy = policy
        self._is_transient = is_transient
        self._describe = describe
        self._clock = clock
        self._stop_deadline = float("inf")
        self._interrupt = threading.Event()  # cuts a retry backoff short when stop() is called
        self.retried = 0  # retries made, all batches together

    def stop_by(self, deadline: float) -> None:
        """No retry pause goes past ``deadline`` (on the clock): ``stop()`` has a timeout."""
        self._stop_deadline = deadline

    def interrupt(self) -> None:
        """End the retry pause under way now (``stop()`` was called)."""
        self._interrupt.set()

    def write_or_split(
        self, batch: Sequence[EntryRow], committed: Callable[[Sequence[EntryRow]], None]
    ) -> list[tuple[EntryRow, BaseException]]:
        """Write ``batch`` with retries; on a lasting error, halve it to isolate bad rows.

        ``committed`` is called with each part that commits; the rows that could not
        be written are returned with the error that kept each out.
        """

        def try_write(rows: Sequence[EntryRow]) -> BaseException | None:
            error = self.write(rows)
            if error is None:
                committed(rows)
            return error

        # A transient error that outlasted its deadline: splitting further cannot help.
        return bisect_failures(
            batch, try_write, can_split=lambda error: not self._is_transient(error)
        )

    def write(self, batch: Sequence[EntryRow]) -> BaseException | None:
        """Write ``batch`` in one transaction; return the error that finally stopped it."""
        give_up_at = self._clock() + self._policy.deadline_s
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
                delay = min(self._policy.delay_s(attempt), deadline - now)
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
            return None
