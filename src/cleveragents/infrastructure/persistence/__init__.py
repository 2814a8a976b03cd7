"""Persistence: the audit table, the engine factory, batch inserts and reads."""

from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.errors import is_transient
from cleveragents.infrastructure.persistence.reads import (
    EntryFilter,
    count,
    get,
    query,
    row_to_entry,
)
from cleveragents.infrastructure.persistence.table import AuditLogRecord, Base, audit_log

__all__ = [
    "AuditDatabase",
    "AuditLogRecord",
    "Base",
    "EntryFilter",
    "audit_log",
    "count",
    "get",
    "is_transient",
    "open_database",
    "query",
    "row_to_entry",
]
