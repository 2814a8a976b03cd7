"""Many threads recording into one asynchronous service."""

from __future__ import annotations

import threading
from collections import defaultdict

from cleveragents import AuditLogEntry, AuditService
from tests.conftest import MakeService
from tests.support import GENEROUS_S

THREADS = 8
PER_THREAD = 2000


def read_all(service: AuditService, total: int) -> list[AuditLogEntry]:
    """Every committed entry, paging by id."""
    entries: list[AuditLogEntry] = []
    after_id = None
    while page := service.query(after_id=after_id, limit=5000):
        entries.extend(page)
        after_id = page[-1].id
    assert len(entries) == total
    return entries


def test_eight_threads_times_two_thousand_records(
    make_service: MakeService, database_url: str
) -> None:
    """8 threads x 2000 records: all persisted, each thread's order kept, event_ids unique."""
    service = make_service(database_url=database_url)
    start = threading.Barrier(THREADS)
    returned: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def producer(number: int) -> None:
        try:
            start.wait()
            returned[number] = [
                service.record(
                    "tool.invoked",
                    actor=f"thread-{number}",
                    details={"thread": number, "seq": seq},
                ).event_id
                for seq in range(PER_THREAD)
            ]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S * 3)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert service.flush(GENEROUS_S * 3)

    total = THREADS * PER_THREAD
    assert service.count() == total
    stored = read_all(service, total)
    ids = [entry.id for entry in stored]
    assert ids == sorted(ids)
    assert len(set(ids)) == total
    event_ids = [entry.event_id for entry in stored]
    assert len(set(event_ids)) == total
    assert set(event_ids) == {event_id for ids in returned.values() for event_id in ids}

    # Ascending id follows each thread's own sequence.
    by_thread: dict[int, list[int]] = defaultdict(list)
    by_thread_ids: dict[int, list[str]] = defaultdict(list)
    for entry in stored:
        by_thread[entry.details["thread"]].append(entry.details["seq"])
        by_thread_ids[entry.details["thread"]].append(entry.event_id)
        assert entry.actor == f"thread-{entry.details['thread']}"
    assert sorted(by_thread) == list(range(THREADS))
    for number in range(THREADS):
        assert by_thread[number] == list(range(PER_THREAD)), f"thread {number} out of order"
        assert by_thread_ids[number] == returned[number]

    stats = service.stats()
    assert stats.enqueued == total
    assert stats.written == total
    assert stats.failed == 0
    assert stats.queue_depth == 0
    assert stats.batches < stats.written
