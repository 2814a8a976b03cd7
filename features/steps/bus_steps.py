"""The runtime's event bus with the audit service attached."""

from __future__ import annotations

import json
import time

from audit_support import all_entries, same_json
from behave import given, then, when
from behave.runner import Context

from cleveragents import DomainEvent, ReactiveEventBus


@given("an event bus with the audit service attached")
def given_bus(context: Context) -> None:
    context.bus = ReactiveEventBus()
    context.detach = context.service.attach(context.bus)
    context.emitted = []
    context.emit_seconds = []


@given("another subscriber that counts every event")
def given_counting_subscriber(context: Context) -> None:
    context.counted = []
    context.bus.subscribe(context.counted.append)


def _emit(context: Context, event: DomainEvent) -> None:
    started = time.monotonic()
    context.bus.emit(event)
    context.emit_seconds.append(time.monotonic() - started)
    context.emitted.append(event)


@when("the runtime emits these events:")
def when_emit_table(context: Context) -> None:
    for row in context.table:
        _emit(
            context,
            DomainEvent(
                row["event_type"],
                json.loads(row["payload"]),
                actor=row["actor"] or None,
                resource=row["resource"] or None,
                correlation_id=row["correlation_id"] or None,
            ),
        )


@when('the runtime emits a "{event_type}" event')
def when_emit_one(context: Context, event_type: str) -> None:
    _emit(context, DomainEvent(event_type, {"emitted": len(context.emitted)}, actor="agent:bus"))


@when('the runtime emits a "{event_type}" event with the payload {payload}')
def when_emit_payload(context: Context, event_type: str, payload: str) -> None:
    _emit(context, DomainEvent(event_type, json.loads(payload), actor="agent:bus"))


@when("the audit service is detached from the bus")
def when_detach(context: Context) -> None:
    context.detach()


@then("every emit returned in less than {seconds:g} second")
def then_emits_quick(context: Context, seconds: float) -> None:
    slowest = max(context.emit_seconds)
    assert slowest < seconds, f"the slowest emit took {slowest:.3f} s"


@then("the service holds the emitted events, in the order they were emitted")
def then_holds_emitted(context: Context) -> None:
    entries = all_entries(context.service)
    assert len(entries) == len(context.emitted), f"{len(entries)} entries"
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    for entry, event in zip(entries, context.emitted, strict=True):
        assert entry.event_type == event.event_type, (entry, event)
        assert same_json(entry.details, event.payload), (entry.details, event.payload)
        assert entry.actor == event.actor, (entry, event)
        assert entry.resource == event.resource, (entry, event)
        assert entry.correlation_id == event.correlation_id, (entry, event)


@then('the service holds only the "{event_type}" events')
def then_holds_only(context: Context, event_type: str) -> None:
    entries = all_entries(context.service)
    expected = [e for e in context.emitted if e.event_type == event_type]
    assert [e.event_type for e in entries] == [e.event_type for e in expected], entries
    assert [e.details for e in entries] == [dict(e.payload) for e in expected], entries


@then('the service holds {count:d} "{event_type}" entry')
def then_holds_type(context: Context, count: int, event_type: str) -> None:
    assert context.service.count(event_type=event_type) == count
    assert context.service.count() == count, f"{context.service.count()} entries in all"


@then("the service holds one entry with the details {payload}")
def then_holds_details(context: Context, payload: str) -> None:
    entries = all_entries(context.service)
    assert len(entries) == 1, entries
    assert same_json(entries[0].details, json.loads(payload)), entries[0].details


@then("the other subscriber saw {count:d} events")
def then_subscriber_saw(context: Context, count: int) -> None:
    assert len(context.counted) == count, context.counted
