"""AuditService: record, flush, close, sync and async modes, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cleveragents import (
    AuditEventType,
    AuditLogEntry,
    AuditService,
    AuditServiceClosedError,
    Settings,
)
from cleveragents.domain.errors import AuditStorageError
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES
from cleveragents.infrastructure.persistence.table import audit_log
from tests.conftest import MakeService
from tests.support import GENEROUS_S, call_bounded

# The caller's rows in audit_log, not the library's own (writer.opened, writer.closed, ...).
CALLER_ROWS = audit_log.c.event_type.not_in(sorted(SYSTEM_EVENT_TYPES))


def stored_equals_returned(stored: AuditLogEntry | None, returned: AuditLogEntry) -> None:
    """What get()/query() read back is what record() returned, with the real id."""
    assert stored is not None
    assert stored.id > 0
    assert stored == dataclasses.replace(returned, id=stored.id)


# -- async record --------------------------------------------------------------------------


def test_async_record_returns_a_pending_entry(make_service: MakeService, database_url: str) -> None:
    """An async record() returns at once with id -1 and every field it was given."""
    service = make_service(database_url=database_url)
    assert service.is_async
    entry = service.record(
        AuditEventType.TOOL_INVOKED,
        actor="agent:a",
        resource="tool:search",
        details={"query": "q", "n": 3},
        correlation_id="run-1",
    )
    assert entry.id == -1
    assert entry.is_pending
    assert entry.event_type is AuditEventType.TOOL_INVOKED
    assert (entry.actor, entry.resource, entry.correlation_id) == (
        "agent:a",
        "tool:search",
        "run-1",
    )
    assert entry.details == {"query": "q", "n": 3}


def test_event_ids_are_unique_time_ordered_uuids(
    make_service: MakeService, sqlite_url: str
) -> None:
    """Each record() gets a new UUIDv7 event_id, later ones sorting after earlier ones."""
    service = make_service(database_url=sqlite_url)
    ids = [service.record("agent.started").event_id for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(uuid.UUID(event_id).version == 7 for event_id in ids)


def test_created_at_is_now_in_utc(make_service: MakeService, database_url: str) -> None:
    """created_at is the time of the record() call, timezone-aware UTC, and stored as such."""
    service = make_service(database_url=database_url)
    before = datetime.now(UTC)
    entry = service.record("agent.started")
    after = datetime.now(UTC)
    assert entry.created_at.tzinfo is not None
    assert entry.created_at.utcoffset() == timedelta(0)
    assert before <= entry.created_at <= after
    assert service.flush(GENEROUS_S)
    stored = service.get(entry.event_id)
    assert stored is not None
    assert stored.created_at == entry.created_at
    assert stored.created_at.utcoffset() == timedelta(0)


def test_flush_makes_every_earlier_record_readable(
    make_service: MakeService, database_url: str
) -> None:
    """After flush() returns True, everything recorded before it can be read back as recorded."""
    service = make_service(database_url=database_url)
    entries = [
        service.record(
            kind,
            actor=f"agent:{index}",
            resource="res",
            details={"index": index, "nested": {"list": [index, None, "x"]}},
            correlation_id="run-7",
        )
        for index, kind in enumerate(AuditEventType)
    ]
    assert service.flush(GENEROUS_S) is True
    assert service.count() == len(entries)
    for entry in entries:
        stored_equals_returned(service.get(entry.event_id), entry)


def test_record_after_flush_is_persisted(make_service: MakeService, database_url: str) -> None:
    """flush() does not stop the writer: entries recorded afterwards are persisted too."""
    service = make_service(database_url=database_url)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    later = service.record("session.ended")
    assert service.flush(GENEROUS_S)
    assert service.count() == 2
    stored_equals_returned(service.get(later.event_id), later)
    for round_number in range(5):
        service.record("tool.invoked", details={"round": round_number})
        assert service.flush(GENEROUS_S)
    assert service.count() == 7


def test_flush_with_nothing_recorded_returns_true(
    make_service: MakeService, sqlite_url: str
) -> None:
    """flush() on an idle service returns True at once."""
    service = make_service(database_url=sqlite_url)
    assert service.flush() is True
    assert service.flush(0.5) is True


def test_single_thread_order_is_kept(make_service: MakeService, database_url: str) -> None:
    """Entries from one thread get ascending ids in the order they were recorded."""
    service = make_service(database_url=database_url, audit_batch_size=64)
    recorded = [service.record("tool.invoked", details={"seq": n}).event_id for n in range(1500)]
    assert service.flush(GENEROUS_S)
    stored: list[AuditLogEntry] = []
    after_id = None
    while page := service.query(after_id=after_id, limit=400):
        stored.extend(page)
        after_id = page[-1].id
    assert [entry.event_id for entry in stored] == recorded
    assert [entry.details["seq"] for entry in stored] == list(range(1500))
    ids = [entry.id for entry in stored]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    created = [entry.created_at for entry in stored]
    assert created == sorted(created)


def test_flush_from_concurrent_producers_is_a_barrier(
    make_service: MakeService, database_url: str
) -> None:
    """Each producer thread's flush() covers everything that thread recorded before it."""
    service = make_service(database_url=database_url, audit_batch_size=50)
    errors: list[BaseException] = []

    def producer(number: int) -> None:
        try:
            for index in range(200):
                entry = service.record("tool.invoked", actor=f"t{number}", details={"i": index})
                if index % 40 == 39:
                    assert service.flush(GENEROUS_S)
                    assert service.get(entry.event_id) is not None
                    assert service.count(actor=f"t{number}") == index + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S * 2)
    assert errors == []
    assert service.count() == 800


# -- sync record ---------------------------------------------------------------------------


def test_sync_record_returns_the_persisted_entry(
    make_service: MakeService, database_url: str
) -> None:
    """With audit_async=False, record() commits and returns the entry with its real id."""
    service = make_service(database_url=database_url, audit_async=False)
    assert not service.is_async
    first = service.record("agent.started", actor="a", details={"k": [1, 2]})
    second = service.record("agent.completed", actor="a")
    assert first.id > 0
    assert second.id > first.id
    assert not first.is_pending
    assert service.count() == 2
    stored_equals_returned(service.get(first.event_id), first)
    assert service.flush() is True
    stats = service.stats()
    assert (stats.enqueued, stats.written, stats.failed, stats.queue_depth) == (2, 2, 0, 0)


def test_injected_session_is_synchronous_and_sees_the_row_at_once(
    make_service: MakeService, database_url: str
) -> None:
    """With session=, record() writes through that session and the row is visible there at once."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            # audit_async=True is ignored: an injected session always means synchronous.
            service = make_service(database_url=database_url, audit_async=True, session=session)
            assert not service.is_async
            entry = service.record("permission.denied", actor="agent:x", details={"rule": "r1"})
            assert entry.id > 0
            row = session.execute(
                select(audit_log.c.id, audit_log.c.actor).where(
                    audit_log.c.event_id == entry.event_id
                )
            ).one()
            assert (row.id, row.actor) == (entry.id, "agent:x")
            assert service.count() == 1
            stored_equals_returned(service.get(entry.event_id), entry)
            service.close()
            # The caller's session is the caller's: still usable after close().
            assert session.execute(select(audit_log.c.id).where(CALLER_ROWS)).scalar_one() == (
                entry.id
            )
        # Committed, so another connection sees it too.
        with engine.connect() as connection:
            stored = connection.execute(select(audit_log.c.event_id).where(CALLER_ROWS))
            assert stored.scalar_one() == entry.event_id
    finally:
        engine.dispose()


def test_in_memory_sqlite_works_async(make_service: MakeService) -> None:
    """sqlite:// (one database per connection) works with the writer thread."""
    service = make_service(database_url="sqlite://")
    assert service.is_async
    entries = [service.record("llm.request", details={"n": n}) for n in range(300)]
    assert service.flush(GENEROUS_S)
    assert service.count() == 300
    assert [e.event_id for e in service.query(limit=1000)] == [e.event_id for e in entries]
    stored_equals_returned(service.get(entries[17].event_id), entries[17])


def test_in_memory_sqlite_works_sync(make_service: MakeService) -> None:
    """sqlite:// works synchronously too, returning real ids."""
    service = make_service(database_url="sqlite://", audit_async=False)
    entry = service.record("llm.response", details={"tokens": 12})
    assert entry.id == 2  # after the service's writer.opened
    assert service.count() == 1
    stored_equals_returned(service.get(entry.event_id), entry)


def test_in_memory_databases_are_separate_per_service(make_service: MakeService) -> None:
    """Two in-memory services do not see each other's entries."""
    first = make_service(database_url="sqlite://")
    second = make_service(database_url="sqlite://")
    first.record("agent.started")
    assert first.flush(GENEROUS_S)
    assert first.count() == 1
    assert second.count() == 0


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("audit_async", [True, False])
@pytest.mark.parametrize(
    "event_type", ["agent.unknown", "Agent.Started", "", None, 7, object()], ids=repr
)
def test_unknown_event_type_raises_value_error(
    make_service: MakeService, sqlite_url: str, audit_async: bool, event_type: Any
) -> None:
    """An event type that is not an AuditEventType raises ValueError and records nothing."""
    service = make_service(database_url=sqlite_url, audit_async=audit_async)
    with pytest.raises(ValueError, match="unknown audit event type"):
        service.record(event_type)
    kept = service.record("agent.started")
    assert service.flush(GENEROUS_S)
    assert service.count() == 1
    assert service.stats().enqueued == 1
    assert service.get(kept.event_id) is not None


def test_event_type_as_member_or_value(make_service: MakeService, sqlite_url: str) -> None:
    """Both AuditEventType.X and its string value are accepted and stored the same way."""
    service = make_service(database_url=sqlite_url)
    by_member = service.record(AuditEventType.CONFIG_CHANGED)
    by_value = service.record("config.changed")
    assert by_member.event_type is by_value.event_type is AuditEventType.CONFIG_CHANGED
    assert service.flush(GENEROUS_S)
    assert service.count(event_type=AuditEventType.CONFIG_CHANGED) == 2


@pytest.mark.parametrize("field", ["actor", "resource", "correlation_id"])
@pytest.mark.parametrize("value", [1, b"bytes", ["a"], uuid.UUID(int=1)], ids=repr)
def test_non_str_text_fields_raise_type_error(
    make_service: MakeService, sqlite_url: str, field: str, value: Any
) -> None:
    """actor, resource and correlation_id must be str or None."""
    service = make_service(database_url=sqlite_url)
    with pytest.raises(TypeError, match=field):
        service.record("agent.started", **{field: value})
    assert service.stats().enqueued == 0


# -- lifecycle -----------------------------------------------------------------------------


@pytest.mark.parametrize("audit_async", [True, False])
def test_record_after_close_raises_closed_error(
    make_service: MakeService, sqlite_url: str, audit_async: bool
) -> None:
    """After close(), record() raises AuditServiceClosedError, which is a RuntimeError."""
    service = make_service(database_url=sqlite_url, audit_async=audit_async)
    service.record("agent.started")
    service.close()
    assert service.closed
    with pytest.raises(AuditServiceClosedError):
        service.record("agent.completed")
    with pytest.raises(RuntimeError):
        service.record("agent.completed")
    assert issubclass(AuditServiceClosedError, RuntimeError)


def test_reads_after_close_raise_closed_error(make_service: MakeService, sqlite_url: str) -> None:
    """A closed service refuses reads too, with the same error."""
    service = make_service(database_url=sqlite_url)
    service.close()
    with pytest.raises(AuditServiceClosedError):
        service.count()
    with pytest.raises(AuditServiceClosedError):
        service.query()
    with pytest.raises(AuditServiceClosedError):
        service.get(str(uuid.uuid4()))


def test_close_persists_what_was_queued_and_is_idempotent(
    make_service: MakeService, database_url: str
) -> None:
    """close() drains the queue; closing again does nothing; stats stay readable."""
    service = make_service(database_url=database_url)
    for index in range(1000):
        service.record("tool.completed", details={"i": index})
    service.close()
    service.close()
    assert service.closed
    stats = service.stats()
    assert stats.written == 1000
    assert stats.queue_depth == 0
    assert isinstance(call_bounded(service.flush, timeout=5.0, what="flush() after close()"), bool)
    with AuditService(Settings(database_url=database_url, audit_async=False)) as reader:
        assert reader.count() == 1000


def test_service_is_a_context_manager(database_url: str) -> None:
    """with AuditService(...) as audit: closes it on exit, with everything persisted."""
    with AuditService(Settings(database_url=database_url)) as service:
        entry = service.record("session.started", actor="user:1")
    assert service.closed
    with AuditService(Settings(database_url=database_url)) as reader:
        stored_equals_returned(reader.get(entry.event_id), entry)


def test_context_manager_closes_on_error(sqlite_url: str) -> None:
    """An exception in the with-block still closes the service and persists what was recorded."""
    used: list[AuditService] = []

    def fail_inside() -> None:
        with AuditService(Settings(database_url=sqlite_url)) as service:
            used.append(service)
            service.record("agent.failed")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside()
    assert used[0].closed
    with AuditService(Settings(database_url=sqlite_url)) as reader:
        assert reader.count(event_type="agent.failed") == 1


def test_default_settings_use_an_embedded_file_in_the_cwd(tmp_path: Path) -> None:
    """AuditService() with no settings works with nothing running: a SQLite file in the cwd."""
    assert Path.cwd() == tmp_path
    with AuditService() as service:
        assert service.is_async
        service.record("agent.started")
    assert (tmp_path / "cleveragents_audit.db").is_file()
    with AuditService() as reader:
        assert reader.count() == 1


def test_env_var_switches_the_service_to_sync(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """CLEVERAGENTS_AUDIT_ASYNC=false and CLEVERAGENTS_DATABASE_URL configure AuditService()."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_ASYNC", "false")
    monkeypatch.setenv("CLEVERAGENTS_DATABASE_URL", sqlite_url)
    with AuditService() as service:
        assert not service.is_async
        assert service.settings.database_url == sqlite_url
        assert service.record("agent.started").id == 2  # after writer.opened


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("definitely not a url", "definitely not a url"),
        ("mysql://user@localhost/db", "mysql"),
        ("sqlite:////nonexistent-dir/deeper/audit.db", "/nonexistent-dir/deeper/audit.db"),
        ("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nowhere", "127.0.0.1:1/nowhere"),
    ],
)
@pytest.mark.parametrize("audit_async", [True, False])
def test_bad_database_url_fails_in_the_constructor(url: str, named: str, audit_async: bool) -> None:
    """A malformed, unsupported or unreachable URL fails in AuditService(...), naming it."""
    started = time.monotonic()
    with pytest.raises(AuditStorageError) as caught:
        AuditService(Settings(database_url=url, audit_async=audit_async))
    assert named in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert time.monotonic() - started < GENEROUS_S


def test_repr_says_mode_and_state(make_service: MakeService, sqlite_url: str) -> None:
    """repr() shows async/sync, the URL and open/closed, for logs."""
    service = make_service(database_url=sqlite_url)
    assert "async" in repr(service)
    assert "open" in repr(service)
    service.close()
    assert "closed" in repr(service)


# -- stats ---------------------------------------------------------------------------------


def test_stats_add_up(make_service: MakeService, database_url: str) -> None:
    """enqueued = written + failed + queue_depth, and batches count the commits."""
    service = make_service(database_url=database_url, audit_batch_size=100)
    empty = service.stats()
    assert (empty.enqueued, empty.written, empty.failed, empty.queue_depth, empty.batches) == (
        0,
        0,
        0,
        0,
        0,
    )
    for index in range(2500):
        service.record("tool.invoked", details={"i": index})
        if index == 1000:
            mid = service.stats()
            assert mid.enqueued == 1001
            assert mid.written + mid.failed + mid.queue_depth <= mid.enqueued
    assert service.flush(GENEROUS_S)
    stats = service.stats()
    assert stats.enqueued == 2500
    assert stats.written == 2500
    assert stats.failed == 0
    assert stats.rejected == 0
    assert stats.retried == 0
    assert stats.queue_depth == 0
    assert 25 <= stats.batches <= 2500
    assert service.count() == 2500
