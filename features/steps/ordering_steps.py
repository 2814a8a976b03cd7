"""Recording from one or several threads, and the order entries are stored in."""

from __future__ import annotations

import threading
from collections import defaultdict

from audit_support import NUMBERED_EVENT_TYPE, all_entries
from behave import then, when
from behave.runner import Context

from cleveragents import AuditLogEntry

#: Most seconds a recording thread may take; a hung record() fails the scenario.
THREAD_TIMEOUT_S = 60.0


@when("one thread records {count:d} numbered entries")
def when_one_thread_records(context: Context, count: int) -> None:
    when_threads_record(context, 1, count)


@when("{threads:d} threads each record {count:d} numbered entries at the same time")
def when_threads_record(context: Context, threads: int, count: int) -> None:
    service = context.service
    start = threading.Barrier(threads)
    returned: dict[str, list[AuditLogEntry]] = {}
    errors: list[BaseException] = []

    def producer(actor: str) -> None:
        try:
            start.wait()
            returned[actor] = [
                service.record(NUMBERED_EVENT_TYPE, actor=actor, details={"seq": seq})
                for seq in range(count)
            ]
        except BaseException as exc:
            errors.append(exc)

    workers = [
        threading.Thread(target=producer, args=(f"thread-{n}",), name=f"producer-{n}")
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(THREAD_TIMEOUT_S)
        assert not worker.is_alive(), f"{worker.name} still records after {THREAD_TIMEOUT_S} s"
    assert not errors, errors
    context.returned_by_thread = returned


@then("each thread's entries are stored in the order that thread recorded them")
@then("the entries are stored in the order they were recorded")
def then_stored_in_order(context: Context) -> None:
    entries = all_entries(context.service)
    ids = [entry.id for entry in entries]
    assert ids == sorted(set(ids)), "query() did not return ascending, distinct ids"
    by_thread: dict[str, list[AuditLogEntry]] = defaultdict(list)
    for entry in entries:
        assert entry.actor is not None
        by_thread[entry.actor].append(entry)
    assert by_thread.keys() == context.returned_by_thread.keys(), by_thread.keys()
    for actor, stored in by_thread.items():
        returned = context.returned_by_thread[actor]
        assert [e.event_id for e in stored] == [e.event_id for e in returned], (
            f"{actor}: stored order differs from record() order"
        )
        assert [e.details["seq"] for e in stored] == list(range(len(returned))), actor


@then("their event_ids are unique and ascend in the order they were recorded")
def then_event_ids_ascend(context: Context) -> None:
    every_id = [e.event_id for entries in context.returned_by_thread.values() for e in entries]
    assert len(set(every_id)) == len(every_id), "event_ids repeat"
    for actor, entries in context.returned_by_thread.items():
        event_ids = [e.event_id for e in entries]
        assert event_ids == sorted(event_ids), f"{actor}: event_ids are not time-ordered"


@then("their created_at times never go backwards")
def then_created_at_ordered(context: Context) -> None:
    stored = {entry.event_id: entry.created_at for entry in all_entries(context.service)}
    for actor, returned in context.returned_by_thread.items():
        times = [entry.created_at for entry in returned]
        assert times == sorted(times), f"{actor}: created_at goes backwards"
        kept = [stored[entry.event_id] for entry in returned]
        assert kept == times, f"{actor}: the stored created_at is not the time of record()"
