"""Domain types: event types, entries, domain events, errors."""

from cleveragents.domain.details import encode_details
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.errors import (
    AuditError,
    AuditQueueFullError,
    AuditServiceClosedError,
    AuditStorageError,
)
from cleveragents.domain.event_types import AuditEventType, coerce_event_type
from cleveragents.domain.events import DomainEvent
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.stats import AuditStats

__all__ = [
    "AuditError",
    "AuditEventType",
    "AuditLogEntry",
    "AuditQueueFullError",
    "AuditServiceClosedError",
    "AuditStats",
    "AuditStorageError",
    "DomainEvent",
    "coerce_event_type",
    "encode_details",
    "new_event_id",
]
