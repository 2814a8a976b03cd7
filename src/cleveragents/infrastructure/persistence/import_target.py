"""The database an import writes into: opened when the first entries are ready, and
taken back if the import fails before any entry is stored in it.

A failed import must leave nothing behind that it created: a SQLite file it made
is removed with its ``-wal``, ``-shm`` and ``-journal`` files; tables it made in an
existing database (a PostgreSQL schema, an empty SQLite file) are dropped. What was
there before is never removed, and a database that holds an entry is kept whatever
happened (an import keeps the entries it stored before a bad line).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import Connection, inspect, select
from sqlalchemy.engine import make_url

from cleveragents.infrastructure.persistence.database import (
    AuditDatabase,
    open_database,
    sqlite_file_path,
)
from cleveragents.infrastructure.persistence.schema import VERSION_TABLE, locked_transaction
from cleveragents.infrastructure.persistence.table import audit_chain, audit_log

__all__ = ["ImportTarget"]

#: The tables a new audit database gets, dropped in this order when taken back.
_TABLES = (audit_log.name, audit_chain.name, VERSION_TABLE)
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class ImportTarget:
    """The import's database, created (at head) only when :meth:`open` is first called."""

    def __init__(self, url: str, *, hmac_key: bytes | None) -> None:
        self._url = url
        self._hmac_key = hmac_key
        self.database: AuditDatabase | None = None
        self._new_file: Path | None = None  # a SQLite file this import created
        self._new_tables: tuple[str, ...] = ()  # tables this import created elsewhere

    @property
    def url(self) -> str:
        """The URL, password hidden."""
        if self.database is not None:
            return self.database.url
        try:
            return make_url(self._url).render_as_string(hide_password=True)
        except Exception:  # a malformed URL is shown as given (it holds no parsed password)
            return self._url

    def open(self) -> AuditDatabase:
        """The database, created at head when it is new (what was made is remembered).

        Raises:
            AuditStorageError: the URL is unusable, the database unreachable, or its
                schema not at head (anything made on the way is removed again).
        """
        if self.database is not None:
            return self.database
        path = sqlite_file_path(self._url)
        if path is not None and not path.exists():
            self._new_file = path
            before: set[str] = set()
        else:
            before = self._tables_there()
        try:
            self.database = open_database(self._url, create=True, hmac_key=self._hmac_key)
        except BaseException:
            self._remove_new_file()
            raise
        if self._new_file is None:
            self._new_tables = tuple(name for name in _TABLES if name not in before)
        return self.database

    def discard_if_empty(self) -> None:
        """After a failure: remove what :meth:`open` created, unless it holds an entry."""
        database = self.database
        if database is None:
            return
        if self._new_file is not None:
            with database.connect() as connection:
                empty = _is_empty(connection)
            database.dispose()
            if empty:
                self._remove_new_file()
            return
        if not self._new_tables:
            return
        # Under the schema lock, so that no process is creating or using them meanwhile.
        with locked_transaction(database.engine) as connection:
            if _is_empty(connection):
                for name in self._new_tables:
                    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        database.dispose()

    def dispose(self) -> None:
        """Close the connections."""
        if self.database is not None:
            self.database.dispose()

    def _tables_there(self) -> set[str]:
        probe = open_database(self._url, create=False, check_schema=False)
        try:
            with probe.connect() as connection:
                return set(inspect(connection).get_table_names()) & set(_TABLES)
        finally:
            probe.dispose()

    def _remove_new_file(self) -> None:
        if self._new_file is None:
            return
        for suffix in ("", *_SQLITE_COMPANIONS):
            with contextlib.suppress(FileNotFoundError):
                self._new_file.with_name(self._new_file.name + suffix).unlink()


def _is_empty(connection: Connection) -> bool:
    """No entry in audit_log, and no entry ever appended (the head at seq 0)."""
    names = set(inspect(connection).get_table_names())
    if audit_log.name in names and connection.execute(select(audit_log.c.id).limit(1)).first():
        return False
    if audit_chain.name in names:
        head = connection.execute(select(audit_chain.c.head_seq)).scalar_one_or_none()
        return not head
    return True
