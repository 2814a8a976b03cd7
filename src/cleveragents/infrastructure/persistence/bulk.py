"""The writer's fast path: prepared tuples handed straight to the driver's executemany.

SQLAlchemy Core's executemany builds a dict per row and runs each value through
its type processors; for the writer's batches that costs more than the insert.
Here each backend gets one hand-written INSERT ... ON CONFLICT (event_id) DO
NOTHING (so a retried batch never duplicates) and a tuple per row: on SQLite the
time as the same text SQLAlchemy's DateTime stores, on PostgreSQL the details
text once more for the JSONB column (NULL where JSONB cannot hold it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from cleveragents.infrastructure.persistence.rows import ROW_FIELDS, EntryRow
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = ["bulk_insert", "sqlite_time_text"]

_COLUMNS = ", ".join(ROW_FIELDS)
_SQLITE_INSERT = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_POSTGRES_INSERT = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}, details_json) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (event_id) DO NOTHING"
)


def bulk_insert(connection: Connection, rows: Sequence[EntryRow]) -> None:
    """Insert ``rows`` in the connection's transaction, skipping stored event_ids."""
    params: list[tuple[Any, ...]]
    if connection.dialect.name == "postgresql":
        params = [(*row[:6], _aware(row[6]), _jsonb_text(row[4])) for row in rows]
        connection.exec_driver_sql(_POSTGRES_INSERT, params)
    else:
        params = [(*row[:6], sqlite_time_text(row[6])) for row in rows]
        connection.exec_driver_sql(_SQLITE_INSERT, params)


def sqlite_time_text(moment: datetime) -> str:
    """``moment`` in UTC as SQLite stores SQLAlchemy DateTimes: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if _aware(moment).utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: audit times must be timezone-aware")
    return moment


def _jsonb_text(details: str | None) -> str | None:
    # JSONB cannot hold U+0000; the text column keeps such details exactly.
    if details is None or "\\u0000" in details:
        return None
    return details
