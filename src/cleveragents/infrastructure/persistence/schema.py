"""The audit schema's revision: check it on start, create a new database at head, upgrade.

The schema is made and changed only by the Alembic migrations in ``migrations/``,
with their own version table, :data:`VERSION_TABLE`. What a database can be:

* **empty** (no ``audit_log``, and no version table or one whose ``audit_log`` was
  dropped): a service creates it at head, under a lock (SQLite ``BEGIN IMMEDIATE``,
  a PostgreSQL advisory lock), so that processes starting together create it once;
* **at head**: used as it is;
* **behind** (an older revision), or **unversioned** (an ``audit_log`` made before
  migrations existed): refused with :class:`AuditSchemaError`, which names
  ``cleveragents-audit db upgrade``; :func:`upgrade` adopts an unversioned table
  (missing column and indexes added, stamped at the first revision) and upgrades;
* **unknown** (a revision this version does not ship, e.g. made by a newer one):
  refused, and never touched.
"""

from __future__ import annotations

import functools
import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Column, Connection, Engine, inspect, text
from sqlalchemy.dialects.postgresql import JSONB

from cleveragents.domain.errors import AuditSchemaError
from cleveragents.infrastructure.persistence.migrations.versions.v0001_audit_log import INDEXES
from cleveragents.infrastructure.persistence.sqlite import is_sqlite_memory, locking_engine

__all__ = [
    "BASE_REVISION",
    "MIGRATIONS_DIR",
    "UPGRADE_HINT",
    "VERSION_TABLE",
    "SchemaState",
    "alembic_config",
    "ensure_schema",
    "ensure_schema_on",
    "head_revision",
    "read_state",
    "upgrade",
]

#: Where the migrations are, inside the installed package.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Alembic's version table for this schema; not ``alembic_version``, which an
#: application sharing the database may use for its own history.
VERSION_TABLE = "cleveragents_audit_version"
#: The first revision: the table as it was before migrations existed.
BASE_REVISION = "0001"
#: What an operator runs to bring a database to head.
UPGRADE_HINT = (
    "run `cleveragents-audit db upgrade` (with --database-url or CLEVERAGENTS_DATABASE_URL "
    "naming this database)"
)
_TABLE = "audit_log"
_CHAIN_TABLE = "audit_chain"
# Key of the PostgreSQL advisory lock held while the schema is created or upgraded.
_PG_LOCK_KEY = zlib.crc32(b"cleveragents-audit schema")
_BASE_COLUMNS = frozenset(
    {"id", "event_id", "event_type", "actor", "resource", "details", "correlation_id", "created_at"}
)

Status = Literal["empty", "head", "behind", "unversioned", "unknown"]


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this version's migrations."""

    revision: str | None  # in the version table; None when there is none
    head: str
    has_table: bool  # audit_log exists
    status: Status

    def describe(self, safe_url: str) -> str:
        """One sentence an operator can act on."""
        if self.status == "head":
            return f"the audit database {safe_url!r} is at schema revision {self.head} (head)"
        if self.status == "empty":
            return f"the database {safe_url!r} has no audit trail yet (no {_TABLE} table)"
        if self.status == "unversioned":
            return (
                f"the audit database {safe_url!r} was made before schema migrations (its "
                f"{_TABLE} table has no revision); {UPGRADE_HINT} to adopt it"
            )
        if self.status == "behind":
            return (
                f"the audit database {safe_url!r} is at schema revision {self.revision}, behind "
                f"this version's {self.head}; {UPGRADE_HINT}"
            )
        return (
            f"the audit database {safe_url!r} is at schema revision {self.revision!r}, which "
            f"this version of cleveragents-audit does not know (head {self.head}): it was "
            "probably made by a newer version; upgrade cleveragents-audit"
        )


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the shipped migrations; with ``connection``, run on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version ships."""
    head = _scripts().get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def read_state(connection: Connection) -> SchemaState:
    """The schema state of the database behind ``connection`` (reads only)."""
    head = head_revision()
    inspector = inspect(connection)
    revision: str | None = None
    if inspector.has_table(VERSION_TABLE):  # read directly: Alembic's context logs at INFO
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        revision = ",".join(sorted(str(v) for v in versions)) or None
    has_table = inspector.has_table(_TABLE)
    status: Status
    if revision is None:
        status = "unversioned" if has_table else "empty"
    elif not has_table and _is_known(revision):
        status = "empty"  # the table was dropped: made again, as before migrations existed
    elif revision == head:
        status = "head"
    elif _is_known(revision):
        status = "behind"
    else:
        status = "unknown"
    return SchemaState(revision, head, has_table, status)


def _is_known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown or malformed id
        return False


def ensure_schema(engine: Engine, safe_url: str, *, create: bool = True) -> None:
    """On start: nothing to do at head; create an empty database at head; refuse the rest.

    With ``create=False`` (readers such as the command line), an empty database is
    refused too.

    Raises:
        AuditSchemaError: the database is behind, unversioned, of an unknown
            revision, or (without ``create``) empty.
        sqlalchemy.exc.SQLAlchemyError: the database cannot be read or written.
    """
    with engine.connect() as connection:  # the common case: one read, no lock
        state = read_state(connection)
    if state.status == "head":
        return
    if not create:
        with engine.connect() as connection:  # once more: another process may be mid-creation
            state = read_state(connection)
        if state.status != "head":
            raise AuditSchemaError(state.describe(safe_url))
        return
    # Decided under the lock only: the read above takes the version table and the audit
    # table in two statements, and another process may commit its creation in between.
    with locked_transaction(engine) as connection:
        state = read_state(connection)  # another process may have been first
        if state.status == "empty":
            _create_at_head(connection, state)
        elif state.status != "head":
            raise AuditSchemaError(state.describe(safe_url))


def ensure_schema_on(connection: Connection, safe_url: str) -> None:
    """:func:`ensure_schema` on the caller's connection, in the caller's transaction (no lock)."""
    state = read_state(connection)
    if state.status == "empty":
        _create_at_head(connection, state)
    elif state.status != "head":
        raise AuditSchemaError(state.describe(safe_url))


def upgrade(engine: Engine, safe_url: str) -> tuple[SchemaState, SchemaState]:
    """Bring the database to head: create, adopt an unversioned table, or migrate.

    Returns the state before and after. Runs in one transaction under the schema
    lock (on PostgreSQL the whole upgrade commits or nothing does).

    Raises:
        AuditSchemaError: the database is of an unknown revision, or its ``audit_log``
            is not one this library made.
    """
    with locked_transaction(engine) as connection, _quiet_alembic():
        before = read_state(connection)
        if before.status == "unknown":
            raise AuditSchemaError(before.describe(safe_url))
        if before.status == "unversioned":
            _adopt(connection, safe_url)
        if before.status == "empty":
            _create_at_head(connection, before)
        elif before.status != "head":
            command.upgrade(alembic_config(connection), "head")
        after = read_state(connection)
    return before, after


def _create_at_head(connection: Connection, state: SchemaState) -> None:
    """Run every migration; a version left behind by a dropped table is cleared first.

    The chain head such a table left behind is kept: new entries continue its ``seq``,
    so ``verify`` reports the dropped entries as deleted instead of seeing a new trail.
    """
    config = alembic_config(connection)
    kept: dict[str, Any] | None = None
    with _quiet_alembic():
        if state.revision is not None:
            kept = _take_chain_head(connection)
            command.stamp(config, "base")
        command.upgrade(config, "head")
    if kept is not None:
        connection.execute(
            text(
                f"UPDATE {_CHAIN_TABLE} SET head_seq = :head_seq, head_hash = :head_hash,"
                " origin_seq = :origin_seq, origin_prev_hash = :origin_prev_hash WHERE id = 1"
            ),
            kept,
        )


def _take_chain_head(connection: Connection) -> dict[str, Any] | None:
    """Drop a chain-head table left behind by a dropped ``audit_log``; its head row, if any."""
    if not inspect(connection).has_table(_CHAIN_TABLE):
        return None
    row = connection.execute(
        text(
            "SELECT head_seq, head_hash, origin_seq, origin_prev_hash"
            f" FROM {_CHAIN_TABLE} WHERE id = 1"
        )
    ).first()
    connection.execute(text(f"DROP TABLE {_CHAIN_TABLE}"))
    return None if row is None else dict(row._mapping)


class _ThisThreadOnly(logging.Filter):
    """Drops Alembic's INFO lines emitted by the threads in ``threads``."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or threading.get_ident() not in self.threads


_QUIET = _ThisThreadOnly()
logging.getLogger("alembic.runtime.migration").addFilter(_QUIET)


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's INFO lines are left out, for this thread only.

    An application that logs at INFO would otherwise see three lines for every new
    database; ``db upgrade`` reports what it did itself.
    """
    ident = threading.get_ident()
    _QUIET.threads.add(ident)
    try:
        yield
    finally:
        _QUIET.threads.discard(ident)


def _adopt(connection: Connection, safe_url: str) -> None:
    """Give an audit_log made before migrations the first revision's shape, and stamp it."""
    inspector = inspect(connection)
    columns = {column["name"] for column in inspector.get_columns(_TABLE)}
    missing = sorted(_BASE_COLUMNS - columns)
    if missing:
        raise AuditSchemaError(
            f"the table {_TABLE} in {safe_url!r} is not a cleveragents-audit table "
            f"(no column {', '.join(missing)}); it was left alone"
        )
    operations = Operations(
        MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    )
    if "details_json" not in columns:  # tables made before the JSONB copy of details
        operations.add_column(
            _TABLE,
            Column("details_json", JSON().with_variant(JSONB(), "postgresql"), nullable=True),
        )
    present = {index["name"]: index["column_names"] for index in inspector.get_indexes(_TABLE)}
    for name, wanted in INDEXES.items():
        if name in present and present[name] != wanted:
            operations.drop_index(name, table_name=_TABLE)
        if present.get(name) != wanted:
            operations.create_index(name, _TABLE, wanted)
    command.stamp(alembic_config(connection), BASE_REVISION)


@contextmanager
def locked_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the schema lock, committed at the end (rolled back on error).

    SQLite file: a connection of its own that begins with ``BEGIN IMMEDIATE``, so a
    second process waits (busy timeout) and then sees the first one's work. In-memory
    SQLite: the engine's one shared connection. PostgreSQL: a transaction-scoped
    advisory lock.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and not is_sqlite_memory(url):
        locking = locking_engine(url)
        try:
            with locking.begin() as connection:
                yield connection
        finally:
            locking.dispose()
        return
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield connection
