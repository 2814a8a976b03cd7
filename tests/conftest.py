"""Fixtures shared by the whole suite.

Databases are real: a SQLite file in the test's temporary directory, and, when
``CLEVERAGENTS_TEST_POSTGRES_URL`` names a server, a fresh PostgreSQL schema per
test (dropped afterwards). Without the variable the PostgreSQL tests are skipped
with that reason; with it and no server they fail.

Every service a fixture makes is closed when the test ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cleveragents import AuditService, Settings
from cleveragents.infrastructure.persistence import sqlite as sqlite_module
from tests.support import SQLiteWriteLock, sqlite_path

POSTGRES_URL_ENV = "CLEVERAGENTS_TEST_POSTGRES_URL"

MakeService = Callable[..., AuditService]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's CLEVERAGENTS_* variables and .env out of every test."""
    for name in list(os.environ):
        if name.startswith("CLEVERAGENTS_") and name != POSTGRES_URL_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# -- SQLite -------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """Make SQLite engines opened in this test give up on a held lock after 50 ms.

    The library waits 5 s for another connection's lock before it sees
    ``database is locked``; tests of the retry path should not wait that long.
    """
    monkeypatch.setattr(sqlite_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    return 0.05


# -- PostgreSQL ---------------------------------------------------------------------------


def libpq_conninfo(url: str) -> str:
    """The libpq URI psycopg takes for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The PostgreSQL server the tests may use; skip when unset, fail when unreachable."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set, so the PostgreSQL tests do not run")
    try:
        import psycopg
    except ImportError as exc:
        pytest.fail(f"{POSTGRES_URL_ENV} is set but psycopg is not installed: {exc}")
    try:
        with psycopg.connect(libpq_conninfo(url), connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"{POSTGRES_URL_ENV}={url!r} is set but the server cannot be reached: {exc}")
    return url


@pytest.fixture
def postgres_schema(postgres_base_url: str) -> Iterator[str]:
    """A fresh, empty schema ``t_<hex>``, dropped with everything in it afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex}"
    conninfo = libpq_conninfo(postgres_base_url)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield schema
    # Fixtures end in reverse order of setup: a test that asked for make_service before
    # database_url would have its services closed after this drop, their writers still
    # writing into the schema. Close them first.
    close_open_services()
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SET lock_timeout = '20s'")
        connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def postgres_url(postgres_base_url: str, postgres_schema: str) -> str:
    """A URL whose connections use only :func:`postgres_schema` (``search_path``)."""
    url = make_url(postgres_base_url).update_query_dict(
        {"options": f"-csearch_path={postgres_schema}"}
    )
    return url.render_as_string(hide_password=False)


# -- either backend -----------------------------------------------------------------------


@pytest.fixture(
    params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A fresh, empty audit database: a SQLite file, then a PostgreSQL schema."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return sqlite_url


# The services make_service made for the running test, newest last.
_open_services: list[AuditService] = []


def close_open_services() -> None:
    """Close the services of the running test, newest first (close() is idempotent)."""
    while _open_services:
        _open_services.pop().close()


@pytest.fixture
def make_service() -> Iterator[MakeService]:
    """Make services with ``Settings(**overrides)``; each is closed when the test ends."""

    def make(*, session: Session | None = None, **overrides: Any) -> AuditService:
        service = AuditService(Settings(**overrides), session=session)
        _open_services.append(service)
        return service

    yield make
    close_open_services()


@pytest.fixture
def sqlite_lock(make_service: MakeService, sqlite_url: str) -> Iterator[SQLiteWriteLock]:
    """A holder of :func:`sqlite_url`'s write lock, released before any service is closed.

    Make the service (which creates the file and its table) before acquiring it.
    """
    holder = SQLiteWriteLock(sqlite_path(sqlite_url))
    yield holder
    holder.close()
