"""Opening the audit database, per backend: URL checks, WAL, inserts, times, transient errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
)
from sqlalchemy.orm import Session

from cleveragents import AuditService, Settings
from cleveragents.domain.errors import AuditStorageError
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import (
    SQLITE_BUSY_TIMEOUT_S,
    AuditDatabase,
    create_schema,
    insert_one,
    open_database,
)
from cleveragents.infrastructure.persistence.errors import is_transient
from cleveragents.infrastructure.persistence.table import audit_log
from tests.support import SQLiteWriteLock, sqlite_path


def make_row(
    n: int = 0, *, event_id: str | None = None, created_at: datetime | None = None
) -> EntryRow:
    """A row as record() builds it."""
    return EntryRow(
        event_id or new_event_id(),
        "tool.invoked",
        f"actor-{n}",
        None,
        f'{{"n":{n}}}',
        None,
        created_at or datetime.now(UTC),
        None,
        None,
    )


@pytest.fixture
def database(database_url: str) -> Iterator[AuditDatabase]:
    """An opened audit database on the backend under test, disposed afterwards."""
    opened = open_database(database_url)
    yield opened
    opened.dispose()


def stored_event_ids(database: AuditDatabase) -> list[str]:
    """The event ids in the table, by ascending id."""
    with database.connect() as connection:
        return list(
            connection.execute(select(audit_log.c.event_id).order_by(audit_log.c.id)).scalars()
        )


# -- opening -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("::not a url::", "::not a url::"),
        ("oracle://scott:tiger@db/orcl", "oracle"),
        ("mysql+pymysql://root@localhost/audit", "mysql"),
        ("postgresql+nosuchdriver://u@h/d", "nosuchdriver"),
        ("sqlite:////no/such/dir/audit.db", "/no/such/dir/audit.db"),
        ("postgresql+psycopg://u:hunter2@127.0.0.1:1/audit", "127.0.0.1:1/audit"),
    ],
)
def test_unusable_urls_raise_storage_error_naming_them(url: str, named: str) -> None:
    """A bad, unsupported or unreachable URL raises AuditStorageError naming it, no password."""
    with pytest.raises(AuditStorageError) as caught:
        open_database(url)
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, RuntimeError)


def test_url_property_hides_the_password(sqlite_url: str) -> None:
    """AuditDatabase.url is safe to log."""
    database = open_database(sqlite_url)
    try:
        assert database.url == sqlite_url
    finally:
        database.dispose()


def test_sqlite_file_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    """Every connection to a SQLite file uses WAL and waits for locks instead of failing at once."""
    database = open_database(sqlite_url)
    try:
        with database.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            busy_ms = connection.execute(text("PRAGMA busy_timeout")).scalar_one()
            assert busy_ms == int(SQLITE_BUSY_TIMEOUT_S * 1000)
    finally:
        database.dispose()
    # WAL is a property of the file: other processes' connections see it too.
    with sqlite3.connect(sqlite_path(sqlite_url)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_opening_creates_the_table_only_when_missing(database_url: str) -> None:
    """Opening an existing audit database keeps its rows."""
    first = open_database(database_url)
    row = make_row()
    first.write_batch([row])
    first.dispose()
    second = open_database(database_url)
    try:
        assert stored_event_ids(second) == [row.event_id]
    finally:
        second.dispose()


def test_in_memory_database_is_shared_by_every_connection_of_one_engine() -> None:
    """With sqlite://, writes and reads go to one in-memory database."""
    database = open_database("sqlite://")
    try:
        row = make_row()
        database.write_batch([row])
        assert stored_event_ids(database) == [row.event_id]
        assert database.write_one(make_row(1)) == 2
    finally:
        database.dispose()


@pytest.mark.postgres
def test_plain_postgresql_scheme_means_psycopg_3(postgres_url: str) -> None:
    """postgresql:// URLs use psycopg 3, the driver this library ships with."""
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    database = open_database(plain)
    try:
        assert database.engine.dialect.driver == "psycopg"
        database.write_batch([make_row()])
    finally:
        database.dispose()


@pytest.mark.postgres
def test_each_postgres_test_gets_its_own_schema(postgres_url: str, postgres_schema: str) -> None:
    """The search_path option in the test URL really puts the audit table in the fresh schema."""
    with AuditService(Settings(database_url=postgres_url, audit_async=False)) as service:
        service.record("agent.started")
        assert service.count() == 1
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_schema()")).scalar_one() == (
                postgres_schema
            )
            schemas = connection.execute(
                text(
                    "SELECT table_schema FROM information_schema.tables"
                    " WHERE table_name = 'audit_log' AND table_schema = :schema"
                ),
                {"schema": postgres_schema},
            ).all()
            assert schemas == [(postgres_schema,)]
            callers = text("SELECT count(*) FROM audit_log WHERE event_type = 'agent.started'")
            assert connection.execute(callers).scalar_one() == 1
    finally:
        engine.dispose()


# -- writing -------------------------------------------------------------------------------


def test_write_batch_inserts_all_rows_in_order(database: AuditDatabase) -> None:
    """A batch's rows get ascending ids in batch order."""
    rows = [make_row(n) for n in range(250)]
    database.write_batch(rows)
    assert stored_event_ids(database) == [row.event_id for row in rows]


def test_a_row_stored_already_is_skipped(database: AuditDatabase) -> None:
    """Writing a batch again (a retry after an unclear commit) does not duplicate or fail."""
    rows = [make_row(n) for n in range(5)]
    database.write_batch(rows[:3])
    database.write_batch(rows)
    assert stored_event_ids(database) == [row.event_id for row in rows]


def test_write_one_returns_the_new_id(database: AuditDatabase) -> None:
    """write_one() commits a row and returns its database id."""
    first = database.write_one(make_row(1))
    second = database.write_one(make_row(2))
    assert second > first > 0


def test_a_batch_is_one_transaction(database: AuditDatabase) -> None:
    """When one row of a batch cannot be written, none of the batch is committed."""
    good = make_row(1)
    bad = make_row(2)._replace(event_type=None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(IntegrityError):
        database.write_batch([good, bad])
    assert stored_event_ids(database) == []


def test_times_are_stored_as_utc(database: AuditDatabase) -> None:
    """An aware time in any zone is stored and read back as the same instant, in UTC."""
    local = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-7)))
    row = make_row(created_at=local)
    database.write_batch([row])
    with database.connect() as connection:
        stored = connection.execute(select(audit_log.c.created_at)).scalar_one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)
    assert stored.tzinfo is not None


def test_naive_times_are_refused(database: AuditDatabase) -> None:
    """A naive created_at cannot be stored: its instant would be a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        database.write_batch([make_row(created_at=datetime(2024, 1, 1))])


def test_insert_through_a_session_and_create_schema(database_url: str) -> None:
    """create_schema() and insert_one() work through the caller's session, committing."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            create_schema(session)
            create_schema(session)  # idempotent
            new_id = insert_one(session, make_row(7), hmac_key=None)
            assert new_id > 0
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(audit_log)).scalar_one() == 1
    finally:
        engine.dispose()


# -- which errors are transient ------------------------------------------------------------


def test_a_real_sqlite_lock_error_is_transient(sqlite_url: str, short_busy_timeout: float) -> None:
    """The error SQLite raises while another connection holds the write lock is worth retrying."""
    database = open_database(sqlite_url)
    lock = SQLiteWriteLock(sqlite_path(sqlite_url))
    try:
        lock.acquire()
        with pytest.raises(OperationalError) as caught:
            database.write_batch([make_row()])
        assert "locked" in str(caught.value)
        assert is_transient(caught.value)
        lock.release()
        database.write_batch([make_row()])
    finally:
        lock.close()
        database.dispose()


def test_a_missing_table_is_not_transient(sqlite_url: str) -> None:
    """An error that a retry cannot fix (no such table) is not transient."""
    database = open_database(sqlite_url)
    try:
        with database.connect() as connection:
            connection.execute(text("DROP TABLE audit_log"))
            connection.commit()
        with pytest.raises(OperationalError) as caught:
            database.write_batch([make_row()])
        assert not is_transient(caught.value)
    finally:
        database.dispose()


def test_a_real_unreachable_postgres_error_is_transient() -> None:
    """A refused PostgreSQL connection is transient (the server may be restarting)."""
    engine = create_engine(
        "postgresql+psycopg://u@127.0.0.1:1/x", connect_args={"connect_timeout": 5}
    )
    try:
        with pytest.raises(OperationalError) as caught, engine.connect():
            pass
        assert is_transient(caught.value)
    finally:
        engine.dispose()


def test_a_real_unique_violation_is_not_transient(database_url: str) -> None:
    """A constraint violation from the database is not transient."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            create_schema(session)
            event_id = new_event_id()
            insert_one(session, make_row(event_id=event_id), hmac_key=None)
        with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
            connection.execute(
                audit_log.insert(),
                {
                    "event_id": event_id,
                    "event_type": "tool.invoked",
                    "details": "{}",
                    "created_at": datetime.now(UTC),
                },
            )
        assert not is_transient(caught.value)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("database is locked", True),
        ("database table is locked", True),
        ("Database Is Busy", True),
        ("no such table: audit_log", False),
        ("disk I/O error", False),
    ],
)
def test_sqlite_error_messages(message: str, transient: bool) -> None:
    """SQLite's lock and busy errors are transient; the others are not."""
    error = OperationalError("INSERT", {}, sqlite3.OperationalError(message))
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("name", "transient"),
    [
        ("SerializationFailure", True),
        ("DeadlockDetected", True),
        ("AdminShutdown", True),
        ("TooManyConnections", True),
        ("ConnectionFailure", True),
        ("UniqueViolation", False),
        ("UndefinedTable", False),
        ("NotNullViolation", False),
    ],
)
def test_postgres_sqlstates(name: str, transient: bool) -> None:
    """PostgreSQL serialization, deadlock, shutdown and connection errors are transient."""
    psycopg_errors = pytest.importorskip("psycopg.errors")
    error = DBAPIError("INSERT", {}, getattr(psycopg_errors, name)())
    assert is_transient(error) is transient


def test_disconnects_and_invalidated_connections_are_transient() -> None:
    """A dropped connection is worth retrying; a plain Python error is not."""
    assert is_transient(DisconnectionError("gone"))
    invalidated = DBAPIError("SELECT 1", {}, Exception("boom"), connection_invalidated=True)
    assert is_transient(invalidated)
    assert not is_transient(DBAPIError("SELECT 1", {}, Exception("boom")))
    assert not is_transient(ValueError("database is locked"))


def test_default_database_file_lands_in_the_cwd(tmp_path: Path) -> None:
    """The default URL is relative: the file is created in the working directory."""
    database = open_database(Settings().database_url)
    try:
        assert (tmp_path / "cleveragents_audit.db").is_file()
    finally:
        database.dispose()
