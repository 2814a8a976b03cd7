"""A burst of 100,000 entries: how long the writer takes to drain it, and memory under overload."""

from __future__ import annotations

import resource
import time

from ._common import TempService, record_one

BURST = 100_000


def _rss_mib() -> float:
    """Resident memory of this process now, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class DrainAfterBurst:
    """Record a burst of 100,000 into a queue that holds it all, then time the drain.

    The queue is sized to the burst, so record() never waits: the figure is how
    long the writer needs, after the last record() returned, until flush() says
    everything is committed.
    """

    unit = "s"
    timeout = 300

    def setup(self) -> None:
        self.fixture = TempService("async", audit_queue_maxsize=BURST)
        self.fixture.warm_up()

    def teardown(self) -> None:
        self.fixture.close()

    def track_drain_after_burst_s(self) -> float:
        """Seconds from the burst's last record() until flush() returns True."""
        service = self.fixture.service
        for _ in range(BURST):
            record_one(service)
        started = time.perf_counter()
        if not service.flush(timeout=120):
            raise RuntimeError(f"flush failed: {service.stats()}")
        return time.perf_counter() - started


class MemoryUnderOverload:
    """Record 200,000 entries flat out into the default queue of 10,000 ("block").

    The producer is faster than the writer, so the queue stays full and record()
    waits for room: memory must stay within the queue's bound, not grow with the
    number of entries recorded.
    """

    unit = "MiB"
    timeout = 300

    def setup(self) -> None:
        self.fixture = TempService("async")
        self.fixture.warm_up()

    def teardown(self) -> None:
        self.fixture.close()

    def track_rss_growth_under_overload_mib(self) -> float:
        """Resident memory after 200,000 overloading records minus before, in MiB."""
        service = self.fixture.service
        before = _rss_mib()
        for _ in range(2 * BURST):
            record_one(service)
        grown = _rss_mib() - before
        if not service.flush(timeout=120):
            raise RuntimeError(f"flush failed: {service.stats()}")
        return grown
