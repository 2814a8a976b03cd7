"""Opening the audit database: URL checks, engine settings per backend, schema, inserts."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session

from cleveragents.domain.errors import AuditStorageError
from cleveragents.domain.rows import EntryRow
from cleveragents.domain.system_entries import spool_replayed
from cleveragents.infrastructure.bisection import bisect_failures
from cleveragents.infrastructure.persistence.bulk import Declare, StoredAlreadyError, append
from cleveragents.infrastructure.persistence.errors import describe, is_transient
from cleveragents.infrastructure.persistence.schema import ensure_schema, ensure_schema_on
from cleveragents.infrastructure.persistence.sqlite import (
    SQLITE_BUSY_TIMEOUT_S,
    create_private_file,
    is_sqlite_file,
    is_sqlite_memory,
    sqlite_engine,
)
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = [
    "POSTGRES_EXTRA",
    "SQLITE_BUSY_TIMEOUT_S",
    "AuditDatabase",
    "insert_one",
    "open_database",
    "sqlite_file_path",
]

#: Rows per transaction when a spool is replayed.
_REPLAY_BATCH = 500
#: How long a PostgreSQL connection attempt may take before it counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 10
#: How to install the PostgreSQL driver (psycopg 3): the package's ``postgres`` extra.
POSTGRES_EXTRA = "pip install 'cleveragents-audit[postgres]'"
#: Most seconds os.fork() waits for a SQLite write under way (one attempt: busy timeout + commit).
_FORK_WAIT_S = 2 * SQLITE_BUSY_TIMEOUT_S


class AuditDatabase:
    """An engine for the audit database, with the backend's quirks handled once.

    File SQLite runs in WAL mode with a busy timeout, so readers and other
    processes do not block the writer. In-memory SQLite is one database per
    connection, so every user shares one connection, taken under a lock.
    """

    def __init__(
        self, engine: Engine, *, shared_connection: bool, hmac_key: bytes | None = None
    ) -> None:
        self.engine = engine
        #: Keyed mode: every appended entry also carries HMAC-SHA256 under this key.
        self.hmac_key = hmac_key
        self._shared_connection = shared_connection
        self._guard: AbstractContextManager[Any] = (
            threading.RLock() if shared_connection else nullcontext()
        )
        # SQLite keeps its locks' bookkeeping in process memory: a child forked in the
        # middle of a write would believe it holds the write lock, and see "database is
        # locked" for ever. Writes to a SQLite file hold this lock; a fork waits for it.
        self._is_sqlite_file = is_sqlite_file(engine.url)
        self._writing = threading.Lock()
        self._held_for_fork = False

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None (in-memory SQLite, PostgreSQL)."""
        url = self.engine.url
        return Path(url.database) if is_sqlite_file(url) and url.database else None

    @property
    def url(self) -> str:
        """The URL, password hidden: safe to log."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads, never one the writer holds."""
        with self._guard, self.engine.connect() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction of its own, committed at the end (maintenance: purge)."""
        with self._writing, self._guard, self.engine.begin() as connection:
            yield connection

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        """Append ``rows`` to the chain in one transaction; rows stored already are skipped."""
        try:
            with self._writing, self._guard, self.engine.begin() as connection:
                append(connection, rows, hmac_key=self.hmac_key)
        except StoredAlreadyError:  # a retry after a commit that did succeed: rolled back, redo
            with self._writing, self._guard, self.engine.begin() as connection:
                append(connection, rows, hmac_key=self.hmac_key, skip_stored=True)

    def write_one(self, row: EntryRow) -> int:
        """Append one row and commit; return its id."""
        with self._writing, self._guard, self.engine.begin() as connection:
            append(connection, [row], hmac_key=self.hmac_key, skip_stored=True)
            return _id_of(connection, row.event_id)

    def insert_new(
        self, rows: Sequence[EntryRow], *, declare: Declare | None = None
    ) -> tuple[int, list[tuple[int, str]]]:
        """Insert the rows whose event_id is not stored yet, committing per batch.

        ``declare``: the declaration each batch's transaction appends (see
        :func:`insert_new`).

        Returns how many were inserted, and the rows the database refuses for good
        (by index into ``rows``, with the reason): a batch refused for a reason
        that is not transient is halved until those rows are isolated, so they
        cannot hold the others back. When no row at all can be written (the table
        is missing, the disk is full), that is the database's fault, not the rows':
        the first error is raised, as is any transient one.
        """
        counts = [0, 0]  # rows inserted; rows in committed batches, stored before or not
        refused: list[tuple[int, SQLAlchemyError]] = []
        for start in range(0, len(rows), _REPLAY_BATCH):
            refused += bisect_failures(
                range(start, min(start + _REPLAY_BATCH, len(rows))),
                lambda indices: self._insert_new_once(rows, indices, counts, declare),
            )
        if refused and not counts[1] and not all(_row_level(exc) for _, exc in refused):
            raise refused[0][1]
        return counts[0], [(index, describe(exc)) for index, exc in refused]

    def _insert_new_once(
        self,
        rows: Sequence[EntryRow],
        indices: Sequence[int],
        counts: list[int],
        declare: Declare | None,
    ) -> SQLAlchemyError | None:
        """Insert the ``rows`` at ``indices`` (a range) in one transaction; the error, if any.

        A transient error is raised: it stops the whole insert, not just these rows.
        """
        try:
            with self._writing, self._guard, self.engine.begin() as connection:
                counts[0] += insert_new(
                    connection,
                    rows[indices[0] : indices[-1] + 1],
                    hmac_key=self.hmac_key,
                    declare=declare,
                )
        except SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            return exc
        counts[1] += len(indices)
        return None

    def before_fork(self) -> None:
        """Before os.fork(): on a SQLite file, wait until no write is under way."""
        if self._is_sqlite_file:
            self._held_for_fork = self._writing.acquire(timeout=_FORK_WAIT_S)

    def after_fork_in_parent(self) -> None:
        """After os.fork(), in the parent: let writes go on."""
        if self._held_for_fork:
            self._held_for_fork = False
            self._writing.release()

    def after_fork_in_child(self) -> None:
        """Forget the parent's connections; close them only on SQLite, where they are ours.

        A PostgreSQL connection is a socket shared with the parent: closing it would end
        the parent's session. An idle SQLite connection is process-local state, and left
        open it would make the child's new connections share its lock bookkeeping.
        """
        self._writing = threading.Lock()
        self._held_for_fork = False
        if self._shared_connection:  # its lock may have been held by another thread
            self._guard = threading.RLock()
        self.engine.dispose(close=self._is_sqlite_file)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _row_level(exc: SQLAlchemyError) -> bool:
    """True for an error about the row itself (a constraint, a value, a trigger's refusal)."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "P0001"  # RAISE EXCEPTION


def insert_new(
    connection: Connection,
    rows: Sequence[EntryRow],
    *,
    hmac_key: bytes | None,
    declare: Declare | None = None,
) -> int:
    """Append the rows whose event_id is not stored yet, in the caller's transaction.

    By default rows of writers (a replayed spool) are declared by a ``spool.replayed``
    entry in the same transaction, so that ``verify`` knows why they arrive after later
    ones; ``declare`` replaces that (a re-chaining import's ``trail.imported``).
    """
    return append(
        connection, rows, hmac_key=hmac_key, skip_stored=True, declare=declare or _replayed
    )


def _replayed(rows: Sequence[EntryRow], first_seq: int) -> EntryRow | None:
    """The ``spool.replayed`` row (it names writer_seqs, so ``first_seq`` is not needed)."""
    del first_seq
    return spool_replayed(rows)


def insert_one(session: Session, row: EntryRow, *, hmac_key: bytes | None) -> int:
    """Append one row through the caller's ``session``, commit, and return its id."""
    try:
        connection = session.connection()
        append(connection, [row], hmac_key=hmac_key, skip_stored=True)
        new_id = _id_of(connection, row.event_id)
        session.commit()
    except BaseException:
        session.rollback()  # or every later use of the caller's session fails
        raise
    return new_id


def _id_of(connection: Connection, event_id: str) -> int:
    return int(
        connection.execute(
            select(audit_log.c.id).where(audit_log.c.event_id == event_id)
        ).scalar_one()
    )


def create_schema(session: Session) -> None:
    """Check the schema through the caller's session; an empty database is created at head.

    Raises:
        AuditSchemaError: the database is behind, unversioned or of an unknown revision.
    """
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    ensure_schema_on(session.connection(), url)
    session.commit()


def open_database(
    url: str, *, create: bool = True, check_schema: bool = True, hmac_key: bytes | None = None
) -> AuditDatabase:
    """Check ``url``, connect, and check the schema: an empty database is created at head.

    With ``create=False`` (readers), nothing is created: a missing SQLite file or a
    database without the audit table is refused. With ``check_schema=False`` (the
    ``db`` commands, which look at or change the schema themselves) the database is
    only connected to. With ``hmac_key``, appended entries carry an HMAC (keyed mode).

    Raises:
        AuditStorageError: the URL is malformed, names an unsupported backend or a
            driver that is not installed, or the database cannot be reached or created.
        AuditSchemaError: (an AuditStorageError) the schema is not at this version's
            head; the message names ``cleveragents-audit db upgrade`` when that helps.
    """
    parsed = _parse(url)
    safe_url = parsed.render_as_string(hide_password=True)
    if not create and is_sqlite_file(parsed) and not Path(str(parsed.database)).is_file():
        raise AuditStorageError(f"no audit database at {parsed.database} ({safe_url!r})")
    if is_sqlite_file(parsed) and parsed.database:
        create_private_file(Path(parsed.database), safe_url)
    shared = parsed.get_backend_name() == "sqlite" and is_sqlite_memory(parsed)
    engine = _engine(parsed, safe_url, memory=shared)
    try:
        if check_schema:
            ensure_schema(engine, safe_url, create=create)
        else:
            engine.connect().close()
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        raise AuditStorageError(
            f"cannot open the audit database {safe_url!r}: {str(reason).strip()}"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return AuditDatabase(engine, shared_connection=shared, hmac_key=hmac_key)


def _engine(parsed: URL, safe_url: str, *, memory: bool) -> Engine:
    """The engine for ``parsed``, with its backend's settings.

    Raises:
        AuditStorageError: the URL or its driver cannot be used.
    """
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return sqlite_engine(parsed, memory=memory)
        return create_engine(
            parsed,
            hide_parameters=True,
            pool_pre_ping=True,
            connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
        )
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        problem = str(exc)
        if isinstance(exc, ImportError) and backend == "postgresql":
            problem = f"the PostgreSQL driver (psycopg 3) cannot be imported ({exc}); install it "
            problem += f"with: {POSTGRES_EXTRA}"
        raise AuditStorageError(f"cannot use the database URL {safe_url!r}: {problem}") from exc


def sqlite_file_path(url: str) -> Path | None:
    """The SQLite file ``url`` names, absolute; None for in-memory SQLite and PostgreSQL.

    Raises:
        AuditStorageError: the URL is malformed or names an unsupported backend.
    """
    parsed = _parse(url)
    return Path(str(parsed.database)) if is_sqlite_file(parsed) else None


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise AuditStorageError(f"malformed database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise AuditStorageError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)!r};"
            " use sqlite:///PATH or postgresql+psycopg://..."
        )
    if is_sqlite_file(parsed) and parsed.database:
        # Pin a relative path now: the pool opens connections later, maybe after a chdir.
        parsed = parsed.set(database=os.path.abspath(parsed.database))
    if parsed.drivername == "postgresql":  # SQLAlchemy defaults to psycopg2; we ship psycopg 3
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed
