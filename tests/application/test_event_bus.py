"""The in-process event bus: order, wildcards, unsubscribe, failing handlers, threads."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from structlog.testing import capture_logs

from cleveragents import DomainEvent, ReactiveEventBus
from tests.support import GENEROUS_S


def test_handlers_run_in_subscription_order() -> None:
    """Matching handlers are called in the order they subscribed, typed and wildcard mixed."""
    bus = ReactiveEventBus()
    calls: list[str] = []
    bus.subscribe(lambda e: calls.append("first:a"), "a")
    bus.subscribe(lambda e: calls.append("second:any"))
    bus.subscribe(lambda e: calls.append("third:b"), "b")
    bus.subscribe(lambda e: calls.append("fourth:a"), "a")
    bus.emit(DomainEvent("a"))
    assert calls == ["first:a", "second:any", "fourth:a"]
    calls.clear()
    bus.emit(DomainEvent("b"))
    assert calls == ["second:any", "third:b"]


def test_wildcard_handler_sees_every_event_and_typed_only_its_own() -> None:
    """event_type=None receives every event; a typed handler only its type."""
    bus = ReactiveEventBus()
    everything: list[str] = []
    only_tools: list[str] = []
    bus.subscribe(lambda e: everything.append(e.event_type))
    bus.subscribe(lambda e: only_tools.append(e.event_type), "tool.invoked")
    for kind in ["tool.invoked", "agent.started", "custom.thing", "tool.invoked"]:
        bus.emit(DomainEvent(kind))
    assert everything == ["tool.invoked", "agent.started", "custom.thing", "tool.invoked"]
    assert only_tools == ["tool.invoked", "tool.invoked"]


def test_emit_without_handlers_does_nothing() -> None:
    """Emitting an event nobody listens to is fine."""
    ReactiveEventBus().emit(DomainEvent("nobody.listens"))


def test_handler_receives_the_emitted_event_in_the_emitting_thread() -> None:
    """The handler gets the very event object, synchronously, on the emitter's thread."""
    bus = ReactiveEventBus()
    seen: list[tuple[DomainEvent, threading.Thread]] = []
    bus.subscribe(lambda e: seen.append((e, threading.current_thread())))
    event = DomainEvent("a", {"k": 1})
    bus.emit(event)
    assert seen == [(event, threading.current_thread())]


def test_subscription_after_an_emit_is_seen_by_the_next_emit() -> None:
    """A handler added after events of a type were emitted still gets later ones."""
    bus = ReactiveEventBus()
    calls: list[str] = []
    bus.subscribe(lambda e: calls.append("early"), "a")
    bus.emit(DomainEvent("a"))
    bus.subscribe(lambda e: calls.append("late"), "a")
    bus.subscribe(lambda e: calls.append("late-any"))
    bus.emit(DomainEvent("a"))
    assert calls == ["early", "early", "late", "late-any"]


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    """The callable subscribe() returns removes the handler; calling it again is harmless."""
    bus = ReactiveEventBus()
    calls: list[str] = []
    unsubscribe_a = bus.subscribe(lambda e: calls.append("a"), "x")
    bus.subscribe(lambda e: calls.append("b"), "x")
    bus.emit(DomainEvent("x"))
    unsubscribe_a()
    unsubscribe_a()
    bus.emit(DomainEvent("x"))
    assert calls == ["a", "b", "b"]


def test_same_handler_twice_is_called_twice_and_removed_once() -> None:
    """Each subscription is separate, even for the same handler."""
    bus = ReactiveEventBus()
    calls: list[str] = []

    def handler(event: DomainEvent) -> None:
        calls.append(event.event_type)

    first = bus.subscribe(handler)
    bus.subscribe(handler)
    bus.emit(DomainEvent("e"))
    assert calls == ["e", "e"]
    first()
    bus.emit(DomainEvent("f"))
    assert calls == ["e", "e", "f"]


def test_a_raising_handler_is_logged_and_others_still_run() -> None:
    """A failing handler is logged with structlog; later handlers and the emitter carry on."""
    bus = ReactiveEventBus()
    calls: list[str] = []

    def broken(event: DomainEvent) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe(lambda e: calls.append("before"))
    bus.subscribe(broken)
    bus.subscribe(lambda e: calls.append("after"))
    with capture_logs() as logs:
        bus.emit(DomainEvent("tool.invoked"))
        bus.emit(DomainEvent("tool.invoked"))
    assert calls == ["before", "after", "before", "after"]
    failures = [log for log in logs if log["event"] == "event_handler_failed"]
    assert len(failures) == 2
    assert failures[0]["log_level"] == "error"
    assert failures[0]["event_type"] == "tool.invoked"
    assert "broken" in failures[0]["handler"]
    assert failures[0].get("exc_info") is True


def test_subscribe_rejects_bad_arguments() -> None:
    """A handler must be callable and an event type a str or None."""
    bus = ReactiveEventBus()
    with pytest.raises(TypeError, match="callable"):
        bus.subscribe("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="event_type"):
        bus.subscribe(lambda e: None, 42)  # type: ignore[arg-type]


def test_many_distinct_event_types() -> None:
    """Thousands of distinct ad-hoc event types are all delivered correctly."""
    bus = ReactiveEventBus()
    counts: Counter[str] = Counter()
    bus.subscribe(lambda e: counts.update(["any"]))
    bus.subscribe(lambda e: counts.update(["typed"]), "type-7")
    for index in range(3000):
        bus.emit(DomainEvent(f"type-{index % 1500}"))
    assert counts == Counter(any=3000, typed=2)


def test_subscribe_and_emit_from_many_threads() -> None:
    """Threads that subscribe, emit and unsubscribe at once lose no delivery and raise nothing."""
    bus = ReactiveEventBus()
    lock = threading.Lock()
    witnessed = Counter[str]()

    def witness(event: DomainEvent) -> None:
        with lock:
            witnessed[event.event_type] += 1

    bus.subscribe(witness)
    threads_n, emits_n = 6, 1500
    start = threading.Barrier(threads_n)
    errors: list[BaseException] = []
    kept: list[Counter[str]] = []

    def worker(number: int) -> None:
        try:
            mine = Counter[str]()
            kept.append(mine)
            start.wait()
            for index in range(emits_n):
                if index % 100 == 0:
                    # Churn: a short-lived subscription, and one kept to the end.
                    drop = bus.subscribe(lambda e: None, f"t{number}")
                    bus.subscribe(lambda e, mine=mine: mine.update([e.event_type]), "final")
                    drop()
                bus.emit(DomainEvent(f"t{number}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert witnessed == Counter({f"t{n}": emits_n for n in range(threads_n)})
    bus.emit(DomainEvent("final"))
    # Every thread kept emits_n / 100 subscriptions to "final"; each saw the one event.
    assert [mine["final"] for mine in kept] == [emits_n // 100] * threads_n


def test_unsubscribe_during_emit_does_not_break_the_running_emit() -> None:
    """A handler that unsubscribes another mid-emit does not disturb that emit."""
    bus = ReactiveEventBus()
    calls: list[str] = []
    unsubscribe_second: list[object] = []

    def first(event: DomainEvent) -> None:
        calls.append("first")
        unsubscribe_second[0]()  # type: ignore[operator]

    bus.subscribe(first)
    unsubscribe_second.append(bus.subscribe(lambda e: calls.append("second")))
    bus.emit(DomainEvent("a"))
    bus.emit(DomainEvent("a"))
    assert calls == ["first", "second", "first"]
