"""The asyncio API: arecord, aflush, aclose and ``async with``, and a loop that never freezes.

The writer is made to stall as in production: another connection holds the SQLite
file's write lock. A heartbeat task on the same loop ticks every 10 ms meanwhile;
its largest gap shows whether anything blocked the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from cleveragents import (
    AuditEventType,
    AuditQueueFullError,
    AuditService,
    AuditServiceClosedError,
    Settings,
)
from cleveragents.domain.entry import PENDING_ID
from tests.conftest import MakeService
from tests.support import GENEROUS_S, SQLiteWriteLock

T = TypeVar("T")

#: How long the tests hold the database's write lock (the issue's scenario).
LOCKED_S = 3.0
#: The heartbeat's period, and the most a tick may be late before the loop counts as blocked.
TICK_S = 0.010
MAX_GAP_S = 0.100


class Heartbeat:
    """Ticks every 10 ms on the running loop and remembers the largest gap between ticks.

    The first gap counts from :meth:`start`, and :meth:`stop` counts the last one, so a
    loop frozen before the first tick or after the last one shows too.
    """

    def __init__(self) -> None:
        self.ticks = 0
        self._largest_gap_s = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def largest_gap_s(self) -> float:
        """The largest gap between ticks so far, the one under way included."""
        return max(self._largest_gap_s, time.monotonic() - self._last)

    def start(self) -> None:
        """Start ticking on the running loop."""
        self._last = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        """Stop ticking, counting the gap since the last tick."""
        assert self._task is not None
        self._largest_gap_s = self.largest_gap_s
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task
        self._last = time.monotonic()  # stopped: no gap under way

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self._largest_gap_s = max(self._largest_gap_s, now - self._last)
            self.ticks += 1
            self._last = now


class TimedRelease:
    """Releases a held SQLite write lock from a timer thread after ``after_s``, as another
    process would: a loop that froze could not release it itself, so a freeze shows as a gap.

    ``on_release`` runs in the timer thread just before the release (to look at the state).
    """

    def __init__(
        self, lock: SQLiteWriteLock, after_s: float, on_release: Callable[[], None] = lambda: None
    ) -> None:
        self.released = threading.Event()
        self.released_at = 0.0
        self._lock = lock
        self._on_release = on_release
        self._timer = threading.Timer(after_s, self._release)

    def start(self) -> None:
        """Start the timer."""
        self._timer.start()

    async def wait(self) -> None:
        """Wait (in a worker thread) until the lock is released."""
        assert await asyncio.to_thread(self.released.wait, GENEROUS_S), (
            "the lock was never released"
        )

    def _release(self) -> None:
        try:
            self._on_release()
        finally:
            self.released_at = time.monotonic()
            self._lock.release()
            self.released.set()


def run(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    """Run ``coroutine_function()`` on a fresh loop, failing (not hanging) after GENEROUS_S."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine_function(), GENEROUS_S)

    return asyncio.run(bounded())


def test_arecord_on_an_async_service_returns_the_pending_entry(
    make_service: MakeService, database_url: str
) -> None:
    """As record(): a pending entry (id -1) with the values given, committed by aflush()."""
    service = make_service(database_url=database_url)

    async def scenario() -> Any:
        entry = await service.arecord(
            AuditEventType.TOOL_INVOKED,
            actor="agent:a",
            resource="tool:search",
            details={"query": "q", "api_key": "k-123"},
            correlation_id="run-1",
        )
        assert await service.aflush(GENEROUS_S)
        return entry

    entry = run(scenario)
    assert entry.id == PENDING_ID
    assert entry.event_type is AuditEventType.TOOL_INVOKED
    assert (entry.actor, entry.resource, entry.correlation_id) == (
        "agent:a",
        "tool:search",
        "run-1",
    )
    assert entry.details == {"query": "q", "api_key": "[REDACTED]"}
    stored = service.get(entry.event_id)
    assert stored is not None
    assert stored.id > 0
    assert stored.details == entry.details


def test_arecord_on_a_sync_service_returns_the_committed_entry(
    make_service: MakeService, database_url: str
) -> None:
    """As record(): a synchronous service returns the entry with its database id."""
    service = make_service(database_url=database_url, audit_async=False)

    entry = run(lambda: service.arecord("session.started", actor="user:1"))

    assert entry.id > 0
    stored = service.get(entry.event_id)
    assert stored is not None
    assert stored.id == entry.id
    assert stored.actor == "user:1"


@pytest.mark.parametrize("audit_async", [True, False], ids=["async", "sync"])
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.arecord("tool.exploded"), ValueError, "unknown audit event type"),
        (lambda s: s.arecord("tool.invoked", actor=42), TypeError, "actor"),
        (lambda s: s.arecord("tool.invoked", details={"at": object()}), TypeError, "details"),
        (lambda s: s.arecord("tool.invoked", details={"x": float("nan")}), ValueError, "finite"),
        (lambda s: s.arecord("writer.opened"), ValueError, "system entry"),
    ],
    ids=["event-type", "actor", "details", "nan", "system"],
)
def test_arecord_raises_what_record_raises_at_the_call(
    make_service: MakeService,
    sqlite_url: str,
    audit_async: bool,
    call: Callable[[AuditService], Awaitable[Any]],
    error: type[Exception],
    message: str,
) -> None:
    """Bad input: the same error as record(), raised by the await, and nothing recorded."""
    service = make_service(database_url=sqlite_url, audit_async=audit_async)

    with pytest.raises(error, match=message):
        run(lambda: call(service))

    assert service.flush(GENEROUS_S)
    assert service.count() == 0
    assert service.stats().enqueued == 0


def test_async_with_closes_the_service_and_keeps_what_was_recorded(sqlite_url: str) -> None:
    """``async with AuditService(...)``: entries recorded inside are committed by the exit."""

    async def scenario() -> AuditService:
        async with AuditService(Settings(database_url=sqlite_url)) as service:
            for index in range(5):
                await service.arecord("tool.invoked", details={"i": index})
        return service

    service = run(scenario)
    assert service.closed
    with AuditService(Settings(database_url=sqlite_url)) as reader:
        assert [entry.details["i"] for entry in reader.query()] == list(range(5))


def test_arecord_after_aclose_raises_closed(make_service: MakeService, sqlite_url: str) -> None:
    """A closed service refuses arecord() with AuditServiceClosedError; aclose is idempotent."""
    service = make_service(database_url=sqlite_url)

    async def scenario() -> None:
        await service.aclose()
        await service.aclose()
        with pytest.raises(AuditServiceClosedError):
            await service.arecord("tool.invoked")

    run(scenario)
    assert service.closed


def test_aflush_reports_a_timeout_without_blocking_the_loop(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """aflush(timeout) on a stuck writer: False after the timeout, the loop ticking meanwhile."""
    service = make_service(database_url=sqlite_url)
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    heartbeat = Heartbeat()

    async def scenario() -> bool:
        heartbeat.start()
        await service.arecord("tool.invoked")
        flushed = await service.aflush(0.5)
        await heartbeat.stop()
        return flushed

    assert run(scenario) is False
    assert heartbeat.largest_gap_s < MAX_GAP_S, heartbeat.largest_gap_s
    assert heartbeat.ticks >= 20
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert service.count() == 1


def test_arecord_waits_for_room_without_freezing_the_loop(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """overflow='block', tiny queue, database locked 3 s: 10 arecord() calls never stall the loop.

    The issue's case: record() froze the loop for 3.05 s. arecord() waits for room
    on the loop (looking again every few ms), so the heartbeat keeps its 10 ms; all
    10 entries are committed once the lock is released.
    """
    maxsize = 2
    service = make_service(
        database_url=sqlite_url,
        audit_overflow="block",
        audit_queue_maxsize=maxsize,
        audit_batch_size=1,
    )
    assert service.flush(GENEROUS_S)  # writer.opened is in: the writer idles
    sqlite_lock.acquire()
    heartbeat = Heartbeat()
    returned: list[float] = []

    async def producer() -> None:
        for index in range(10):
            await service.arecord("tool.invoked", details={"i": index})
            returned.append(time.monotonic())

    at_release: dict[str, Any] = {}

    def look() -> None:
        at_release.update(
            returned=len(returned),
            queue_depth=service.stats().queue_depth,
            largest_gap_s=heartbeat.largest_gap_s,
        )

    release = TimedRelease(sqlite_lock, LOCKED_S, look)

    async def scenario() -> None:
        heartbeat.start()
        release.start()
        task = asyncio.create_task(producer())
        await release.wait()
        await task
        await heartbeat.stop()
        assert await service.aflush(GENEROUS_S)

    run(scenario)
    stuck_gap = at_release["largest_gap_s"]
    assert stuck_gap < MAX_GAP_S, f"the loop stalled {stuck_gap:.3f} s while the writer was stuck"
    assert heartbeat.largest_gap_s < MAX_GAP_S, heartbeat.largest_gap_s
    assert heartbeat.ticks >= LOCKED_S / TICK_S / 2  # it really ran all along
    # The writer holds one row, the queue two: the rest waited for the lock's release.
    assert at_release["queue_depth"] == maxsize
    assert maxsize <= at_release["returned"] <= maxsize + 1
    assert all(moment >= release.released_at for moment in returned[at_release["returned"] :])
    assert [entry.details["i"] for entry in service.query()] == list(range(10))
    assert service.stats().rejected == 0


def test_arecord_on_a_sync_service_inserts_in_a_worker_thread(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """A synchronous service's INSERT waiting for a locked database does not stall the loop."""
    service = make_service(database_url=sqlite_url, audit_async=False)
    sqlite_lock.acquire()
    heartbeat = Heartbeat()

    release = TimedRelease(sqlite_lock, 1.0)

    async def scenario() -> tuple[int, float]:
        heartbeat.start()
        release.start()
        entry = await service.arecord("config.changed", details={"k": "v"})
        returned_at = time.monotonic()
        await heartbeat.stop()
        return entry.id, returned_at

    entry_id, returned_at = run(scenario)
    assert entry_id > 0
    assert returned_at >= release.released_at  # the INSERT did wait for the lock
    assert heartbeat.ticks >= 1.0 / TICK_S / 2
    assert heartbeat.largest_gap_s < MAX_GAP_S, heartbeat.largest_gap_s
    assert service.count() == 1


def test_aclose_drains_without_freezing_the_loop(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """aclose() with the writer stuck: it waits in a worker thread; everything is then committed."""
    service = make_service(database_url=sqlite_url)
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    heartbeat = Heartbeat()

    release = TimedRelease(sqlite_lock, 1.0)

    async def scenario() -> float:
        heartbeat.start()
        for index in range(3):
            await service.arecord("tool.invoked", details={"i": index})
        release.start()
        await service.aclose()
        closed_at = time.monotonic()
        await heartbeat.stop()
        return closed_at

    closed_at = run(scenario)
    assert closed_at >= release.released_at  # aclose() waited for the queue to drain
    assert heartbeat.ticks >= 1.0 / TICK_S / 2
    assert service.closed
    assert heartbeat.largest_gap_s < MAX_GAP_S, heartbeat.largest_gap_s
    with AuditService(Settings(database_url=sqlite_url)) as reader:
        assert [entry.details["i"] for entry in reader.query()] == [0, 1, 2]


def test_tasks_waiting_for_room_leave_the_loops_executor_free(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """Many tasks waiting for room do not hold the loop's default executor.

    asyncio runs ``to_thread`` and ``getaddrinfo`` (every new connection, to a model
    API too) in that executor, which has few threads: were each waiting arecord()
    to hold one, the whole runtime would stall with the database.
    """
    service = make_service(
        database_url=sqlite_url,
        audit_overflow="block",
        audit_queue_maxsize=2,
        audit_batch_size=1,
    )
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    tasks_count = 40  # more than any default executor's threads on a small machine
    release = TimedRelease(sqlite_lock, LOCKED_S)

    async def scenario() -> tuple[float, int]:
        release.start()
        tasks = [
            asyncio.create_task(service.arecord("tool.invoked", details={"i": index}))
            for index in range(tasks_count)
        ]
        for _ in range(3):  # each task runs up to its wait for room
            await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.to_thread(time.monotonic)  # any use of the default executor
        executor_wait_s = time.monotonic() - started
        await asyncio.gather(*tasks)
        assert await service.aflush(GENEROUS_S)
        return executor_wait_s, sum(1 for task in tasks if task.done())

    executor_wait_s, done = run(scenario)
    assert executor_wait_s < 1.0, f"the default executor was busy for {executor_wait_s:.2f} s"
    assert done == tasks_count
    assert sorted(entry.details["i"] for entry in service.query()) == list(range(tasks_count))


async def fill_until_waiting(service: AuditService) -> tuple[asyncio.Task[Any], int]:
    """arecord() until one waits for room (the writer is stuck); that task and how many got in."""
    for index in range(100):
        task = asyncio.create_task(service.arecord("tool.invoked", details={"i": index}))
        await asyncio.sleep(0.05)
        if not task.done():
            return task, index
        task.result()
    raise AssertionError("the queue never filled up")


def test_arecord_with_overflow_raise_refuses_at_once(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """overflow='raise': a full queue makes arecord() raise AuditQueueFullError at the call."""
    service = make_service(
        database_url=sqlite_url, audit_overflow="raise", audit_queue_maxsize=1, audit_batch_size=1
    )
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()

    async def scenario() -> int:
        for index in range(10):
            try:
                await service.arecord("tool.invoked", details={"i": index})
            except AuditQueueFullError:
                return index
        raise AssertionError("arecord() never refused an entry")

    accepted = run(scenario)
    assert 1 <= accepted <= 2  # the queue holds one, the stuck writer one more
    assert service.stats().rejected == 1
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert service.count() == accepted


def test_arecord_with_a_block_timeout_gives_up_after_it(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """overflow='block' with audit_block_timeout: arecord() waits that long, then raises."""
    service = make_service(
        database_url=sqlite_url,
        audit_queue_maxsize=1,
        audit_batch_size=1,
        audit_block_timeout=0.3,
    )
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    heartbeat = Heartbeat()

    async def scenario() -> float:
        heartbeat.start()
        waiting, _ = await fill_until_waiting(service)
        started = time.monotonic()
        with pytest.raises(AuditQueueFullError, match=r"stayed full for 0\.3 s"):
            await waiting
        await heartbeat.stop()
        return time.monotonic() - started

    assert 0.2 <= run(scenario) < GENEROUS_S
    assert heartbeat.largest_gap_s < MAX_GAP_S, heartbeat.largest_gap_s
    assert service.stats().rejected == 1


def test_a_task_cancelled_while_waiting_for_room_records_nothing(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """Cancelling an arecord() that waits for room leaves its entry out, and only it."""
    service = make_service(database_url=sqlite_url, audit_queue_maxsize=1, audit_batch_size=1)
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()

    async def scenario() -> int:
        waiting, accepted = await fill_until_waiting(service)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return accepted

    accepted = run(scenario)
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)
    assert [entry.details["i"] for entry in service.query()] == list(range(accepted))


def test_a_task_waiting_for_room_is_woken_not_polled(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """While arecord() waits for room no timer of its own is scheduled; room wakes it at once."""
    service = make_service(database_url=sqlite_url, audit_queue_maxsize=1, audit_batch_size=1)
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()

    async def scenario() -> list[float]:
        waiting, _ = await fill_until_waiting(service)
        loop = asyncio.get_running_loop()
        # Only run()'s own bound (GENEROUS_S away) may be scheduled: no poll every few ms.
        timers_s = [handle.when() - loop.time() for handle in loop._scheduled]  # type: ignore[attr-defined]
        sqlite_lock.release()
        await waiting
        return timers_s

    timers_s = run(scenario)
    assert all(left_s > GENEROUS_S / 2 for left_s in timers_s), timers_s
    assert service.flush(GENEROUS_S)
    assert service.stats().rejected == 0


def test_closing_the_service_ends_a_wait_for_room(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """close() while arecord() waits for room: the wait ends with AuditServiceClosedError."""
    service = make_service(
        database_url=sqlite_url,
        audit_queue_maxsize=1,
        audit_batch_size=1,
        audit_close_timeout_s=0.5,
    )
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()

    async def scenario() -> None:
        waiting, _ = await fill_until_waiting(service)
        await service.aclose()  # gives up on the stuck writer after 0.5 s, spools the queue
        with pytest.raises(AuditServiceClosedError, match="closed while arecord"):
            await waiting

    run(scenario)
    assert service.closed


def test_sync_writes_waiting_for_the_database_leave_the_loops_executor_free(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """A synchronous service's arecord() calls wait in its own thread, not the loop's executor."""
    service = make_service(database_url=sqlite_url, audit_async=False)
    sqlite_lock.acquire()
    tasks_count = 40
    release = TimedRelease(sqlite_lock, LOCKED_S)

    async def scenario() -> float:
        release.start()
        tasks = [
            asyncio.create_task(service.arecord("tool.invoked", details={"i": index}))
            for index in range(tasks_count)
        ]
        for _ in range(3):  # each task hands its INSERT to the service's thread
            await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.to_thread(time.monotonic)  # any use of the default executor
        executor_wait_s = time.monotonic() - started
        entries = await asyncio.gather(*tasks)
        assert all(entry.id > 0 for entry in entries)
        return executor_wait_s

    executor_wait_s = run(scenario)
    assert executor_wait_s < 1.0, f"the default executor was busy for {executor_wait_s:.2f} s"
    assert sorted(entry.details["i"] for entry in service.query()) == list(range(tasks_count))


def test_aflush_and_aclose_leave_the_loops_executor_free(
    make_service: MakeService, sqlite_url: str
) -> None:
    """aflush() and aclose() finish while every thread of the loop's default executor is busy."""
    from concurrent.futures import ThreadPoolExecutor

    service = make_service(database_url=sqlite_url)
    busy = threading.Event()
    release = threading.Event()

    def occupy() -> None:
        busy.set()
        release.wait(GENEROUS_S)

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        occupied = loop.run_in_executor(None, occupy)
        try:
            deadline = time.monotonic() + GENEROUS_S
            while not busy.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)  # the executor's only thread is taken
            assert busy.is_set()
            await service.arecord("tool.invoked", details={"i": 1})
            flushed = await asyncio.wait_for(service.aflush(GENEROUS_S), GENEROUS_S)
            await asyncio.wait_for(service.aclose(), GENEROUS_S)
            return flushed
        finally:
            release.set()
            await occupied

    assert run(scenario)
    assert service.closed
    with AuditService(Settings(database_url=sqlite_url)) as reader:
        assert reader.count() == 1
