"""The seam between :class:`AuditService` and the engine that records its entries.

The service checks and encodes an entry in the caller's thread, then hands the row
to its one :class:`Recorder`, as OpenTelemetry's tracer hands spans to its span
processor: a queued recorder (asynchronous mode: a queue and a writer thread, see
:mod:`.queued_recorder`) or a direct one (synchronous mode: INSERT + COMMIT per
record, see :mod:`.direct_recorder`).
"""

from __future__ import annotations

from typing import Protocol

from cleveragents.domain.rows import PendingRow
from cleveragents.domain.stats import AuditStats

__all__ = ["Recorder"]


class Recorder(Protocol):
    """Records rows checked by the service; owns the writing, its accounting and its close."""

    #: True when rows are queued for a writer thread (``record`` returns ``PENDING_ID``).
    is_async: bool
    #: This writer's id in the chain's accounting (a forked child gets its own).
    writer_id: str
    #: True once :meth:`close` was called (also by the process's exit).
    closed: bool

    def record(self, row: PendingRow) -> int:
        """Record ``row``: its database id, or ``PENDING_ID`` when queued.

        Raises:
            AuditQueueFullError, AuditServiceClosedError, AuditWriterError: as
                documented on ``AuditService.record``.
        """
        ...

    async def arecord(self, row: PendingRow) -> int:
        """:meth:`record` without blocking the event loop."""
        ...

    def flush(self, timeout: float | None) -> bool:
        """Wait until every row recorded before the call is committed; False if not."""
        ...

    def close(self) -> None:
        """Write what is pending and the closing account, and let go. Idempotent."""
        ...

    def stats(self) -> AuditStats:
        """A snapshot of the counters."""
        ...

    def note_adapter_failure(self) -> int:
        """Count one event an adapter could not record; the total."""
        ...
