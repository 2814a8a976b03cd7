"""Which database errors are worth retrying."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

__all__ = ["describe", "is_transient"]

_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")
# PostgreSQL SQLSTATE classes and codes that clear up by themselves: connection
# exceptions, insufficient resources, operator intervention (server restart),
# serialization failures and deadlocks.
_PG_TRANSIENT_CLASSES = ("08", "53", "57")
_PG_TRANSIENT_CODES = ("40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` may succeed on a retry: a lock, a dropped or refused connection."""
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return any(text in message for text in _SQLITE_TRANSIENT)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _PG_TRANSIENT_CLASSES or sqlstate in _PG_TRANSIENT_CODES
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    return type(orig).__name__ == "OperationalError" and type(orig).__module__.startswith("psycopg")


def describe(exc: BaseException) -> str:
    """A one-line account of a database error: the driver's class and first line.

    SQLAlchemy's own text adds the statement and its parameters; the parameters
    are audit data and stay out of logs and the spool.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}".rstrip(": ")
