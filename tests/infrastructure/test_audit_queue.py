"""The queue's overflow strategy: refuse, or wait for room, woken (never polled) by the queue.

No test sleeps: a producer thread is known to wait once the queue's condition is
entered (an Event set from its ``wait``); a producer task once it has run up to its
future (``asyncio.sleep(0)`` yields, it does not wait for time).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from cleveragents.domain.errors import (
    AuditQueueFullError,
    AuditServiceClosedError,
    AuditWriterError,
)
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow
from cleveragents.infrastructure.audit_queue import AuditQueue, Overflow
from tests.support import GENEROUS_S


def make_row(n: int = 0) -> PendingRow:
    """A row as record() would queue it."""
    return PendingRow(
        new_event_id(), "tool.invoked", None, None, f'{{"n":{n}}}', None, datetime.now(UTC), None
    )


class SignallingCondition(threading.Condition):
    """The queue's condition, setting ``entered`` each time a producer starts to wait on it."""

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__(lock)
        self.entered = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.entered.set()
        return super().wait(timeout)


def full_queue(overflow: Overflow | None = None, maxsize: int = 1) -> AuditQueue:
    """A queue of ``maxsize`` holding that many entries (overflow: block, no timeout)."""
    entries = AuditQueue(maxsize, Overflow() if overflow is None else overflow)
    for n in range(maxsize):
        entries.put_nowait(make_row(n))
    return entries


def blocked_producer(entries: AuditQueue) -> tuple[threading.Thread, list[BaseException]]:
    """A thread whose put_when_full waits for room (returned once it waits); its errors."""
    room = SignallingCondition(entries._lock)
    entries._room = room
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            entries.put_when_full(make_row(99))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    assert room.entered.wait(GENEROUS_S), "the producer never waited for room"
    return thread, errors


def run(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``scenario()`` on a fresh event loop."""
    return asyncio.run(scenario())


async def until_waiting(entries: AuditQueue, count: int = 1) -> None:
    """Yield to the loop until ``count`` tasks wait for room (each needs one turn)."""
    for _ in range(10 * count):
        if entries.waiting() == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{entries.waiting()} producers wait for room, not {count}")


# -- threads ---------------------------------------------------------------------------


def test_raise_refuses_at_once_and_counts_the_rejection() -> None:
    """Overflow 'raise': put_when_full raises AuditQueueFullError without waiting."""
    entries = full_queue(Overflow(block=False), maxsize=2)
    with capture_logs() as logs, pytest.raises(AuditQueueFullError) as raised:
        entries.put_when_full(make_row())
    assert str(raised.value) == (
        "the audit queue is full (2 entries waiting); the tool.invoked entry was not recorded"
    )
    assert entries.rejected == 1
    assert entries.waiting() == 0
    assert [log["event"] for log in logs] == ["audit_entry_rejected"]


def test_the_writer_thread_is_refused_rather_than_left_to_wait_for_itself() -> None:
    """A put from the writer thread cannot wait for room it must make: refused at once."""
    entries = full_queue()
    with pytest.raises(AuditQueueFullError, match="runs on the writer thread"):
        entries.put_when_full(make_row(), from_writer=True)
    assert entries.rejected == 1


def test_a_blocked_put_is_woken_by_room() -> None:
    """A producer waiting for room queues its row as soon as the writer takes one."""
    entries = full_queue()
    thread, errors = blocked_producer(entries)
    assert type(entries.get()) is EntryRow
    thread.join(GENEROUS_S)
    assert not thread.is_alive()
    assert errors == []
    assert (entries.entries_put, entries.entries_waiting(), entries.waiting()) == (2, 1, 0)
    assert entries.last_writer_seq == 2


def test_a_blocked_put_is_woken_by_close() -> None:
    """close() ends a wait for room with AuditServiceClosedError; nothing is queued."""
    entries = full_queue()
    thread, errors = blocked_producer(entries)
    entries.close()
    thread.join(GENEROUS_S)
    [error] = errors
    assert isinstance(error, AuditServiceClosedError)
    assert str(error) == "the audit service was closed while record() waited for room"
    assert (entries.entries_put, entries.rejected) == (1, 0)


def test_a_blocked_put_is_woken_by_refusal() -> None:
    """refuse() ends a wait for room with AuditWriterError naming the reason."""
    entries = full_queue()
    thread, errors = blocked_producer(entries)
    entries.refuse("the audit writer gave up: BoomError")
    thread.join(GENEROUS_S)
    [error] = errors
    assert isinstance(error, AuditWriterError)
    assert str(error) == "the audit writer gave up: BoomError"


def test_a_blocked_put_is_refused_when_the_writer_ends() -> None:
    """writer_ended() ends a wait for room: refused and counted (a writer.dropped to come)."""
    entries = full_queue()
    thread, errors = blocked_producer(entries)
    entries.writer_ended()
    thread.join(GENEROUS_S)
    [error] = errors
    assert isinstance(error, AuditQueueFullError)
    assert "the audit queue is full and its writer is not running" in str(error)
    assert entries.rejected == 1


def test_a_thread_interrupted_while_waiting_passes_its_wake_up_on() -> None:
    """A producer leaving its wait by an exception (Ctrl-C) hands the room it was woken for on."""
    entries = full_queue()

    class Interrupted(BaseException):
        """What a signal handler raises in the waiting thread."""

    class InterruptedOnWake(SignallingCondition):
        def wait(self, timeout: float | None = None) -> bool:
            woken = super().wait(timeout)
            if threading.current_thread().name == "interrupted":
                raise Interrupted
            return woken

    room = InterruptedOnWake(entries._lock)
    entries._room = room
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            entries.put_when_full(make_row(99))
        except BaseException as exc:
            errors.append(exc)

    interrupted = threading.Thread(target=produce, name="interrupted", daemon=True)
    interrupted.start()
    assert room.entered.wait(GENEROUS_S)
    room.entered.clear()
    other = threading.Thread(target=produce, name="other", daemon=True)
    other.start()
    assert room.entered.wait(GENEROUS_S)
    with entries._lock:
        assert entries._blocked == 2
    entries.get()  # room for one: notify() wakes the first waiter, which is interrupted
    interrupted.join(GENEROUS_S)
    other.join(GENEROUS_S)
    assert not interrupted.is_alive()
    assert not other.is_alive(), "a wake-up was lost"
    assert [type(error) for error in errors] == [Interrupted]
    assert (entries.entries_put, entries.entries_waiting()) == (2, 1)


def test_a_block_timeout_refuses_after_it() -> None:
    """Overflow 'block' with timeout_s: still full then, the row is refused and counted."""
    entries = full_queue(Overflow(timeout_s=0.05))
    with pytest.raises(AuditQueueFullError, match=r"stayed full for 0\.05 s"):
        entries.put_when_full(make_row())
    assert (entries.rejected, entries.waiting()) == (1, 0)


def test_room_goes_to_the_row_even_after_close() -> None:
    """With room, a put after close() still queues: the close race is the recorder's to spool."""
    entries = AuditQueue(1)
    entries.close()
    entries.put_when_full(make_row())
    assert entries.entries_put == 1


# -- asyncio tasks -----------------------------------------------------------------------


def test_a_waiting_task_is_woken_by_room_with_no_timer_scheduled() -> None:
    """A task waiting for room holds no timer (nothing polls) and resumes right after a get."""
    entries = full_queue()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(entries.aput_when_full(make_row(1)))
        await until_waiting(entries)
        assert not loop._scheduled, "a timer is scheduled while the task waits"  # type: ignore[attr-defined]
        entries.get()
        for _ in range(3):  # the wake-up, then the task's own turn
            if task.done():
                break
            await asyncio.sleep(0)
        assert task.done(), "the task did not resume after the get"
        task.result()

    run(scenario)
    assert (entries.entries_put, entries.entries_waiting(), entries.waiting()) == (2, 1, 0)


def test_a_waiting_task_is_woken_from_the_writer_thread() -> None:
    """Room made on another thread (the writer's) wakes the task on its own loop."""
    entries = full_queue()

    async def scenario() -> None:
        task = asyncio.create_task(entries.aput_when_full(make_row(1)))
        await until_waiting(entries)
        taker = threading.Thread(target=entries.get)
        taker.start()
        await asyncio.wait_for(task, GENEROUS_S)
        taker.join(GENEROUS_S)

    run(scenario)
    assert entries.entries_put == 2


@pytest.mark.parametrize("timeout_s", [None, GENEROUS_S], ids=["no-timeout", "timeout"])
def test_a_cancelled_task_queues_nothing_and_leaves_no_future_behind(
    timeout_s: float | None,
) -> None:
    """Cancelling a task that waits for room drops its future; its row is not queued."""
    entries = full_queue(Overflow(timeout_s=timeout_s))

    async def scenario() -> None:
        task = asyncio.create_task(entries.aput_when_full(make_row(1)))
        await until_waiting(entries)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert entries.waiting() == 0
        assert not entries._async_waiters

    run(scenario)
    entries.get()
    assert (entries.entries_put, entries.entries_waiting()) == (1, 0)


@pytest.mark.parametrize("timeout_s", [None, GENEROUS_S], ids=["no-timeout", "timeout"])
def test_a_wake_up_handed_to_a_cancelled_task_goes_to_the_next(timeout_s: float | None) -> None:
    """Room given to a task cancelled before it could take it passes to the next waiting one.

    The cancelled task stays cancelled: it does not take the room it was handed.
    """
    entries = full_queue(Overflow(timeout_s=timeout_s))

    async def scenario() -> None:
        first = asyncio.create_task(entries.aput_when_full(make_row(1)))
        await until_waiting(entries)
        second = asyncio.create_task(entries.aput_when_full(make_row(2)))
        await until_waiting(entries, 2)
        entries.get()  # wakes the first
        first.cancel()  # before it runs again
        await asyncio.wait_for(second, GENEROUS_S)
        assert first.cancelled()

    run(scenario)
    assert (entries.entries_put, entries.waiting()) == (2, 0)


def test_a_waiting_task_is_woken_by_close() -> None:
    """close() ends a task's wait for room with AuditServiceClosedError."""
    entries = full_queue()

    async def scenario() -> None:
        task = asyncio.create_task(entries.aput_when_full(make_row(1)))
        await until_waiting(entries)
        entries.close()
        with pytest.raises(
            AuditServiceClosedError, match=r"closed while arecord\(\) waited for room"
        ):
            await asyncio.wait_for(task, GENEROUS_S)

    run(scenario)
    assert (entries.entries_put, entries.waiting()) == (1, 0)


def test_waiting_tasks_are_all_woken_by_refusal() -> None:
    """refuse() ends every task's wait with AuditWriterError."""
    entries = full_queue()

    async def scenario() -> list[BaseException | None]:
        tasks = [asyncio.create_task(entries.aput_when_full(make_row(n))) for n in range(3)]
        await until_waiting(entries, 3)
        entries.refuse("the audit writer gave up: BoomError")
        await asyncio.wait(tasks, timeout=GENEROUS_S)
        return [task.exception() for task in tasks]

    errors = run(scenario)
    assert all(isinstance(error, AuditWriterError) for error in errors), errors


def test_a_waiting_task_gives_up_after_the_block_timeout() -> None:
    """Overflow 'block' with timeout_s: the task is refused then, and counted."""
    entries = full_queue(Overflow(timeout_s=0.05))

    async def scenario() -> None:
        with pytest.raises(AuditQueueFullError, match=r"stayed full for 0\.05 s"):
            await asyncio.wait_for(entries.aput_when_full(make_row(1)), GENEROUS_S)

    run(scenario)
    assert (entries.rejected, entries.waiting()) == (1, 0)


def test_a_task_is_refused_at_once_with_overflow_raise() -> None:
    """Overflow 'raise': aput_when_full raises without waiting."""
    entries = full_queue(Overflow(block=False))

    async def scenario() -> None:
        with pytest.raises(AuditQueueFullError, match="the audit queue is full"):
            await entries.aput_when_full(make_row(1))

    run(scenario)
    assert entries.rejected == 1
