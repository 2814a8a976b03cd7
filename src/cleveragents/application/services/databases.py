"""The audit database as the service sees it, whether it owns an engine or uses a caller's session.

:class:`TrailDatabase` is every call the service and its recorders make on the
database: one committed write, the idempotent insert of a replay, reads, verify,
checkpoint, and the process's fork and close. :class:`OwnedDatabase` offers it over
an :class:`AuditDatabase` (an engine of the service's own); :class:`SessionDatabase`
over a caller's :class:`~sqlalchemy.orm.Session` (each write committed through it,
so the caller's transaction sees the row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from cleveragents.application import trail
from cleveragents.domain.rows import EntryRow
from cleveragents.domain.verification import Checkpoint, VerifyReport
from cleveragents.infrastructure.persistence.database import (
    AuditDatabase,
    create_schema,
    insert_new,
    insert_one,
)
from cleveragents.infrastructure.persistence.verify import verify_chain

__all__ = ["OwnedDatabase", "SessionDatabase", "TrailDatabase"]

#: What ``insert_new`` returns: rows inserted, and the refused ones (index, reason).
Inserted = tuple[int, list[tuple[int, str]]]
Progress = Callable[[int, int], None] | None


class TrailDatabase(Protocol):
    """The calls the service and its recorders make on the audit database."""

    #: Where the trail is, safe to log (a URL without password, or ``session``).
    description: str
    #: The SQLite file, or None (in-memory SQLite, PostgreSQL, a session).
    sqlite_path: Path | None

    def write_one(self, row: EntryRow) -> int:
        """Append one row and commit; its id."""
        ...

    def insert_new(self, rows: Sequence[EntryRow]) -> Inserted:
        """Insert the rows not stored yet, committed; how many, and the refused ones."""
        ...

    def connect(self) -> AbstractContextManager[Connection | Session]:
        """A reader for the committed entries."""
        ...

    def verify(
        self, *, checkpoints: Iterable[Checkpoint], own_writer_id: str, progress: Progress
    ) -> VerifyReport:
        """Verify the committed chain."""
        ...

    def checkpoint(self) -> Checkpoint:
        """A checkpoint of the chain head now."""
        ...

    def dispose(self) -> None:
        """Let go of the connections this object owns."""
        ...

    def before_fork(self) -> None:
        """Before os.fork(): hold writes."""
        ...

    def after_fork_in_parent(self) -> None:
        """After os.fork(), in the parent: let writes go on."""
        ...

    def after_fork_in_child(self) -> None:
        """After os.fork(), in the child: forget the parent's connections."""
        ...


class OwnedDatabase:
    """:class:`TrailDatabase` over an engine the service owns (it disposes it at close)."""

    def __init__(self, database: AuditDatabase, hmac_key: bytes | None) -> None:
        self.database = database
        self._hmac_key = hmac_key
        self.description = database.url
        self.sqlite_path = database.sqlite_path

    def write_one(self, row: EntryRow) -> int:
        """Append one row and commit; its id."""
        return self.database.write_one(row)

    def insert_new(self, rows: Sequence[EntryRow]) -> Inserted:
        """Insert the rows not stored yet, per batch; rows the database refuses are isolated."""
        return self.database.insert_new(rows)

    def verify(
        self, *, checkpoints: Iterable[Checkpoint], own_writer_id: str, progress: Progress
    ) -> VerifyReport:
        """Verify the chain in one snapshot; unverifiable when it cannot be read."""
        return trail.verify(
            self.database,
            hmac_key=self._hmac_key,
            checkpoints=checkpoints,
            own_writer_id=own_writer_id,
            progress=progress,
        )

    def checkpoint(self) -> Checkpoint:
        """A checkpoint of the chain head now."""
        return trail.current_checkpoint(self.database)

    def connect(self) -> AbstractContextManager[Connection]:
        """A reader for the committed entries, never a connection the writer holds."""
        return self.database.connect()

    def dispose(self) -> None:
        """Close every pooled connection of the engine."""
        self.database.dispose()

    def before_fork(self) -> None:
        """Before os.fork(): on a SQLite file, wait until no write is under way."""
        self.database.before_fork()

    def after_fork_in_parent(self) -> None:
        """After os.fork(), in the parent: let writes go on."""
        self.database.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """After os.fork(), in the child: forget the parent's connections."""
        self.database.after_fork_in_child()


class SessionDatabase:
    """:class:`TrailDatabase` through a caller's session: every write is committed through it.

    The schema is checked (an empty database created) when it is made. The session is
    the caller's: nothing here closes it, and forks are the caller's to handle.
    """

    description: str = "session"
    sqlite_path: Path | None = None

    def __init__(self, session: Session, hmac_key: bytes | None) -> None:
        create_schema(session)
        self._session = session
        self._hmac_key = hmac_key

    def write_one(self, row: EntryRow) -> int:
        """Append ``row`` through the session and commit (rolled back on failure); its id."""
        return insert_one(self._session, row, hmac_key=self._hmac_key)

    def insert_new(self, rows: Sequence[EntryRow]) -> Inserted:
        """Insert the rows not stored yet in one transaction of the session, committed."""
        inserted = insert_new(self._session.connection(), rows, hmac_key=self._hmac_key)
        self._session.commit()
        return inserted, []

    def connect(self) -> AbstractContextManager[Connection | Session]:
        """The session itself."""
        return nullcontext(self._session)

    def verify(
        self, *, checkpoints: Iterable[Checkpoint], own_writer_id: str, progress: Progress
    ) -> VerifyReport:
        """Verify the chain the session sees."""
        return verify_chain(
            self._session.connection(),
            hmac_key=self._hmac_key,
            checkpoints=checkpoints,
            own_writer_id=own_writer_id,
            progress=progress,
        )

    def checkpoint(self) -> Checkpoint:
        """A checkpoint of the chain head the session sees."""
        return trail.head_checkpoint(self._session.connection(), "the session's database")

    def dispose(self) -> None:
        """Nothing: the session and its engine are the caller's."""

    def before_fork(self) -> None:
        """Nothing: the session is the caller's."""

    def after_fork_in_parent(self) -> None:
        """Nothing: the session is the caller's."""

    def after_fork_in_child(self) -> None:
        """Nothing: the session is the caller's."""
