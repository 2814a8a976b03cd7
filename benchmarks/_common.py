"""What the benchmarks share: the entry they record, a service on a temporary file, timers.

Nothing here is a benchmark (asv collects only ``time_*``, ``track_*``, ``peakmem_*``
and ``mem_*`` names), so the other modules can import it freely.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleveragents import AuditEventType, AuditService, DomainEvent, ReactiveEventBus, Settings

#: The two ways a service records: "async" queues for the writer thread, "sync"
#: does INSERT + COMMIT in record().
MODES = ("async", "sync")

#: The thread an asynchronous service runs; none may outlive a benchmark.
WRITER_THREAD_NAME = "cleveragents-audit-writer"

#: Entries recorded and flushed before anything is measured, so the first
#: measured call does not pay for imports, statement compilation or a cold pool.
WARM_UP_ENTRIES = 200

# A realistic entry: a tool call of an agent run, with a ~200-byte details object
# (205 bytes as the canonical JSON that is stored).
EVENT_TYPE = AuditEventType.TOOL_INVOKED
ACTOR = "agent:analyst"
RESOURCE = "tool:web.search"
CORRELATION_ID = "run-7f3c2a9e"
DETAILS: dict[str, Any] = {
    "tool": "web.search",
    "arguments": {"query": "quarterly revenue growth ACME Corp 2024", "max_results": 10},
    "status": "ok",
    "duration_ms": 412.7,
    "tokens": {"prompt": 1234, "completion": 256},
    "attempt": 1,
    "cached": False,
}
EVENT = DomainEvent(
    EVENT_TYPE.value,
    DETAILS,
    actor=ACTOR,
    resource=RESOURCE,
    correlation_id=CORRELATION_ID,
)


def pinned_settings(database_url: str, *, audit_async: bool, **overrides: Any) -> Settings:
    """Settings with the library's defaults, immune to ``CLEVERAGENTS_*`` variables and ``.env``.

    Keyword arguments win over the environment, so every field is passed
    explicitly: a developer's shell cannot change what is benchmarked.
    """
    values: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}
    values.update(database_url=database_url, audit_async=audit_async, **overrides)
    return Settings(**values)


class TempService:
    """An :class:`AuditService` on a SQLite file in a temporary directory of its own.

    ``close()`` closes the service (draining its queue), checks that no writer
    thread is left, and removes the directory.
    """

    def __init__(self, mode: str, **overrides: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self._directory = tempfile.TemporaryDirectory(prefix="cleveragents-bench-")
        try:
            url = f"sqlite:///{Path(self._directory.name) / 'audit.db'}"
            self.service = AuditService(
                pinned_settings(url, audit_async=mode == "async", **overrides)
            )
        except BaseException:
            self._directory.cleanup()
            raise

    def warm_up(self, entries: int = WARM_UP_ENTRIES) -> None:
        """Record ``entries`` and wait until they are committed."""
        for _ in range(entries):
            record_one(self.service)
        if not self.service.flush(timeout=60):
            raise RuntimeError(f"warm-up flush failed: {self.service.stats()}")

    def close(self) -> None:
        try:
            self.service.close()
        finally:
            self._directory.cleanup()
        leftover = [t.name for t in threading.enumerate() if t.name == WRITER_THREAD_NAME]
        if leftover:
            raise RuntimeError(f"writer threads still running after close(): {leftover}")


def record_one(service: AuditService) -> None:
    """Record the benchmark entry once."""
    service.record(
        EVENT_TYPE,
        actor=ACTOR,
        resource=RESOURCE,
        details=DETAILS,
        correlation_id=CORRELATION_ID,
    )


def record_latencies_ns(service: AuditService, calls: int) -> list[int]:
    """Call ``record()`` ``calls`` times back to back; each call's time in ns, sorted.

    The garbage collector stays enabled: its pauses are part of what the caller sees.
    Each figure includes one ``perf_counter_ns()`` call (well under 0.1 us).
    """
    record = service.record
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        record(
            EVENT_TYPE,
            actor=ACTOR,
            resource=RESOURCE,
            details=DETAILS,
            correlation_id=CORRELATION_ID,
        )
        samples[i] = clock() - start
    samples.sort()
    return samples


def emit_latencies_ns(bus: ReactiveEventBus, calls: int) -> list[int]:
    """Call ``bus.emit(EVENT)`` ``calls`` times back to back; each call's time in ns, sorted."""
    emit = bus.emit
    event = EVENT
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        emit(event)
        samples[i] = clock() - start
    samples.sort()
    return samples


def percentile_us(sorted_ns: list[int], percent: float) -> float:
    """The nearest-rank ``percent`` percentile of sorted nanosecond samples, in microseconds."""
    if not sorted_ns:
        raise ValueError("no samples")
    rank = max(1, math.ceil(percent / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1000


def persisted_per_second(service: AuditService, entries: int, *, timeout: float) -> int:
    """Entries per second from the first ``record()`` until ``flush()`` returns True.

    Raises when the flush fails or times out, or when fewer rows are committed
    than were recorded: a benchmark must not report entries that were lost.
    """
    before = service.count()
    record = service.record
    start = time.perf_counter()
    for _ in range(entries):
        record(
            EVENT_TYPE,
            actor=ACTOR,
            resource=RESOURCE,
            details=DETAILS,
            correlation_id=CORRELATION_ID,
        )
    if not service.flush(timeout=timeout):
        raise RuntimeError(f"flush() did not complete within {timeout} s: {service.stats()}")
    elapsed = time.perf_counter() - start
    persisted = service.count() - before
    if persisted != entries:
        raise RuntimeError(f"{entries} entries recorded but {persisted} persisted")
    return round(entries / elapsed)


def per_call_timer(calls: int) -> Callable[[], float]:
    """A clock for asv's ``timer`` attribute that runs ``calls`` times slower.

    A ``time_*`` benchmark that makes ``calls`` calls per run is then reported as
    the mean time of one call. (With a ``setup`` method, asv times one run per
    sample; one sub-microsecond call per sample would be mostly timer noise.)
    """

    def timer() -> float:
        return time.perf_counter() / calls

    return timer
