"""Writer errors are retried, counted and logged, never swallowed; flush/close never hang."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from cleveragents import AuditQueueFullError, AuditService, AuditWriterError
from cleveragents.application.services import audit_service as audit_service_module
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.writer import MAX_FAILURES_IN_ROW, AuditWriter
from tests.conftest import MakeService
from tests.support import GENEROUS_S, SQLiteWriteLock, call_bounded, wait_until


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The captured structlog events called ``name``."""
    return [log for log in logs if log["event"] == name]


def drop_audit_table(database_url: str) -> None:
    """Drop the audit table from a separate connection, so every later write fails for good."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE audit_log"))
    finally:
        engine.dispose()


# -- transient errors ----------------------------------------------------------------------


def test_a_held_lock_is_retried_and_nothing_is_lost(
    make_service: MakeService,
    sqlite_url: str,
    sqlite_lock: SQLiteWriteLock,
    short_busy_timeout: float,
) -> None:
    """'database is locked' is retried; once the lock goes, everything is persisted."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=60.0)
    sqlite_lock.acquire()
    with capture_logs() as logs:
        entries = [service.record("tool.invoked", details={"i": i}) for i in range(50)]
        wait_until(lambda: service.stats().retried >= 2, what="the writer to retry twice")
        assert service.flush(timeout=0.1) is False
        sqlite_lock.release()
        assert service.flush(GENEROUS_S) is True
    stats = service.stats()
    assert stats.written == 50
    assert stats.failed == 0
    assert stats.retried >= 2
    retries = events(logs, "audit_write_retry")
    assert len(retries) >= 2
    assert retries[0]["log_level"] == "warning"
    assert "database is locked" in retries[0]["error"]
    assert events(logs, "audit_entries_failed") == []
    assert [entry.event_id for entry in service.query()] == [entry.event_id for entry in entries]


def test_a_lock_outlasting_the_retry_deadline_is_counted_and_logged(
    make_service: MakeService,
    sqlite_url: str,
    sqlite_lock: SQLiteWriteLock,
    short_busy_timeout: float,
) -> None:
    """Entries locked out past audit_retry_deadline are counted in failed and logged."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3, audit_batch_size=10)
    sqlite_lock.acquire()
    with capture_logs() as logs:
        for index in range(25):
            service.record("tool.invoked", details={"i": index})
        assert service.flush(GENEROUS_S) is False
    stats = service.stats()
    assert stats.failed == 25
    assert stats.written == 0
    assert stats.retried > 0
    assert stats.enqueued == stats.written + stats.failed + stats.queue_depth
    failures = events(logs, "audit_entries_failed")
    assert failures
    assert all(log["log_level"] == "error" for log in failures)
    assert sum(log["count"] for log in failures) == 25
    assert "database is locked" in failures[0]["error"]
    assert failures[0]["event_ids"]
    # The service goes on working once the lock is gone.
    sqlite_lock.release()
    later = service.record("tool.completed")
    assert service.flush(GENEROUS_S) is True
    assert [entry.event_id for entry in service.query()] == [later.event_id]


# -- lasting errors ------------------------------------------------------------------------


def test_writes_that_fail_for_good_are_counted_and_logged(
    make_service: MakeService, database_url: str
) -> None:
    """With the table dropped, flush() is False and every entry is counted and logged."""
    service = make_service(database_url=database_url, audit_batch_size=8)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    drop_audit_table(database_url)
    with capture_logs() as logs:
        for index in range(20):
            service.record("tool.invoked", details={"i": index})
        assert service.flush(GENEROUS_S) is False
    stats = service.stats()
    assert stats.enqueued == 21
    assert stats.written == 1
    assert stats.failed == 20
    assert stats.queue_depth == 0
    assert stats.retried == 0  # a missing table is not worth retrying
    failures = events(logs, "audit_entries_failed")
    assert failures
    assert all(log["log_level"] == "error" for log in failures)
    assert sum(log["count"] for log in failures) == 20
    assert "audit_log" in failures[0]["error"]
    # A later flush with no new failure is True again: failures are reported once, not for ever.
    assert service.flush(GENEROUS_S) is True


def test_sync_write_errors_reach_the_caller_and_are_counted(
    make_service: MakeService, database_url: str
) -> None:
    """A synchronous record() that cannot be written raises, is logged, and counts as failed."""
    service = make_service(database_url=database_url, audit_async=False)
    service.record("session.started")
    drop_audit_table(database_url)
    with capture_logs() as logs, pytest.raises(Exception, match="audit_log"):
        service.record("tool.invoked")
    stats = service.stats()
    assert (stats.written, stats.failed) == (1, 1)
    assert events(logs, "audit_entry_failed")[0]["log_level"] == "error"


# -- close() never hangs -------------------------------------------------------------------


def test_close_returns_within_its_timeout_while_the_writer_is_stuck(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """close() gives up after audit_close_timeout_s, logs it, and the writer finishes later."""
    service = make_service(database_url=sqlite_url, audit_close_timeout_s=0.5)
    # writer.opened committed first: the writer is then stuck on the 30 entries, not on it.
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    for index in range(30):
        service.record("tool.invoked", details={"i": index})
    with capture_logs() as logs:
        started = time.monotonic()
        call_bounded(service.close, what="close() while the database is locked")
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 3.0
    assert service.closed
    assert [log["log_level"] for log in events(logs, "audit_close_incomplete")] == ["error"]
    # The lock goes away within the driver's busy timeout: the stuck write goes through.
    sqlite_lock.release()
    wait_until(lambda: service.stats().written == 30, what="the writer to finish")
    assert service.stats().failed == 0
    reader = make_service(database_url=sqlite_url, audit_async=False)
    assert reader.count() == 30


def test_close_cuts_retries_short_and_counts_what_is_left(
    make_service: MakeService,
    sqlite_url: str,
    sqlite_lock: SQLiteWriteLock,
    short_busy_timeout: float,
) -> None:
    """Retries stop at close()'s deadline; their entries are counted as failed and logged."""
    service = make_service(
        database_url=sqlite_url, audit_close_timeout_s=0.5, audit_retry_deadline=60.0
    )
    sqlite_lock.acquire()
    for index in range(30):
        service.record("tool.invoked", details={"i": index})
    with capture_logs() as logs:
        call_bounded(service.close, what="close() while retrying")
        wait_until(lambda: service.stats().failed == 30, what="the writer to give up")
    assert service.stats().written == 0
    assert sum(log["count"] for log in events(logs, "audit_entries_failed")) == 30


# -- the writer thread itself --------------------------------------------------------------


class HookedDatabase(AuditDatabase):
    """The real database, with a hook run on the writer thread before each batch is written."""

    hook: Callable[[Sequence[EntryRow]], None] = staticmethod(lambda rows: None)

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        type(self).hook(rows)
        super().write_batch(rows)


@pytest.fixture
def hooked_database(monkeypatch: pytest.MonkeyPatch) -> type[HookedDatabase]:
    """Services made in this test write through a fresh HookedDatabase subclass."""

    class Hooked(HookedDatabase):
        pass

    def open_hooked(url: str, *, hmac_key: bytes | None = None) -> AuditDatabase:
        real = open_database(url, hmac_key=hmac_key)
        return Hooked(real.engine, shared_connection=False, hmac_key=hmac_key)

    monkeypatch.setattr(audit_service_module, "open_database", open_hooked)
    return Hooked


def test_flush_and_close_from_the_writer_thread_return_at_once(
    make_service: MakeService, sqlite_url: str, hooked_database: type[HookedDatabase]
) -> None:
    """flush() and close() from code on the writer thread return instead of deadlocking."""
    service = make_service(database_url=sqlite_url)
    outcomes: dict[str, Any] = {}

    def hook(rows: Sequence[EntryRow]) -> None:
        if any(row.actor == "reenter" for row in rows) and "flush" not in outcomes:
            started = time.monotonic()
            outcomes["flush"] = service.flush()  # no timeout: must not wait for itself
            service.close()
            outcomes["elapsed"] = time.monotonic() - started

    hooked_database.hook = staticmethod(hook)  # type: ignore[method-assign]
    with capture_logs() as logs:
        service.record("tool.invoked", actor="reenter")
        # The writer goes on after the reentrant close(): the entry is written, then it stops.
        wait_until(lambda: service.stats().written == 1, what="the writer to write the entry")
    assert outcomes["flush"] is False
    assert outcomes["elapsed"] < GENEROUS_S / 2
    assert service.closed
    assert events(logs, "audit_flush_on_writer_thread")
    assert events(logs, "audit_stop_on_writer_thread")
    reader = make_service(database_url=sqlite_url, audit_async=False)
    assert reader.count(actor="reenter") == 1


def test_record_on_the_writer_thread_with_a_full_queue_raises(
    make_service: MakeService, sqlite_url: str, hooked_database: type[HookedDatabase]
) -> None:
    """Recording into a full queue from the writer thread raises instead of deadlocking."""
    service = make_service(
        database_url=sqlite_url, audit_queue_maxsize=1, audit_batch_size=1, audit_overflow="block"
    )
    outcomes: list[BaseException | None] = []

    def hook(rows: Sequence[EntryRow]) -> None:
        if any(row.actor == "trigger" for row in rows) and not outcomes:
            try:
                service.record("tool.invoked", actor="from-writer-1")
                service.record("tool.invoked", actor="from-writer-2")
            except AuditQueueFullError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)

    hooked_database.hook = staticmethod(hook)  # type: ignore[method-assign]
    service.record("tool.invoked", actor="trigger")
    wait_until(lambda: bool(outcomes), what="the hook to run")
    assert isinstance(outcomes[0], AuditQueueFullError)
    assert "writer thread" in str(outcomes[0])
    assert service.flush(GENEROUS_S)
    assert service.count() == 2
    assert service.stats().rejected == 1


def break_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every batch fail in the writer's own code, so that it gives up after a few.

    (An error of the database, even a SystemExit, no longer ends the writer: its rows
    are spooled and the writer goes on.)
    """

    def broken(writer: AuditWriter, batch: list[EntryRow]) -> None:
        raise SystemExit("the test breaks the writer")

    monkeypatch.setattr(AuditWriter, "_write", broken)


def record_until_refused(service: AuditService) -> int:
    """Record (and flush) until the writer gives up and record() raises; how many were taken."""
    before = service.stats().enqueued
    for _ in range(MAX_FAILURES_IN_ROW * 4):
        try:
            service.record("agent.failed")
        except AuditWriterError as exc:
            refusal = str(exc)
            break
        service.flush(GENEROUS_S)
    else:
        pytest.fail("the writer never gave up")
    assert "gave up after" in refusal
    return service.stats().enqueued - before


def test_a_dead_writer_makes_flush_and_a_full_record_return(
    make_service: MakeService, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer given up, flush() returns False and record() raises, promptly."""
    service = make_service(
        database_url=sqlite_url, audit_queue_maxsize=2, audit_overflow="block"
    )  # no block timeout: only the dead writer may end the wait
    service.record("agent.started")
    assert service.flush(GENEROUS_S)
    break_the_writer(monkeypatch)
    with capture_logs() as logs:
        call_bounded(lambda: record_until_refused(service), what="record() until refused")
        assert call_bounded(service.flush, what="flush() with a dead writer") is False
    assert [log["log_level"] for log in events(logs, "audit_writer_gave_up")] == ["critical"]
    # Nobody drains the queue any more: record() must not wait for ever, nor queue.
    started = time.monotonic()

    def fill_up() -> None:
        for _ in range(3):
            service.record("agent.completed")

    with pytest.raises(AuditWriterError, match="SystemExit: the test breaks the writer"):
        call_bounded(fill_up, what="record() into a dead writer's queue")
    assert time.monotonic() - started < GENEROUS_S / 2
    assert service.stats().queue_depth == 0
    assert service.count() == 1
    call_bounded(service.close, what="close() with a dead writer")


def test_entries_a_dead_writer_never_wrote_are_counted_and_logged(
    make_service: MakeService, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries a writer that gave up never wrote are counted in failed, spooled and logged."""
    service = make_service(database_url=sqlite_url)
    break_the_writer(monkeypatch)
    with capture_logs() as logs:
        accepted = record_until_refused(service)
        call_bounded(service.close, what="close() with a dead writer")
    stats = service.stats()
    assert stats.enqueued == accepted
    assert stats.written == 0
    assert stats.failed == stats.spooled == accepted
    logged = [log for log in logs if log["event"] == "audit_entries_failed"]
    assert sum(log.get("count", 0) for log in logged) == accepted
