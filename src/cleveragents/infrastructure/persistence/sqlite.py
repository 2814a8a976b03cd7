"""SQLite's quirks, handled once: which URLs are files, engines, locks, and stored times.

A SQLite file runs in WAL mode with a busy timeout, so readers and other processes
do not block the writer; in-memory SQLite is one database per connection, so its
engine keeps one connection. A write transaction begins with ``BEGIN IMMEDIATE``
(the database's one write lock, taken before anything is read). The file is created
readable and writable by its owner only: it holds audit data.
"""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool, StaticPool

from cleveragents.domain.errors import AuditStorageError

__all__ = [
    "SQLITE_BUSY_TIMEOUT_S",
    "aware",
    "begin_immediate",
    "begin_read",
    "create_private_file",
    "is_sqlite_file",
    "is_sqlite_memory",
    "locking_engine",
    "sqlite_engine",
    "sqlite_time_text",
]

#: How long a SQLite connection waits for another connection's lock before "database is locked".
#: Read when an engine is made (tests shorten it).
SQLITE_BUSY_TIMEOUT_S = 5.0
#: Mode of the files the service creates: owner only.
_PRIVATE = 0o600


def is_sqlite_memory(url: URL) -> bool:
    """An in-memory SQLite database (one per connection)."""
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def is_sqlite_file(url: URL) -> bool:
    """A plain SQLite file path (not in-memory, not a ``file:`` URI)."""
    return (
        url.get_backend_name() == "sqlite"
        and bool(url.database)
        and not is_sqlite_memory(url)
        and "uri" not in url.query
    )


def create_private_file(path: Path, safe_url: str) -> None:
    """Create a missing SQLite file readable and writable by its owner only: it holds audit data."""
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE))
    except FileExistsError:
        return
    except OSError as exc:
        raise AuditStorageError(
            f"cannot open the audit database {safe_url!r}: {exc.strerror}: {path}"
        ) from exc


def sqlite_engine(url: URL, *, memory: bool) -> Engine:
    """The engine for ``url``: one shared connection in memory; else WAL and a busy timeout."""
    if memory:
        return create_engine(
            url,
            hide_parameters=True,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    engine = create_engine(
        url, hide_parameters=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
    )
    event.listen(engine, "connect", _configure)
    return engine


def _configure(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

    When several processes open a fresh file at once, SQLite may answer "database
    is locked" at once, without waiting its busy timeout (one of them is turning
    the file to WAL). Retried for at most the busy timeout.
    """
    give_up_at = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= give_up_at:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def locking_engine(url: URL) -> Engine:
    """An engine whose every transaction begins with ``BEGIN IMMEDIATE`` (the schema's lock).

    Its connections are not pooled: the caller disposes of it when done.
    """
    locking = create_engine(
        url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
    )
    event.listen(locking, "connect", _autocommit_driver)
    event.listen(locking, "begin", begin_immediate)
    return locking


def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module would otherwise begin (deferred) only before DML, and run DDL
    # outside any transaction; the "begin" listener opens one explicitly.
    dbapi_connection.isolation_level = None


def begin_immediate(connection: Connection) -> None:
    """SQLite: begin with the write lock held, unless a transaction is open already.

    A deferred transaction that read first and then writes fails at once ("database
    is locked") when another process committed in between; one that takes the lock
    first waits its busy timeout instead. An injected session's open transaction is
    left as it is: its first write takes the lock.
    """
    _begin(connection, "BEGIN IMMEDIATE")


def begin_read(connection: Connection) -> None:
    """SQLite: begin a read transaction now, unless one is open: in WAL mode every read
    until it ends sees one snapshot."""
    _begin(connection, "BEGIN")


def _begin(connection: Connection, statement: str) -> None:
    # The sqlite3 module begins on its own only before a write: a read is in no transaction.
    driver = connection.connection.driver_connection
    if not driver.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql(statement)


def sqlite_time_text(moment: datetime) -> str:
    """``moment`` in UTC as SQLite stores SQLAlchemy DateTimes: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if moment.tzinfo is UTC:  # record()'s own times: no offset to look up
        return moment.isoformat(" ", "microseconds")[:26]
    if aware(moment).utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def aware(moment: datetime) -> datetime:
    """``moment``, checked to be timezone-aware (a stored time must be).

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: audit times must be timezone-aware")
    return moment
