"""One entry of the audit trail, as recorded and as read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cleveragents.domain.event_types import AuditEventType, SystemEventType

__all__ = ["PENDING_ID", "AuditLogEntry"]

#: ``AuditLogEntry.id`` of an entry that is queued and not yet committed.
PENDING_ID = -1


@dataclass(frozen=True, slots=True)
class AuditLogEntry:
    """An audit entry.

    ``id`` is the database id, or ``-1`` (:data:`PENDING_ID`) for an entry that
    an asynchronous ``record()`` has queued and the writer has not committed yet.
    ``event_id`` is a time-ordered UUID (version 7) assigned at ``record()``, and
    ``created_at`` the timezone-aware UTC time of that call. Entries read with
    ``include_system=True`` may be the library's own (a :class:`SystemEventType`).
    """

    id: int
    event_id: str
    event_type: AuditEventType | SystemEventType
    actor: str | None
    resource: str | None
    details: dict[str, Any]
    correlation_id: str | None
    created_at: datetime

    @property
    def is_pending(self) -> bool:
        """True while the entry is queued and not yet committed."""
        return self.id == PENDING_ID
