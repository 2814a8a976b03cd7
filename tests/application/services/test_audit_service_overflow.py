"""A full queue: the 'raise' and 'block' policies; flush and reads while the writer is stuck.

The writer is made unable to progress the way it happens in production: another
connection holds the SQLite file's write lock (``BEGIN IMMEDIATE``). Releasing
the lock lets it go on, and everything accepted must then be persisted.
"""

from __future__ import annotations

import threading
import time

import pytest
from structlog.testing import capture_logs

from cleveragents import AuditLogEntry, AuditQueueFullError, AuditService
from tests.conftest import MakeService
from tests.support import GENEROUS_S, SQLiteWriteLock


def persisted_ids(service_entries: list[AuditLogEntry]) -> list[str]:
    """The event ids of entries, in order."""
    return [entry.event_id for entry in service_entries]


def record_until_rejected(
    service: AuditService, attempts: int, accepted: list[AuditLogEntry]
) -> tuple[AuditQueueFullError, float]:
    """Record until record() refuses; return the error and how long the refused call took."""
    for index in range(attempts):
        started = time.monotonic()
        try:
            accepted.append(service.record("tool.invoked", details={"i": index}))
        except AuditQueueFullError as exc:
            return exc, time.monotonic() - started
    pytest.fail(f"all {attempts} records were accepted: the queue never filled up")


def test_raise_policy_rejects_at_once_when_full(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """overflow='raise': a full queue makes record() raise AuditQueueFullError at once."""
    maxsize, batch = 3, 2
    service = make_service(
        database_url=sqlite_url,
        audit_queue_maxsize=maxsize,
        audit_batch_size=batch,
        audit_overflow="raise",
    )
    sqlite_lock.acquire()
    accepted: list[AuditLogEntry] = []
    with capture_logs() as logs:
        # The writer holds at most one batch; the queue at most maxsize: then it is full.
        error, _ = record_until_rejected(service, maxsize + batch + 1, accepted)
    assert isinstance(error, RuntimeError)
    assert "full" in str(error)
    assert maxsize <= len(accepted) <= maxsize + batch
    stats = service.stats()
    assert stats.rejected == 1
    assert stats.enqueued == len(accepted)
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == [
        "audit_entry_rejected"
    ]
    # Reads are not blocked by the stuck writer, and nothing is committed yet.
    assert service.count() == 0
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert persisted_ids(service.query()) == persisted_ids(accepted)
    # With room again, record() accepts entries.
    service.record("tool.completed")
    assert service.flush(GENEROUS_S)
    assert service.count() == len(accepted) + 1
    assert service.stats().rejected == 1


def test_block_policy_with_timeout_raises_after_about_that_time(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """audit_overflow='block' with audit_block_timeout: record() waits that long, then raises."""
    block_timeout = 0.3
    service = make_service(
        database_url=sqlite_url,
        audit_queue_maxsize=2,
        audit_batch_size=1,
        audit_overflow="block",
        audit_block_timeout=block_timeout,
    )
    sqlite_lock.acquire()
    accepted: list[AuditLogEntry] = []
    error, waited = record_until_rejected(service, 2 + 1 + 1, accepted)
    assert "stayed full" in str(error)
    assert block_timeout * 0.9 <= waited < block_timeout + GENEROUS_S
    assert service.stats().rejected == 1
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert persisted_ids(service.query()) == persisted_ids(accepted)


def test_block_policy_without_timeout_waits_for_room(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """overflow='block' without timeout: record() waits while full, then goes on."""
    service = make_service(
        database_url=sqlite_url, audit_queue_maxsize=1, audit_batch_size=1, audit_overflow="block"
    )
    sqlite_lock.acquire()
    done = threading.Event()
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            for index in range(6):
                service.record("tool.invoked", details={"i": index})
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    # The writer holds one row, the queue one more: the producer must be waiting.
    assert not done.wait(0.3), "record() returned although the queue was full"
    sqlite_lock.release()
    assert done.wait(GENEROUS_S)
    thread.join(GENEROUS_S)
    assert errors == []
    assert service.flush(GENEROUS_S)
    assert [entry.details["i"] for entry in service.query()] == list(range(6))
    assert service.stats().rejected == 0


def test_flush_with_timeout_returns_false_while_locked(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """flush(timeout) gives up after about timeout while the writer cannot commit."""
    service = make_service(database_url=sqlite_url)
    sqlite_lock.acquire()
    entry = service.record("agent.started")
    started = time.monotonic()
    assert service.flush(timeout=0.3) is False
    assert 0.25 <= time.monotonic() - started < GENEROUS_S
    assert service.flush(timeout=0) is False
    sqlite_lock.release()
    assert service.flush(GENEROUS_S) is True
    assert service.get(entry.event_id) is not None


def test_readers_are_not_blocked_by_a_stuck_writer(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """While the writer waits on a lock, count/query/get answer at once with what is committed."""
    service = make_service(database_url=sqlite_url)
    committed = service.record("session.started")
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    queued = service.record("agent.started")
    started = time.monotonic()
    assert service.count() == 1
    assert [entry.event_id for entry in service.query()] == [committed.event_id]
    assert service.get(queued.event_id) is None
    # The library's SQLite busy timeout is 5 s: a reader waiting on the lock would take that.
    assert time.monotonic() - started < 2.5
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert service.get(queued.event_id) is not None


def test_burst_is_group_committed(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """Entries queued while the writer was busy go in batches of audit_batch_size."""
    batch_size, total = 100, 2000
    service = make_service(database_url=sqlite_url, audit_batch_size=batch_size)
    sqlite_lock.acquire()
    for index in range(total):
        service.record("llm.request", details={"i": index})
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    stats = service.stats()
    assert stats.written == total
    assert stats.enqueued == total
    # The first batch may be a single row the writer took before the burst; the rest are full.
    assert stats.batches <= 1 + -(-(total - 1) // batch_size)
    assert stats.batches < stats.written
    assert stats.written + stats.failed + stats.queue_depth == stats.enqueued
    assert [entry.details["i"] for entry in service.query(limit=total)] == list(range(total))
