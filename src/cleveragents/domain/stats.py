"""Counters that tell an operator what the audit service has done."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuditStats"]


@dataclass(frozen=True, slots=True)
class AuditStats:
    """A snapshot of the service's counters.

    ``enqueued`` entries accepted by ``record()``; ``written`` committed;
    ``failed`` not written to the database after retries (each also logged);
    ``spooled`` of those, kept in the dead-letter spool for replay; ``rejected`` refused
    by ``record()`` because the queue was full; ``retried`` transient errors that
    were retried; ``batches`` committed transactions; ``queue_depth`` entries
    waiting now; ``adapter_failed`` events a framework adapter (``cleveragents.integrations``)
    could not record (each also logged as ``audit_adapter_failed``).
    """

    enqueued: int
    written: int
    failed: int
    rejected: int
    retried: int
    batches: int
    queue_depth: int
    spooled: int = 0
    adapter_failed: int = 0
