"""Redaction through AuditService: what reaches the stored row, on SQLite files and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cleveragents import AuditService, DomainEvent, ReactiveEventBus, Settings
from cleveragents.domain.redaction import MASK
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.table import audit_log
from tests.conftest import MakeService
from tests.redaction_strategies import (
    SECRET,
    plain_keys,
    plain_values,
    plant,
    secret_values,
    sensitive_keys,
)
from tests.support import GENEROUS_S

PAYLOAD: dict[str, Any] = {
    "tool": "http.get",
    "headers": {"Authorization": "Bearer hunter2hunter2", "Accept": "application/json"},
    "env": [{"OPENAI_API_KEY": "sk-proj-hunter2hunter2hunter2hunter2"}, {"HOME": "/home/a"}],
    "url": "postgresql://bob:hunter2@db.example/audit",
    "usage": {"prompt_tokens": 812, "completion_tokens": 143},
    "note": "called with sk-hunter2hunter2hunter2hunter2 as the key",
}
EXPECTED: dict[str, Any] = {
    "tool": "http.get",
    "headers": {"Authorization": MASK, "Accept": "application/json"},
    "env": [{"OPENAI_API_KEY": MASK}, {"HOME": "/home/a"}],
    "url": f"postgresql://{MASK}@db.example/audit",
    "usage": {"prompt_tokens": 812, "completion_tokens": 143},
    "note": f"called with {MASK} as the key",
}


def stored_texts(url: str, event_id: str, database: AuditDatabase | None = None) -> tuple[str, Any]:
    """The row's canonical details text and its details_json column, read on their own."""
    owned = database is None
    reader = open_database(url) if database is None else database
    try:
        with reader.connect() as connection:
            row = connection.execute(
                select(audit_log.c.details, audit_log.c.details_json).where(
                    audit_log.c.event_id == event_id
                )
            ).one()
    finally:
        if owned:
            reader.dispose()
    return row.details, row.details_json


@pytest.mark.parametrize("audit_async", [True, False], ids=["async", "sync"])
def test_secrets_never_reach_the_stored_row(
    make_service: MakeService, database_url: str, audit_async: bool
) -> None:
    """Sensitive keys and secret-looking strings are masked in the row, the entry and get()."""
    service = make_service(database_url=database_url, audit_async=audit_async)
    before = copy.deepcopy(PAYLOAD)
    entry = service.record("tool.invoked", details=PAYLOAD)
    assert before == PAYLOAD  # the caller's object is untouched
    assert entry.details == EXPECTED
    assert service.flush(GENEROUS_S)
    stored = service.get(entry.event_id)
    assert stored is not None
    assert stored.details == EXPECTED
    text, as_json = stored_texts(database_url, entry.event_id)
    assert "hunter2" not in text
    assert "hunter2" not in repr(as_json)


def test_redaction_can_be_turned_off(make_service: MakeService, sqlite_url: str) -> None:
    """With audit_redact=False the details are stored as given."""
    service = make_service(database_url=sqlite_url, audit_async=False, audit_redact=False)
    entry = service.record("tool.invoked", details=PAYLOAD)
    assert entry.details == PAYLOAD
    stored = service.get(entry.event_id)
    assert stored is not None
    assert stored.details == PAYLOAD


def test_keys_and_patterns_come_from_the_settings(
    make_service: MakeService, sqlite_url: str
) -> None:
    """audit_redact_keys and audit_redact_patterns replace the defaults."""
    service = make_service(
        database_url=sqlite_url,
        audit_async=False,
        audit_redact_keys=["ssn"],
        audit_redact_patterns=[r"\bacct-\d{4}\b"],
    )
    entry = service.record(
        "tool.invoked", details={"customer_ssn": "078-05-1120", "memo": "acct-1234", "token": "t"}
    )
    assert entry.details == {"customer_ssn": MASK, "memo": MASK, "token": "t"}


def test_keys_and_patterns_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """CLEVERAGENTS_AUDIT_REDACT_KEYS is comma-separated, ..._PATTERNS one pattern per line."""
    monkeypatch.setenv("CLEVERAGENTS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_ASYNC", "false")
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT_KEYS", "ssn, pin")
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT_PATTERNS", "acct-[0-9]{4}\nord-[0-9]{2,}")
    with AuditService() as service:
        entry = service.record(
            "tool.invoked", details={"ssn": 1, "card_pin": 2, "memo": "acct-1234 ord-77"}
        )
    assert entry.details == {"ssn": MASK, "card_pin": MASK, "memo": f"{MASK} {MASK}"}


def test_events_from_the_bus_are_redacted_and_left_alone(
    make_service: MakeService, sqlite_url: str
) -> None:
    """A DomainEvent's payload is masked in the entry; the event itself is not changed."""
    service = make_service(database_url=sqlite_url, audit_async=False)
    bus = ReactiveEventBus()
    service.attach(bus)
    payload = {"cookie": "session=abc", "path": "/"}
    event = DomainEvent("tool.invoked", payload, actor="agent:a", correlation_id="run-1")
    bus.emit(event)
    assert event.payload == {"cookie": "session=abc", "path": "/"}
    (entry,) = service.query(correlation_id="run-1")
    assert entry.details == {"cookie": MASK, "path": "/"}


def test_a_service_on_a_session_redacts_too(sqlite_url: str) -> None:
    """The synchronous session path masks the same way."""
    from sqlalchemy import create_engine

    engine = create_engine(sqlite_url)
    try:
        with Session(engine) as session:
            service = AuditService(Settings(database_url=sqlite_url), session=session)
            entry = service.record("tool.invoked", details={"password": "p"})
            assert entry.details == {"password": MASK}
            stored = service.get(entry.event_id)
            assert stored is not None
            assert stored.details == {"password": MASK}
            service.close()
    finally:
        engine.dispose()


# -- the property, through a real database ------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database for every example of the module: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite-file":
        yield f"sqlite:///{Path(tmp_path_factory.mktemp('redaction')) / 'audit.db'}"
        return
    import psycopg
    from psycopg import sql

    from tests.conftest import libpq_conninfo

    base = request.getfixturevalue("postgres_base_url")
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(libpq_conninfo(base), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield (
        make_url(base)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    with psycopg.connect(libpq_conninfo(base), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def shared_service(shared_url: str) -> Iterator[AuditService]:
    """A synchronous service on :func:`shared_url` with the default redaction."""
    service = AuditService(Settings(database_url=shared_url, audit_async=False))
    yield service
    service.close()


@pytest.fixture(scope="module")
def shared_reader(shared_url: str) -> Iterator[AuditDatabase]:
    """A connection pool of its own on :func:`shared_url`, to read rows as stored."""
    database = open_database(shared_url)
    yield database
    database.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=plain_values,
    key=sensitive_keys(),
    secret=secret_values,
    path=st.lists(st.integers(0, 5), max_size=3),
    other=st.dictionaries(plain_keys, plain_values, max_size=3),
)
def test_no_secret_under_a_sensitive_key_is_stored(
    shared_service: AuditService,
    shared_reader: AuditDatabase,
    shared_url: str,
    tree: Any,
    key: str,
    secret: Any,
    path: list[int],
    other: dict[str, Any],
) -> None:
    """Whatever the key's spelling and depth, the secret is not in the row; the rest is intact."""
    payload = {**other, **plant(tree, key, secret, path)}
    entry = shared_service.record("tool.invoked", details=payload)
    text, as_json = stored_texts(shared_url, entry.event_id, shared_reader)
    assert SECRET not in text
    assert SECRET not in repr(as_json)
    stored = shared_service.get(entry.event_id)
    assert stored is not None
    assert stored.details["tree"] == tree
    for name, value in other.items():
        assert stored.details[name] == value
