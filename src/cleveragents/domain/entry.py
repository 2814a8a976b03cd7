"""One entry of the audit trail, as recorded and as read back."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from cleveragents.domain.event_types import AuditEventType, SystemEventType

__all__ = ["PENDING_ID", "AuditLogEntry", "new_entry"]

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


class _Draft:
    """An :class:`AuditLogEntry` being filled in: the same slots, not frozen."""

    __slots__ = tuple(field.name for field in fields(AuditLogEntry))


def new_entry(
    id: int,
    event_id: str,
    event_type: AuditEventType | SystemEventType,
    actor: str | None,
    resource: str | None,
    details: dict[str, Any],
    correlation_id: str | None,
    created_at: datetime,
) -> AuditLogEntry:
    """``AuditLogEntry(...)``, for ``record()``'s hot path: the same entry, made for less.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    most of its cost; a draft with the same slots is filled in plainly, then
    becomes an :class:`AuditLogEntry` (the layouts are the same, so Python allows it).
    """
    entry: Any = _Draft.__new__(_Draft)
    entry.id = id
    entry.event_id = event_id
    entry.event_type = event_type
    entry.actor = actor
    entry.resource = resource
    entry.details = details
    entry.correlation_id = correlation_id
    entry.created_at = created_at
    entry.__class__ = AuditLogEntry
    return entry  # type: ignore[no-any-return]
