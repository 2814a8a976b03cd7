"""An in-process event bus that calls its handlers synchronously in the emitting thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from cleveragents.domain.events import DomainEvent

__all__ = ["EventHandler", "ReactiveEventBus"]

EventHandler = Callable[[DomainEvent], object]

_log = structlog.get_logger("cleveragents.event_bus")
_MAX_ROUTES = 1024


@dataclass(frozen=True, slots=True, eq=False)
class _Subscription:
    handler: EventHandler
    event_type: str | None


class ReactiveEventBus:
    """Calls every matching handler in subscription order, in the emitting thread.

    A handler that raises is logged (with its traceback) and neither stops the
    handlers after it nor reaches the emitter. Subscribing, unsubscribing and
    emitting are safe from any number of threads: subscriptions are copied on
    write, so ``emit()`` takes no lock, and an emit that is under way when a
    handler is added or removed uses the handlers it started with.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[_Subscription, ...] = ()
        # event type -> matching handlers, computed on first emit of that type.
        self._routes: dict[str, tuple[EventHandler, ...]] = {}

    def subscribe(self, handler: EventHandler, event_type: str | None = None) -> Callable[[], None]:
        """Call ``handler`` for every event of ``event_type`` (None: every event).

        Returns a callable that removes this subscription; calling it again does nothing.
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        if event_type is not None and not isinstance(event_type, str):
            raise TypeError(f"event_type must be a str or None, not {type(event_type).__name__}")
        subscription = _Subscription(handler, event_type)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._routes = {}

        def unsubscribe() -> None:
            with self._lock:
                remaining = tuple(s for s in self._subscriptions if s is not subscription)
                if len(remaining) != len(self._subscriptions):
                    self._subscriptions = remaining
                    self._routes = {}

        return unsubscribe

    def emit(self, event: DomainEvent) -> None:
        """Call the handlers subscribed to ``event.event_type`` and to every event."""
        routes = self._routes
        handlers = routes.get(event.event_type)
        if handlers is None:
            handlers = self._route(event.event_type)
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                _log.exception(
                    "event_handler_failed",
                    event_type=event.event_type,
                    handler=getattr(handler, "__qualname__", repr(handler)),
                )

    def _route(self, event_type: str) -> tuple[EventHandler, ...]:
        with self._lock:
            if len(self._routes) >= _MAX_ROUTES:  # many distinct ad-hoc types: start over
                self._routes = {}
            handlers = tuple(
                s.handler
                for s in self._subscriptions
                if s.event_type is None or s.event_type == event_type
            )
            self._routes[event_type] = handlers
            return handlers
