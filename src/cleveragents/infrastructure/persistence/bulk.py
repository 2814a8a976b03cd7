"""The writer's fast path: prepared tuples handed straight to the driver's executemany.

SQLAlchemy Core's executemany builds a dict per row and runs each value through
its type processors; for the writer's batches that costs more than the insert.
Here each backend gets one hand-written INSERT ... ON CONFLICT (event_id) DO
NOTHING (so a retried batch never duplicates) and a tuple per row: on SQLite the
time as the same text SQLAlchemy's DateTime stores, through executemany; on
PostgreSQL through COPY into a temporary staging table and one INSERT ... SELECT,
with the details text once more for the JSONB column (NULL where JSONB cannot
hold it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from cleveragents.infrastructure.persistence.rows import ROW_FIELDS, EntryRow
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = ["bulk_insert", "jsonb_text", "sqlite_time_text"]

_COLUMNS = ", ".join(ROW_FIELDS)
_SQLITE_INSERT = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (event_id) DO NOTHING"
)
# PostgreSQL: COPY into a per-connection staging table, then one INSERT ... SELECT
# that keeps the batch's order and skips stored event_ids (COPY alone cannot).
_STAGE = "cleveragents_audit_stage"
_POSTGRES_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (ord integer, event_id text, "
    "event_type text, actor text, resource text, details text, correlation_id text, "
    "created_at timestamptz, details_json jsonb) ON COMMIT DELETE ROWS"
)
_POSTGRES_COPY = f"COPY {_STAGE} (ord, {_COLUMNS}, details_json) FROM STDIN"
_POSTGRES_MOVE = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}, details_json) "
    f"SELECT {_COLUMNS}, details_json FROM {_STAGE} ORDER BY ord "
    "ON CONFLICT (event_id) DO NOTHING"
)


def bulk_insert(connection: Connection, rows: Sequence[EntryRow]) -> None:
    """Insert ``rows`` in the connection's transaction, skipping stored event_ids."""
    if connection.dialect.name == "postgresql":
        _postgres_copy(connection, rows)
        return
    params: list[tuple[Any, ...]] = [(*row[:6], sqlite_time_text(row[6])) for row in rows]
    connection.exec_driver_sql(_SQLITE_INSERT, params)


def _postgres_copy(connection: Connection, rows: Sequence[EntryRow]) -> None:
    # Every time: a rolled-back transaction takes the table's creation with it.
    connection.exec_driver_sql(_POSTGRES_STAGE)
    driver = connection.connection.driver_connection
    dialect = connection.dialect
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(_POSTGRES_COPY) as copy:
            for ord_, row in enumerate(rows):
                copy.write_row((ord_, *row[:6], _aware(row[6]), jsonb_text(row[4])))
        cursor.execute(_POSTGRES_MOVE)
    except dialect.loaded_dbapi.Error as exc:
        # Raised by the driver itself: give it SQLAlchemy's shape (IntegrityError,
        # OperationalError, ...), and drop the connection if the server is gone, as
        # SQLAlchemy does for the statements it runs.
        disconnected = dialect.is_disconnect(exc, driver, cursor)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            _POSTGRES_MOVE,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=disconnected,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


def sqlite_time_text(moment: datetime) -> str:
    """``moment`` in UTC as SQLite stores SQLAlchemy DateTimes: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if _aware(moment).utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: audit times must be timezone-aware")
    return moment


def jsonb_text(details: str | None) -> str | None:
    """The details text for the JSONB column, or None where JSONB cannot hold it (U+0000).

    The text column keeps such details exactly.
    """
    if details is None or "\\u0000" in details:
        return None
    return details
