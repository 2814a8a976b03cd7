"""The row tuple that travels from ``record()`` through the queue to the insert."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cleveragents.domain.details import decode_details
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import coerce_stored_event_type

__all__ = ["ROW_FIELDS", "EntryRow", "SystemRow", "row_to_entry"]

#: (event_id, event_type, actor, resource, details_json, correlation_id, created_at,
#: writer_id, writer_seq). A plain tuple of immutable values: cheap to build in the
#: caller's thread, not tracked by the garbage collector, and handed to the insert as
#: it is. ``writer_seq`` is added by the queue when it accepts the entry; the chain
#: columns (seq, prev_hash, entry_hash, hmac) are added by the insert, under the
#: chain's lock.
EntryRow = tuple[
    str, str, str | None, str | None, str, str | None, datetime, str | None, int | None
]

ROW_FIELDS = (
    "event_id",
    "event_type",
    "actor",
    "resource",
    "details",
    "correlation_id",
    "created_at",
    "writer_id",
    "writer_seq",
)


class SystemRow(tuple):  # type: ignore[type-arg]
    """A row the library writes itself (a :class:`SystemEventType`).

    Its own type, so the writer tells it from a caller's row with one ``type()``
    check: it takes no room in the queue and is not counted in the stats.
    """

    __slots__ = ()


def row_to_entry(row: Any) -> AuditLogEntry:
    """Build an :class:`AuditLogEntry` from a selected ``audit_log`` row."""
    return AuditLogEntry(
        id=row.id,
        event_id=row.event_id,
        event_type=coerce_stored_event_type(row.event_type),
        actor=row.actor,
        resource=row.resource,
        details=decode_details(row.details),
        correlation_id=row.correlation_id,
        created_at=row.created_at,
    )
