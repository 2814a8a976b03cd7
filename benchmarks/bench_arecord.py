"""``await arecord()`` against ``record()``: the same entry, side by side in one process.

Both record the benchmark's tool-call entry into one service, in alternating rounds
(``record()`` from plain code, then ``await arecord()`` from a coroutine on an
asyncio loop), each round flushed before the next. So the writer is never
saturated and the queue never full: this is the path an agent takes when the
database keeps up, where ``arecord()`` must cost what ``record()`` costs (it awaits
nothing then). ``ArecordSaturated`` then records flat out into a full queue, where
``record()`` waits for room on a condition and ``arecord()`` on the loop, never
blocking it (``tests/application/services/test_audit_service_async.py`` checks that).

``sync`` services run the INSERT + COMMIT in a worker thread for ``arecord()``: the
figure shows what the thread hop adds to a commit.

Run ``python -m benchmarks.bench_arecord`` to print the figures.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from cleveragents import AuditService

from ._common import (
    ACTOR,
    CORRELATION_ID,
    DETAILS,
    EVENT_TYPE,
    MODES,
    RESOURCE,
    TempService,
    percentile_us,
    record_latencies_ns,
)


async def arecord_latencies_ns(service: AuditService, calls: int) -> list[int]:
    """Await ``arecord()`` ``calls`` times back to back; each call's time in ns (unsorted)."""
    arecord = service.arecord
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        await arecord(
            EVENT_TYPE,
            actor=ACTOR,
            resource=RESOURCE,
            details=DETAILS,
            correlation_id=CORRELATION_ID,
        )
        samples[i] = clock() - start
    return samples


def _flushed(service: AuditService) -> None:
    if not service.flush(timeout=60):
        raise RuntimeError(f"flush failed: {service.stats()}")


def measure(mode: str, rounds: int, calls_per_round: int) -> tuple[list[int], list[int]]:
    """Sorted latencies in ns of ``record()`` and of ``await arecord()``, alternating rounds."""
    fixture = TempService(mode)
    try:
        fixture.warm_up()
        service = fixture.service
        records: list[int] = []
        arecords: list[int] = []
        with asyncio.Runner() as runner:
            runner.run(arecord_latencies_ns(service, 200))  # warm-up
            _flushed(service)
            for _ in range(rounds):
                records += record_latencies_ns(service, calls_per_round)
                _flushed(service)
                arecords += runner.run(arecord_latencies_ns(service, calls_per_round))
                _flushed(service)
    finally:
        fixture.close()
    records.sort()
    arecords.sort()
    return records, arecords


class ArecordLatency:
    """record() and await arecord() of the same entry: median and p99, in microseconds."""

    params = MODES
    param_names = ("mode",)
    unit = "us"
    rounds: ClassVar[dict[str, int]] = {"async": 10, "sync": 5}
    calls_per_round: ClassVar[dict[str, int]] = {"async": 2_000, "sync": 100}

    def setup(self, mode: str) -> None:
        self.records, self.arecords = measure(mode, self.rounds[mode], self.calls_per_round[mode])

    def track_record_p50_us(self, mode: str) -> float:
        """Median time of one record() call, in microseconds."""
        return percentile_us(self.records, 50)

    def track_record_p99_us(self, mode: str) -> float:
        """99th percentile of one record() call, in microseconds."""
        return percentile_us(self.records, 99)

    def track_arecord_p50_us(self, mode: str) -> float:
        """Median time of one await arecord(), in microseconds."""
        return percentile_us(self.arecords, 50)

    def track_arecord_p99_us(self, mode: str) -> float:
        """99th percentile of one await arecord(), in microseconds."""
        return percentile_us(self.arecords, 99)


def measure_saturated(rounds: int, calls: int) -> tuple[list[int], list[int]]:
    """Sorted latencies in ns of ``record()`` and ``await arecord()`` with the writer saturated.

    Each round records ``calls`` entries flat out (three times the default queue of
    10,000, overflow ``block``) into a fresh service, once with each call,
    alternating: once the queue is full, ``record()`` waits for room on a
    condition, ``arecord()`` on the loop (looking again every 1 to 20 ms).
    """
    records: list[int] = []
    arecords: list[int] = []
    for _ in range(rounds):
        for samples, use_arecord in ((records, False), (arecords, True)):
            fixture = TempService("async")
            try:
                fixture.warm_up()
                if use_arecord:
                    samples += asyncio.run(arecord_latencies_ns(fixture.service, calls))
                else:
                    samples += record_latencies_ns(fixture.service, calls)
                _flushed(fixture.service)
            finally:
                fixture.close()
    records.sort()
    arecords.sort()
    return records, arecords


class ArecordSaturated:
    """record() and await arecord() flat out into a full queue: median, p99 and p99.9 in us."""

    unit = "us"
    rounds = 2
    calls = 30_000

    def setup(self) -> None:
        self.records, self.arecords = measure_saturated(self.rounds, self.calls)

    def track_record_p50_us(self) -> float:
        """Median time of one record() call, in microseconds."""
        return percentile_us(self.records, 50)

    def track_record_p999_us(self) -> float:
        """99.9th percentile of one record() call (the waits for room), in microseconds."""
        return percentile_us(self.records, 99.9)

    def track_arecord_p50_us(self) -> float:
        """Median time of one await arecord(), in microseconds."""
        return percentile_us(self.arecords, 50)

    def track_arecord_p999_us(self) -> float:
        """99.9th percentile of one await arecord() (the waits for room), in microseconds."""
        return percentile_us(self.arecords, 99.9)


def main() -> None:
    """Print the figures of both modes."""
    print("record() vs await arecord(), same entry, alternating rounds, writer not saturated")
    print(f"{'mode':<8}{'calls':>8}{'record p50':>12}{'p99':>9}{'arecord p50':>13}{'p99':>9}")
    for mode in MODES:
        rounds, calls = ArecordLatency.rounds[mode], ArecordLatency.calls_per_round[mode]
        records, arecords = measure(mode, rounds, calls)
        print(
            f"{mode:<8}{rounds * calls:>8}"
            f"{percentile_us(records, 50):>12.2f}{percentile_us(records, 99):>9.2f}"
            f"{percentile_us(arecords, 50):>13.2f}{percentile_us(arecords, 99):>9.2f}"
        )
    rounds, calls = ArecordSaturated.rounds, ArecordSaturated.calls
    records, arecords = measure_saturated(rounds, calls)
    print(f"writer saturated: {rounds} x {calls} flat out into a queue of 10,000 (block)")
    for name, samples in (("record", records), ("arecord", arecords)):
        figures = "  ".join(
            f"p{percent:g} {percentile_us(samples, percent):.2f}" for percent in (50, 99, 99.9)
        )
        print(f"{name:<8}{figures}  max {samples[-1] / 1000:.2f} us")


if __name__ == "__main__":
    main()
