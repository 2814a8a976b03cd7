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
from cleveragents.domain.details import encode_details, encode_plain_details
from cleveragents.domain.entry import AuditLogEntry, new_entry
from cleveragents.domain.event_types import AuditEventType, coerce_event_type
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.limits import check_text, texts_fit
from cleveragents.domain.redaction import Redactor
from cleveragents.domain.rows import PendingRow
from cleveragents.infrastructure.trace_context import with_current_span

__all__ = ["EntryPreparer", "Prepared", "entry_of"]

#: What :meth:`EntryPreparer.prepare` returns: the kind, the row, and the masked details
#: as the entry's own dict (not the caller's object: a later change there does not show).
Prepared = tuple[AuditEventType, PendingRow, dict[str, Any]]

_new_row = tuple.__new__


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
        # Any: the details are checked below, by the redaction's walk or the encoding.
        masked: Any = with_current_span(details) if self._otel_context else details
        if self._redactor is None:
            text = encode_details(masked)
        else:  # a masked copy; the caller's object is left alone
            try:  # one walk masks and tells whether the encoding must check the details
                masked, plain = self._redactor.redact_plain(masked)
            except RecursionError:
                encode_details(masked)  # names a depth beyond MAX_DETAILS_DEPTH; else re-raise
                raise
            text = encode_plain_details(masked) if plain else encode_details(masked)
        # The queue (or the synchronous write) adds writer_seq. tuple.__new__: what
        # PendingRow(...) does, without its Python-level __new__ (the hot path).
        row = _new_row(
            PendingRow,
            (
                new_event_id(),
                kind.value,
                actor,
                resource,
                text,
                correlation_id,
                datetime.now(UTC),
                writer_id,
            ),
        )
        if masked is details:  # the entry's details are its own: a copy made above, or here
            masked = {} if details is None else dict(details)
        return kind, row, masked


def entry_of(
    entry_id: int, kind: AuditEventType, row: PendingRow, details: dict[str, Any]
) -> AuditLogEntry:
    """The entry ``record()`` returns for ``row``, holding ``details`` (prepare's, not copied)."""
    return new_entry(
        entry_id,
        row.event_id,
        kind,
        row.actor,
        row.resource,
        details,
        row.correlation_id,
        row.created_at,
    )
