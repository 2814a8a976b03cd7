"""The writer thread: batching, barriers, retries, failures, stopping, and its own death.

These tests drive :class:`AuditWriter` with a tiny in-memory sink, to look at the
writer thread itself; the database behind the real sink is tested elsewhere.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from cleveragents.domain.errors import AuditQueueFullError, AuditWriterError
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow, with_writer_seq
from cleveragents.infrastructure import writer as writer_module
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.writer import MAX_FAILURES_IN_ROW, AuditWriter, RetryPolicy
from tests.support import GENEROUS_S, call_bounded, wait_until


class TransientError(Exception):
    """An error the writer is told to retry."""


class PermanentError(Exception):
    """An error the writer is told not to retry."""


#: The writer_id of the rows :func:`make_row` makes.
WRITER = new_event_id()


def make_row(n: int, actor: str | None = None) -> PendingRow:
    """A row as record() would queue it (the queue adds its writer_seq)."""
    return PendingRow(
        event_id=new_event_id(),
        event_type="tool.invoked",
        actor=actor,
        resource=None,
        details=f'{{"n":{n}}}',
        correlation_id=None,
        created_at=datetime.now(UTC),
        writer_id=WRITER,
    )


def put_row(entries: AuditQueue, row: PendingRow) -> EntryRow:
    """Put ``row`` on the queue; the row as the sink gets it, with its writer_seq."""
    entries.put_nowait(row)
    return with_writer_seq(row, entries.last_writer_seq)


class ListSink:
    """Keeps committed batches in memory; ``before`` runs first and may raise or wait."""

    def __init__(self, before: Callable[[Sequence[EntryRow]], None] | None = None) -> None:
        self.batches: list[list[EntryRow]] = []
        self.calls: list[int] = []
        self.before = before

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        self.calls.append(len(rows))
        if self.before is not None:
            self.before(rows)
        self.batches.append(list(rows))

    @property
    def rows(self) -> list[EntryRow]:
        return [row for batch in self.batches for row in batch]


MakeWriter = Callable[..., tuple[AuditQueue, AuditWriter]]


@pytest.fixture
def make_writer() -> Iterator[MakeWriter]:
    """Make (queue, writer) pairs, not started; every started writer is stopped afterwards."""
    made: list[AuditWriter] = []

    def make(
        sink: ListSink,
        *,
        maxsize: int = 1000,
        batch_size: int = 10,
        retry: RetryPolicy | None = None,
        exit_timeout_s: float = 5.0,
    ) -> tuple[AuditQueue, AuditWriter]:
        entries = AuditQueue(maxsize)
        writer = AuditWriter(
            entries,
            sink,
            batch_size=batch_size,
            retry=retry or RetryPolicy(deadline_s=5.0, backoff_initial_s=0.001, backoff_max_s=0.01),
            is_transient=lambda exc: isinstance(exc, TransientError),
            exit_timeout_s=exit_timeout_s,
        )
        made.append(writer)
        return entries, writer

    yield make
    for writer in made:
        writer.stop(GENEROUS_S)


def queue_rows(entries: AuditQueue, count: int, actor: str | None = None) -> list[EntryRow]:
    """Put ``count`` new rows on the queue and return them as the sink gets them."""
    return [put_row(entries, make_row(n, actor)) for n in range(count)]


# -- the queue -------------------------------------------------------------------------------------


def test_queue_counts_entries_and_lets_control_messages_past_the_bound() -> None:
    """A full queue refuses rows but still takes control messages; only rows are counted."""
    entries = AuditQueue(2)
    entries.put_nowait(make_row(1))
    entries.put_nowait(make_row(2))
    with pytest.raises(queue.Full):
        entries.put_nowait(make_row(3))
    entries.put_control(object())
    assert entries.qsize() == 3
    assert entries.entries_put == 2
    assert entries.last_writer_seq == 2  # a refused row takes no writer_seq


# -- batching and flushing -----------------------------------------------------------------


def test_queued_rows_are_written_in_full_batches_in_order(make_writer: MakeWriter) -> None:
    """Rows waiting when the writer runs go in batches of batch_size, in queue order."""
    sink = ListSink()
    entries, writer = make_writer(sink, batch_size=10)
    rows = queue_rows(entries, 95)
    writer.start()
    assert writer.flush(GENEROUS_S) is True
    assert [len(batch) for batch in sink.batches] == [10] * 9 + [5]
    assert sink.rows == rows
    assert (writer.written, writer.batches, writer.failed, writer.retried) == (95, 10, 0, 0)


def test_flush_is_a_barrier_and_the_writer_keeps_running(make_writer: MakeWriter) -> None:
    """flush() waits for what was queued before it; rows queued afterwards are still written."""
    sink = ListSink()
    entries, writer = make_writer(sink)
    writer.start()
    for round_number in range(5):
        rows = queue_rows(entries, 7)
        assert writer.flush(GENEROUS_S) is True
        assert sink.rows[-7:] == rows, f"round {round_number}"
    assert writer.written == 35
    assert writer.is_alive()


def test_flush_honours_its_timeout(make_writer: MakeWriter) -> None:
    """flush(timeout) returns False after about timeout when the sink is slow."""
    release = threading.Event()
    sink = ListSink(before=lambda rows: release.wait(GENEROUS_S) and None)
    entries, writer = make_writer(sink)
    writer.start()
    queue_rows(entries, 3)
    started = time.monotonic()
    assert writer.flush(0.2) is False
    assert 0.15 <= time.monotonic() - started < GENEROUS_S
    assert writer.flush(0) is False
    release.set()
    assert writer.flush(GENEROUS_S) is True
    assert writer.written == 3


def test_flush_is_not_kept_out_by_a_full_queue(make_writer: MakeWriter) -> None:
    """A flush barrier gets into a full queue, so flush() on a full queue still completes."""
    release = threading.Event()
    sink = ListSink(before=lambda rows: release.wait(GENEROUS_S) and None)
    entries, writer = make_writer(sink, maxsize=3, batch_size=1)
    writer.start()
    entries.put_nowait(make_row(0))
    wait_until(lambda: sink.calls == [1], what="the writer to take the first row")
    queue_rows(entries, 3)
    assert entries.full()
    outcome: list[bool] = []
    flusher = threading.Thread(target=lambda: outcome.append(writer.flush(GENEROUS_S)))
    flusher.start()
    release.set()
    flusher.join(GENEROUS_S)
    assert outcome == [True]
    assert writer.written == 4


def test_flush_with_nothing_queued_is_true(make_writer: MakeWriter) -> None:
    """An idle writer flushes at once."""
    _, writer = make_writer(ListSink())
    writer.start()
    assert writer.flush(1.0) is True


def test_flush_before_start_and_after_stop_returns_false_promptly(make_writer: MakeWriter) -> None:
    """A writer whose thread is not running cannot be waited for: flush() returns False at once."""
    _, writer = make_writer(ListSink())
    assert call_bounded(writer.flush, timeout=5.0) is False
    writer.start()
    assert writer.stop(GENEROUS_S) is True
    assert call_bounded(writer.flush, timeout=5.0) is False


# -- errors --------------------------------------------------------------------------------


def test_transient_errors_are_retried_until_they_pass(make_writer: MakeWriter) -> None:
    """A transient error is retried until it passes, and the retries are counted."""
    failures_left = [3]

    def flaky(rows: Sequence[EntryRow]) -> None:
        if failures_left[0]:
            failures_left[0] -= 1
            raise TransientError("database is locked")

    sink = ListSink(before=flaky)
    entries, writer = make_writer(sink)
    rows = queue_rows(entries, 5)
    with capture_logs() as logs:
        writer.start()
        assert writer.flush(GENEROUS_S) is True
    assert sink.rows == rows
    assert (writer.written, writer.failed, writer.retried, writer.batches) == (5, 0, 3, 1)
    retries = [log for log in logs if log["event"] == "audit_write_retry"]
    assert [log["attempt"] for log in retries] == [1, 2, 3]
    assert all(log["log_level"] == "warning" for log in retries)


def test_transient_errors_past_the_deadline_fail_the_batch(make_writer: MakeWriter) -> None:
    """A transient error outlasting deadline_s fails the whole batch, counted and logged."""

    def locked(rows: Sequence[EntryRow]) -> None:
        raise TransientError("database is locked")

    sink = ListSink(before=locked)
    entries, writer = make_writer(
        sink, retry=RetryPolicy(deadline_s=0.2, backoff_initial_s=0.01, backoff_max_s=0.05)
    )
    rows = queue_rows(entries, 5)
    with capture_logs() as logs:
        writer.start()
        assert writer.flush(GENEROUS_S) is False
    assert set(sink.calls) == {5}
    assert writer.failed == 5
    assert writer.written == 0
    assert writer.retried >= 1
    [failure] = [log for log in logs if log["event"] == "audit_entries_failed"]
    assert failure["log_level"] == "error"
    assert failure["count"] == 5
    assert failure["event_ids"] == [row.event_id for row in rows]
    assert "TransientError: database is locked" in failure["error"]


def test_lasting_errors_are_isolated_to_the_bad_rows(make_writer: MakeWriter) -> None:
    """A batch with unwritable rows is split: the good rows commit, the bad are counted."""

    def reject_bad(rows: Sequence[EntryRow]) -> None:
        if any(row.actor == "bad" for row in rows):
            raise PermanentError("constraint violated")

    sink = ListSink(before=reject_bad)
    entries, writer = make_writer(sink, batch_size=16)
    rows = [put_row(entries, make_row(n, "bad" if n in (3, 11) else None)) for n in range(16)]
    with capture_logs() as logs:
        writer.start()
        assert writer.flush(GENEROUS_S) is False
    good = [row for row in rows if row.actor != "bad"]
    assert sink.rows == good
    assert (writer.written, writer.failed, writer.retried) == (14, 2, 0)
    [failure] = [log for log in logs if log["event"] == "audit_entries_failed"]
    assert failure["count"] == 2
    assert failure["event_ids"] == [rows[3].event_id, rows[11].event_id]
    assert "PermanentError: constraint violated" in failure["error"]
    # A failure is reported by the flush that covers it, not by every later flush.
    queue_rows(entries, 2)
    assert writer.flush(GENEROUS_S) is True
    assert writer.written == 16


# -- the writer thread calling into itself -------------------------------------------------


def test_flush_from_the_writer_thread_returns_false_at_once(make_writer: MakeWriter) -> None:
    """flush() from code running on the writer thread does not wait for itself."""
    outcomes: list[tuple[bool, float]] = []
    writer_box: list[AuditWriter] = []

    def reenter(rows: Sequence[EntryRow]) -> None:
        started = time.monotonic()
        outcomes.append((writer_box[0].flush(None), time.monotonic() - started))

    sink = ListSink(before=reenter)
    entries, writer = make_writer(sink)
    writer_box.append(writer)
    queue_rows(entries, 2)
    with capture_logs() as logs:
        writer.start()
        assert writer.flush(GENEROUS_S) is True
    [(flushed, elapsed)] = outcomes
    assert flushed is False
    assert elapsed < 1.0
    assert writer.written == 2
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == [
        "audit_flush_on_writer_thread"
    ]
    assert writer.on_writer_thread() is False


def test_stop_from_the_writer_thread_returns_false_and_the_thread_ends(
    make_writer: MakeWriter,
) -> None:
    """stop() from the writer thread returns False, and the thread ends afterwards."""
    outcomes: list[bool] = []
    writer_box: list[AuditWriter] = []

    def reenter(rows: Sequence[EntryRow]) -> None:
        if not outcomes:
            outcomes.append(writer_box[0].stop(None))

    sink = ListSink(before=reenter)
    entries, writer = make_writer(sink, batch_size=2)
    writer_box.append(writer)
    rows = queue_rows(entries, 6)
    with capture_logs() as logs:
        writer.start()
        wait_until(lambda: not writer.is_alive(), what="the writer thread to end")
    assert outcomes == [False]
    assert sink.rows == rows  # what was queued before the stop is still written
    assert any(log["event"] == "audit_stop_on_writer_thread" for log in logs)


# -- stopping ------------------------------------------------------------------------------


def test_stop_drains_the_queue_and_ends_the_thread(make_writer: MakeWriter) -> None:
    """stop() writes everything queued, ends the thread and leaves the exit hook's list."""
    sink = ListSink()
    entries, writer = make_writer(sink)
    writer.start()
    assert writer in writer_module._running
    rows = queue_rows(entries, 50)
    assert writer.stop(GENEROUS_S) is True
    assert not writer.is_alive()
    assert sink.rows == rows
    assert writer not in writer_module._running
    assert writer.stop(GENEROUS_S) is True  # idempotent


def test_stop_honours_its_timeout_when_the_sink_hangs(make_writer: MakeWriter) -> None:
    """stop(timeout) returns False after about timeout if the sink hangs."""
    release = threading.Event()
    sink = ListSink(before=lambda rows: release.wait(GENEROUS_S) and None)
    entries, writer = make_writer(sink)
    writer.start()
    queue_rows(entries, 3)
    wait_until(lambda: bool(sink.calls), what="the writer to start writing")
    started = time.monotonic()
    assert writer.stop(0.2) is False
    assert 0.15 <= time.monotonic() - started < GENEROUS_S
    release.set()
    wait_until(lambda: not writer.is_alive(), what="the writer to end")
    assert writer.written == 3


def test_stop_cuts_a_long_backoff_short(make_writer: MakeWriter) -> None:
    """A writer pausing between retries is woken by stop(); what it could not write is counted."""

    def locked(rows: Sequence[EntryRow]) -> None:
        raise TransientError("database is locked")

    sink = ListSink(before=locked)
    entries, writer = make_writer(
        sink, retry=RetryPolicy(deadline_s=120.0, backoff_initial_s=60.0, backoff_max_s=60.0)
    )
    queue_rows(entries, 4)
    with capture_logs() as logs:
        writer.start()
        wait_until(lambda: writer.retried >= 1, what="the first retry")
        started = time.monotonic()
        writer.stop(0.3)
        wait_until(lambda: not writer.is_alive(), what="the writer to end")
    assert time.monotonic() - started < 10.0  # far less than the 60 s backoff
    assert writer.failed == 4
    assert sum(log["count"] for log in logs if log["event"] == "audit_entries_failed") == 4
    # The time left before the deadline is spent in backoff, not in a tight retry loop.
    assert writer.retried < 50


def test_stop_at_exit_logs_what_it_could_not_persist(make_writer: MakeWriter) -> None:
    """The exit hook's stop gives up after exit_timeout_s and logs the entries left behind."""
    release = threading.Event()
    sink = ListSink(before=lambda rows: release.wait(GENEROUS_S) and None)
    entries, writer = make_writer(sink, exit_timeout_s=0.2, batch_size=1)
    writer.start()
    queue_rows(entries, 3)
    wait_until(lambda: bool(sink.calls), what="the writer to start writing")
    with capture_logs() as logs:
        call_bounded(writer.stop_at_exit, what="the exit hook")
    [incomplete] = [log for log in logs if log["event"] == "audit_exit_incomplete"]
    assert incomplete["log_level"] == "error"
    assert incomplete["queue_depth"] >= 1
    release.set()
    wait_until(lambda: not writer.is_alive(), what="the writer to end")


def test_once_the_thread_ends_a_full_queue_refuses_instead_of_waiting(
    make_writer: MakeWriter,
) -> None:
    """The writer's end tells the queue: a put that finds it full is refused, not left waiting."""
    entries, writer = make_writer(ListSink(), maxsize=1)
    writer.start()
    assert writer.stop(GENEROUS_S)
    entries.put_nowait(make_row(1))  # after the stop: nobody will take it
    with pytest.raises(AuditQueueFullError, match="its writer is not running"):
        call_bounded(lambda: entries.put_when_full(make_row(2)), what="the refusal")


# -- a writer thread that dies -------------------------------------------------------------


def test_a_writer_that_keeps_failing_gives_up_and_never_makes_anyone_wait(
    make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing MAX_FAILURES_IN_ROW times in a row (the sink raises SystemExit, giving up
    fails too), the writer ends: flush()/stop() return at once, losses are counted and
    the queue refuses new entries with AuditWriterError."""

    def die(rows: Sequence[EntryRow]) -> None:
        if any(row.actor == "poison" for row in rows):
            raise SystemExit("writer thread killed by the test")

    def broken_give_up(rows: Sequence[EntryRow], error: str) -> None:
        raise RuntimeError("the spool is broken too")

    sink = ListSink(before=die)
    entries, writer = make_writer(sink, batch_size=1)
    writer.start()
    queue_rows(entries, 3)
    assert writer.flush(GENEROUS_S) is True
    monkeypatch.setattr(writer._ledger, "give_up", broken_give_up)
    with capture_logs() as logs:
        queue_rows(entries, MAX_FAILURES_IN_ROW + 2, "poison")
        wait_until(lambda: not writer.is_alive(), what="the writer to give up")
        assert call_bounded(lambda: writer.flush(None), timeout=5.0, what="flush()") is False
        with pytest.raises(AuditWriterError, match="gave up after"):
            entries.put_nowait(make_row(1))
        assert call_bounded(lambda: writer.stop(None), timeout=5.0, what="stop()") is True
    [gave_up] = [log for log in logs if log["event"] == "audit_writer_gave_up"]
    assert gave_up["log_level"] == "critical"
    assert writer.written == 3
    # Every poison row is counted once: the failing ones, and the ones left in the queue.
    assert writer.failed == MAX_FAILURES_IN_ROW + 2
    assert entries.qsize() == 0
