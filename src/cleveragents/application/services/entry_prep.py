"""The caller's side of ``record()``: check and encode one entry, in the caller's thread.

:class:`EntryPreparer` turns the arguments of ``record()`` into the
:class:`~cleveragents.domain.rows.PendingRow` the queue (or the synchronous write)
takes, and the :class:`~cleveragents.domain.entry.AuditLogEntry` ``record()``
returns. It does no I/O. Everything that can be wrong with an entry is raised
here, at the call that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cleveragents.config.settings import Settings
from cleveragents.domain.details import encode_details
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import AuditEventType, coerce_event_type
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.limits import check_text, texts_fit
from cleveragents.domain.redaction import Redactor
from cleveragents.domain.rows import PendingRow
from cleveragents.infrastructure.trace_context import with_current_span

__all__ = ["EntryPreparer", "Prepared", "entry_of"]

#: What :meth:`EntryPreparer.prepare` returns: the kind, the row, the masked details.
Prepared = tuple[AuditEventType, PendingRow, Mapping[str, Any] | None]


class EntryPreparer:
    """Checks, masks and encodes entries as ``settings`` say (redaction, trace context)."""

    __slots__ = ("_otel_context", "_redactor")

    def __init__(self, settings: Settings) -> None:
        self._otel_context = settings.audit_otel_context
        self._redactor = (
            Redactor(settings.audit_redact_keys, settings.audit_redact_patterns)
            if settings.audit_redact
            else None
        )

    def prepare(
        self,
        event_type: AuditEventType | str,
        actor: str | None,
        resource: str | None,
        details: Mapping[str, Any] | None,
        correlation_id: str | None,
        writer_id: str,
    ) -> Prepared:
        """Check and encode one entry: its kind, its row and its masked details.

        Raises:
            ValueError, TypeError: as documented on ``AuditService.record``.
        """
        kind = coerce_event_type(event_type)
        if not texts_fit(actor, resource, correlation_id):  # limits.py: type, size, NUL, UTF-8
            check_text("actor", actor)
            check_text("resource", resource)
            check_text("correlation_id", correlation_id)
        details = with_current_span(details) if self._otel_context else details
        if self._redactor is not None:  # a masked copy; the caller's object is left alone
            try:
                details = self._redactor.redact(details)
            except RecursionError:
                encode_details(details)  # names a depth beyond MAX_DETAILS_DEPTH; else re-raise
                raise
        row = PendingRow(  # the queue (or the synchronous write) adds writer_seq
            new_event_id(),
            kind.value,
            actor,
            resource,
            encode_details(details),
            correlation_id,
            datetime.now(UTC),
            writer_id,
        )
        return kind, row, details


def entry_of(
    entry_id: int, kind: AuditEventType, row: PendingRow, details: Mapping[str, Any] | None
) -> AuditLogEntry:
    """The entry ``record()`` returns for ``row`` (positional: cheaper on the hot path)."""
    return AuditLogEntry(
        entry_id,
        row.event_id,
        kind,
        row.actor,
        row.resource,
        {} if details is None else dict(details),
        row.correlation_id,
        row.created_at,
    )
