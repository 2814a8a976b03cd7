"""The asyncio API: arecord, aflush, aclose and ``async with``, with a heartbeat on the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from audit_support import FLUSH_TIMEOUT_S, NUMBERED_EVENT_TYPE, remember_service, sqlite_url
from behave import given, then, when
from behave.runner import Context

from cleveragents import AuditService, AuditServiceClosedError, Settings

T = TypeVar("T")

#: The heartbeat's period.
TICK_S = 0.010
#: Upper bound for a whole scenario's loop: a bug fails the step instead of hanging it.
LOOP_TIMEOUT_S = 30.0


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` on a fresh event loop, bounded by LOOP_TIMEOUT_S."""

    async def bounded() -> T:
        return await asyncio.wait_for(make(), LOOP_TIMEOUT_S)

    return asyncio.run(bounded())


@when('I arecord a "{event_type}" entry in an event loop')
def when_arecord_one(context: Context, event_type: str) -> None:
    context.entry = run(lambda: context.service.arecord(event_type))
    context.recorded.append(context.entry)


@when("I aflush the service")
def when_aflush(context: Context) -> None:
    assert run(lambda: context.service.aflush(FLUSH_TIMEOUT_S)), "aflush() reported a failure"


@when('I try to arecord an entry of type "{event_type}"')
def when_try_arecord(context: Context, event_type: str) -> None:
    context.error = None
    try:
        run(lambda: context.service.arecord(event_type))
    except Exception as exc:
        context.error = exc


@given("another process holds the database's write lock for {seconds:g} seconds")
def given_timed_lock(context: Context, seconds: float) -> None:
    service = context.service
    assert service.flush(FLUSH_TIMEOUT_S), "the writer did not commit its writer.opened"
    # Released by a timer thread, as another process would: a frozen loop could not do it.
    lock = sqlite3.connect(
        context.db_path, timeout=10.0, isolation_level=None, check_same_thread=False
    )
    context.locks.append(lock)  # after_scenario releases it if the timer did not
    lock.execute("BEGIN IMMEDIATE")
    context.lock_seconds = seconds
    context.lock_released = threading.Event()

    def release() -> None:
        context.returned_before_release = len(context.returned_at)
        context.released_at = time.monotonic()
        lock.rollback()
        context.lock_released.set()

    context.returned_at = []
    context.lock_timer = threading.Timer(seconds, release)
    context.exit_stack.callback(context.lock_timer.cancel)


@when("an asyncio task arecords {count:d} entries while a heartbeat ticks every 10 ms")
def when_arecord_with_heartbeat(context: Context, count: int) -> None:
    service: AuditService = context.service
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def producer() -> None:
        for seq in range(count):
            await service.arecord(NUMBERED_EVENT_TYPE, details={"seq": seq})
            context.returned_at.append(time.monotonic())

    async def scenario() -> None:
        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)  # the heartbeat's clock starts now
        context.lock_timer.start()
        await producer()
        released = await asyncio.to_thread(context.lock_released.wait, LOOP_TIMEOUT_S)
        assert released, "the write lock was never released"
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
        assert await service.aflush(FLUSH_TIMEOUT_S), "aflush() reported a failure"

    run(scenario)
    context.gaps = gaps


@then("the heartbeat never stalled for {seconds:g} seconds or more")
def then_no_stall(context: Context, seconds: float) -> None:
    ticks_expected = context.lock_seconds / TICK_S / 2
    assert len(context.gaps) >= ticks_expected, f"only {len(context.gaps)} ticks"
    assert max(context.gaps) < seconds, f"the loop stalled {max(context.gaps):.3f} s"


@then("some arecord calls waited until the write lock was released")
def then_waited_for_release(context: Context) -> None:
    waited = context.returned_at[context.returned_before_release :]
    assert waited, "every arecord() returned while the database was locked"
    assert all(moment >= context.released_at for moment in waited)


@when('I use a new service on "{db_name}" in "async with" to arecord {count:d} entries')
def when_async_with(context: Context, db_name: str, count: int) -> None:
    db_path = context.tmp / db_name

    async def scenario() -> AuditService:
        async with AuditService(Settings(database_url=sqlite_url(db_path))) as service:
            remember_service(context, service, db_path)
            for seq in range(count):
                context.recorded.append(
                    await service.arecord(NUMBERED_EVENT_TYPE, details={"seq": seq})
                )
        return service

    run(scenario)


@then("arecord on the closed service fails with AuditServiceClosedError")
def then_arecord_closed(context: Context) -> None:
    async def late() -> Any:
        return await context.service.arecord(NUMBERED_EVENT_TYPE, details={"late": True})

    try:
        run(late)
    except AuditServiceClosedError as exc:
        context.error = exc
    else:
        raise AssertionError("arecord() after close did not raise")
