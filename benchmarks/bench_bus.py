"""What the audit handler costs the thread that emits on the event bus.

The runtime's ``ReactiveEventBus`` calls its handlers synchronously in the
emitting thread, so everything ``AuditService.attach`` adds to ``emit()`` is
time the agent waits. These benchmarks emit the same tool-call event (a
~200-byte payload) on a bus with no handler and on a bus with an asynchronous
audit service attached (SQLite file in a temporary directory).
"""

from __future__ import annotations

from collections.abc import Callable

from cleveragents import ReactiveEventBus

from ._common import (
    EVENT,
    WARM_UP_ENTRIES,
    TempService,
    emit_latencies_ns,
    per_call_timer,
    percentile_us,
)

HANDLERS = ("none", "audit")


class _AuditedBus:
    """A bus, with an async audit service attached when ``handler == "audit"``."""

    def __init__(self, handler: str) -> None:
        if handler not in HANDLERS:
            raise ValueError(f"handler must be one of {HANDLERS}, not {handler!r}")
        self.bus = ReactiveEventBus()
        self.fixture: TempService | None = None
        self._detach: Callable[[], None] | None = None
        if handler == "audit":
            self.fixture = TempService("async")
            self._detach = self.fixture.service.attach(self.bus)
        try:
            for _ in range(WARM_UP_ENTRIES):  # warms the bus's route cache and the service
                self.bus.emit(EVENT)
            if self.fixture is not None and not self.fixture.service.flush(timeout=60):
                raise RuntimeError(f"warm-up flush failed: {self.fixture.service.stats()}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._detach is not None:
            self._detach()
        if self.fixture is not None:
            self.fixture.close()


class EmitLatency:
    """Percentiles of single bus.emit() calls, 20,000 back to back.

    With the audit handler this is record() through the bus, with the writer
    draining concurrently and the queue filling up (as in RecordLatency).
    """

    params = HANDLERS
    param_names = ("handler",)
    unit = "us"
    calls = 20_000

    def setup(self, handler: str) -> None:
        self.audited = _AuditedBus(handler)

    def teardown(self, handler: str) -> None:
        self.audited.close()

    def track_emit_p50_us(self, handler: str) -> float:
        """Median time of one emit(), in microseconds."""
        return percentile_us(emit_latencies_ns(self.audited.bus, self.calls), 50)

    def track_emit_p99_us(self, handler: str) -> float:
        """99th percentile of the time of one emit(), in microseconds."""
        return percentile_us(emit_latencies_ns(self.audited.bus, self.calls), 99)


class EmitTime:
    """Mean time of one bus.emit(), timed by asv (garbage collector off) over runs of 1,000."""

    params = HANDLERS
    param_names = ("handler",)
    calls = 1_000
    timer = staticmethod(per_call_timer(calls))

    def setup(self, handler: str) -> None:
        self.audited = _AuditedBus(handler)

    def teardown(self, handler: str) -> None:
        self.audited.close()

    def time_emit(self, handler: str) -> None:
        """``calls`` emits of the tool-call event."""
        emit = self.audited.bus.emit
        event = EVENT
        for _ in range(self.calls):
            emit(event)


class EmitOverhead:
    """What attaching the audit service adds to one emit(): median with minus median without.

    Both buses live in the same process and are measured in alternating rounds
    (10 x 2,000 emits each), so drift in the machine's speed hits both alike.
    """

    unit = "us"
    alternations = 10
    calls_per_alternation = 2_000

    def setup(self) -> None:
        self.bare = _AuditedBus("none")
        try:
            self.audited = _AuditedBus("audit")
        except BaseException:
            self.bare.close()
            raise

    def teardown(self) -> None:
        try:
            self.audited.close()
        finally:
            self.bare.close()

    def track_emit_overhead_us(self) -> float:
        """p50 of emit() with the audit handler minus p50 of emit() with no handler."""
        bare: list[int] = []
        audited: list[int] = []
        for _ in range(self.alternations):
            bare += emit_latencies_ns(self.bare.bus, self.calls_per_alternation)
            audited += emit_latencies_ns(self.audited.bus, self.calls_per_alternation)
        bare.sort()
        audited.sort()
        return round(percentile_us(audited, 50) - percentile_us(bare, 50), 3)
