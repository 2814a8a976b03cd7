"""AuditService.attach(bus): domain events on the bus become audit entries."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from cleveragents import AuditEventType, DomainEvent, ReactiveEventBus
from tests.conftest import MakeService
from tests.support import GENEROUS_S


def test_attach_records_every_audit_event_type(
    make_service: MakeService, database_url: str
) -> None:
    """Each AuditEventType DomainEvent becomes an entry with its payload, actor, resource, ids."""
    service = make_service(database_url=database_url)
    bus = ReactiveEventBus()
    service.attach(bus)
    for index, kind in enumerate(AuditEventType):
        bus.emit(
            DomainEvent(
                kind.value,
                {"index": index, "tags": ["a", "b"], "cost": 0.25},
                actor=f"agent:{index}",
                resource=f"res:{index}",
                correlation_id="run-42",
            )
        )
    assert service.flush(GENEROUS_S)
    stored = service.query(correlation_id="run-42")
    assert [entry.event_type for entry in stored] == list(AuditEventType)
    for index, entry in enumerate(stored):
        assert entry.details == {"index": index, "tags": ["a", "b"], "cost": 0.25}
        assert entry.actor == f"agent:{index}"
        assert entry.resource == f"res:{index}"
        assert entry.correlation_id == "run-42"


def test_attach_records_in_the_emitting_thread_without_waiting(
    make_service: MakeService, sqlite_url: str
) -> None:
    """The bus handler only enqueues: right after emit() the entry is queued."""
    service = make_service(database_url=sqlite_url)
    bus = ReactiveEventBus()
    service.attach(bus)
    bus.emit(DomainEvent("tool.invoked", {"tool": "search"}))
    assert service.stats().enqueued == 1
    assert service.flush(GENEROUS_S)
    assert service.count(event_type="tool.invoked") == 1


def test_events_of_other_types_are_not_recorded(make_service: MakeService, sqlite_url: str) -> None:
    """A DomainEvent whose type is not an AuditEventType is ignored by the audit service."""
    service = make_service(database_url=sqlite_url)
    bus = ReactiveEventBus()
    service.attach(bus)
    other: list[str] = []
    bus.subscribe(lambda event: other.append(event.event_type))
    with capture_logs() as logs:
        bus.emit(DomainEvent("custom.metric", {"value": 1}))
        bus.emit(DomainEvent("TOOL.INVOKED"))
        bus.emit(DomainEvent("agent.started"))
    assert service.flush(GENEROUS_S)
    assert [entry.event_type for entry in service.query()] == [AuditEventType.AGENT_STARTED]
    assert other == ["custom.metric", "TOOL.INVOKED", "agent.started"]
    assert [log for log in logs if log["log_level"] == "error"] == []


def test_detach_stops_recording_and_is_idempotent(
    make_service: MakeService, sqlite_url: str
) -> None:
    """The callable attach() returns unsubscribes the service; calling it twice is harmless."""
    service = make_service(database_url=sqlite_url)
    bus = ReactiveEventBus()
    detach = service.attach(bus)
    bus.emit(DomainEvent("agent.started"))
    detach()
    detach()
    bus.emit(DomainEvent("agent.completed"))
    assert service.flush(GENEROUS_S)
    assert [entry.event_type for entry in service.query()] == [AuditEventType.AGENT_STARTED]


def test_attach_twice_records_twice_and_detach_removes_one(
    make_service: MakeService, sqlite_url: str
) -> None:
    """Each attach() is its own subscription."""
    service = make_service(database_url=sqlite_url)
    bus = ReactiveEventBus()
    first = service.attach(bus)
    service.attach(bus)
    bus.emit(DomainEvent("agent.started"))
    first()
    bus.emit(DomainEvent("agent.completed"))
    assert service.flush(GENEROUS_S)
    assert service.count(event_type="agent.started") == 2
    assert service.count(event_type="agent.completed") == 1


def test_a_bad_payload_is_logged_and_does_not_reach_the_emitter(
    make_service: MakeService, sqlite_url: str
) -> None:
    """A non-JSON payload is refused, logged by the bus, and the emitter goes on."""
    service = make_service(database_url=sqlite_url)
    bus = ReactiveEventBus()
    service.attach(bus)
    after: list[str] = []
    bus.subscribe(lambda event: after.append(event.event_type))
    with capture_logs() as logs:
        bus.emit(DomainEvent("tool.invoked", {"args": {1, 2}}))
        bus.emit(DomainEvent("tool.completed", {"ok": True}))
    assert after == ["tool.invoked", "tool.completed"]
    failures = [log for log in logs if log["event"] == "event_handler_failed"]
    assert len(failures) == 1
    assert failures[0]["event_type"] == "tool.invoked"
    assert service.flush(GENEROUS_S)
    assert [entry.event_type for entry in service.query()] == [AuditEventType.TOOL_COMPLETED]


def test_attached_service_from_many_emitting_threads(
    make_service: MakeService, database_url: str
) -> None:
    """Several threads emitting on one bus: every event is recorded, each thread's in order."""
    service = make_service(database_url=database_url)
    bus = ReactiveEventBus()
    service.attach(bus)
    threads_n, events_n = 4, 500
    start = threading.Barrier(threads_n)

    def emitter(number: int) -> None:
        start.wait()
        for seq in range(events_n):
            bus.emit(DomainEvent("llm.request", {"thread": number, "seq": seq}, actor=f"t{number}"))

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S)
    assert service.flush(GENEROUS_S)
    for number in range(threads_n):
        stored = service.query(actor=f"t{number}", limit=events_n + 1)
        assert [entry.details["seq"] for entry in stored] == list(range(events_n))
