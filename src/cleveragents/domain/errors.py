"""The errors the audit service raises on purpose."""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuditQueueFullError",
    "AuditSchemaError",
    "AuditServiceClosedError",
    "AuditStorageError",
    "AuditWriterError",
]


class AuditError(Exception):
    """Base class of every error this library raises on purpose."""


class AuditServiceClosedError(AuditError, RuntimeError):
    """The service was closed; it records nothing more."""


class AuditQueueFullError(AuditError, RuntimeError):
    """The write-behind queue is full and the overflow policy says not to wait (longer)."""


class AuditStorageError(AuditError, RuntimeError):
    """The audit database cannot be used: a malformed or unreachable URL, a missing driver."""


class AuditSchemaError(AuditStorageError):
    """The audit database's schema is not the one this version uses (behind, unversioned, newer).

    The message says what to do, usually ``cleveragents-audit db upgrade``.
    """


class AuditWriterError(AuditError, RuntimeError):
    """The writer thread gave up after failing again and again; ``record()`` is refused.

    The message names the last failure. What was queued is spooled (or, when even the
    spool fails, counted as failed and logged); close the service and open a new one.
    """
