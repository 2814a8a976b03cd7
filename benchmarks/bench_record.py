"""record() latency on the caller's thread, async (queue + writer thread) vs sync (INSERT + COMMIT).

Every benchmark records the same tool-call entry (a ~200-byte details object)
into a service on a SQLite file in a temporary directory of its own, after a
warm-up of 200 entries that are flushed before anything is measured.
"""

from __future__ import annotations

from typing import ClassVar

from ._common import (
    ACTOR,
    CORRELATION_ID,
    DETAILS,
    EVENT_TYPE,
    MODES,
    RESOURCE,
    TempService,
    per_call_timer,
    percentile_us,
    record_latencies_ns,
)


class RecordLatency:
    """Percentiles of single record() calls, flat out, with the writer draining concurrently.

    Async makes more calls than the queue holds (20,000 against 10,000), so the
    writer is saturated and the tail shows what a burst costs the caller: waits
    for the GIL while the writer runs Python code, garbage collection, and waits
    for room once the queue is full. Sync makes 1,000 calls, each a commit.
    """

    params = MODES
    param_names = ("mode",)
    unit = "us"
    calls: ClassVar[dict[str, int]] = {"async": 20_000, "sync": 1_000}

    def setup(self, mode: str) -> None:
        self.fixture = TempService(mode)
        self.fixture.warm_up()

    def teardown(self, mode: str) -> None:
        self.fixture.close()

    def track_record_p50_us(self, mode: str) -> float:
        """Median time of one record() call, in microseconds."""
        return percentile_us(record_latencies_ns(self.fixture.service, self.calls[mode]), 50)

    def track_record_p99_us(self, mode: str) -> float:
        """99th percentile of the time of one record() call, in microseconds."""
        return percentile_us(record_latencies_ns(self.fixture.service, self.calls[mode]), 99)


class _RecordTime:
    """Mean time of one record() call, timed by asv over runs of ``calls`` calls.

    asv's timing runs with the garbage collector off, so this is the cost of the
    call itself; RecordLatency has the tail. Each sample starts from a fresh,
    warmed-up service, and the async runs stay within the queue's bound.
    """

    mode = "async"
    calls = 1_000
    timer = staticmethod(per_call_timer(calls))

    def setup(self) -> None:
        self.fixture = TempService(self.mode)
        self.fixture.warm_up()

    def teardown(self) -> None:
        self.fixture.close()

    def _run(self) -> None:
        record = self.fixture.service.record
        for _ in range(self.calls):
            record(
                EVENT_TYPE,
                actor=ACTOR,
                resource=RESOURCE,
                details=DETAILS,
                correlation_id=CORRELATION_ID,
            )


class RecordAsync(_RecordTime):
    mode = "async"
    calls = 1_000
    timer = staticmethod(per_call_timer(calls))

    def time_record_async(self) -> None:
        """record() on an asynchronous service: validate, encode, enqueue."""
        self._run()


class RecordSync(_RecordTime):
    mode = "sync"
    calls = 50
    timer = staticmethod(per_call_timer(calls))

    def time_record_sync(self) -> None:
        """record() on a synchronous service: validate, encode, INSERT + COMMIT."""
        self._run()
