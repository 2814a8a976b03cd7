"""Reads of committed entries: filters, counts, pages by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select
from sqlalchemy.orm import Session

from cleveragents.domain.details import decode_details
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import (
    SYSTEM_EVENT_TYPES,
    AuditEventType,
    SystemEventType,
    coerce_stored_event_type,
)
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = ["EntryFilter", "count", "get", "query", "row_to_entry"]

Reader = Connection | Session


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What ``count()`` and ``query()`` match: every given field must match.

    ``since`` is inclusive and ``until`` exclusive; both must be timezone-aware.
    The library's own entries (writer accounting, retention) are left out unless
    ``include_system`` is true or ``event_type`` names one of them.
    """

    event_type: AuditEventType | SystemEventType | str | None = None
    actor: str | None = None
    resource: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_system: bool = False

    def __post_init__(self) -> None:
        if self.event_type is not None:
            object.__setattr__(self, "event_type", coerce_stored_event_type(self.event_type))
        if not isinstance(self.include_system, bool):
            raise TypeError(
                f"include_system must be a bool, not {type(self.include_system).__name__}"
            )
        for name in ("actor", "resource", "correlation_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, datetime):
                raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got the naive {value!r}")

    def clauses(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses of this filter."""
        c = audit_log.c
        clauses: list[ColumnElement[bool]] = []
        if self.event_type is not None:
            clauses.append(c.event_type == str(self.event_type))
        elif not self.include_system:
            clauses.append(c.event_type.not_in(sorted(SYSTEM_EVENT_TYPES)))
        if self.actor is not None:
            clauses.append(c.actor == self.actor)
        if self.resource is not None:
            clauses.append(c.resource == self.resource)
        if self.correlation_id is not None:
            clauses.append(c.correlation_id == self.correlation_id)
        if self.since is not None:
            clauses.append(c.created_at >= self.since)
        if self.until is not None:
            clauses.append(c.created_at < self.until)
        return clauses


def count(reader: Reader, where: EntryFilter) -> int:
    """How many committed entries match ``where``."""
    statement = select(func.count()).select_from(audit_log).where(*where.clauses())
    return int(reader.execute(statement).scalar_one())


def query(
    reader: Reader, where: EntryFilter, *, after_id: int | None, limit: int
) -> list[AuditLogEntry]:
    """Up to ``limit`` matching entries with ``id > after_id``, in ascending id."""
    statement = select(audit_log).where(*where.clauses())
    if after_id is not None:
        statement = statement.where(audit_log.c.id > after_id)
    rows: Sequence[object] = reader.execute(statement.order_by(audit_log.c.id).limit(limit)).all()
    return [row_to_entry(row) for row in rows]


def get(reader: Reader, event_id: str) -> AuditLogEntry | None:
    """The committed entry with ``event_id``, or None."""
    row = reader.execute(select(audit_log).where(audit_log.c.event_id == event_id)).one_or_none()
    return None if row is None else row_to_entry(row)


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
