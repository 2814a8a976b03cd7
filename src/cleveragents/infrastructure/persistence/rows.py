"""The row tuple that travels from ``record()`` through the queue to the insert."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cleveragents.domain.details import decode_details
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import AuditEventType

__all__ = ["ROW_FIELDS", "EntryRow", "row_to_entry"]

#: (event_id, event_type, actor, resource, details_json, correlation_id, created_at).
#: A plain tuple of immutable values: cheap to build in the caller's thread, not
#: tracked by the garbage collector, and handed to the insert as it is.
EntryRow = tuple[str, str, str | None, str | None, str, str | None, datetime]

ROW_FIELDS = (
    "event_id",
    "event_type",
    "actor",
    "resource",
    "details",
    "correlation_id",
    "created_at",
)


def row_to_entry(row: Any) -> AuditLogEntry:
    """Build an :class:`AuditLogEntry` from a selected ``audit_log`` row."""
    return AuditLogEntry(
        id=row.id,
        event_id=row.event_id,
        event_type=AuditEventType(row.event_type),
        actor=row.actor,
        resource=row.resource,
        details=decode_details(row.details),
        correlation_id=row.correlation_id,
        created_at=row.created_at,
    )
