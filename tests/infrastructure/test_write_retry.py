"""How the writer puts one batch into its sink: retries of transient errors, the split of
a batch on a lasting one, and the deadlines that bound the retries.

A fake sink that refuses chosen rows stands in for the database here; the writer
thread around this is tested in ``test_writer.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow, with_writer_seq
from cleveragents.infrastructure.write_retry import RetryingWrite, RetryPolicy
from tests.support import GENEROUS_S, wait_until


class TransientError(Exception):
    """An error the writer is told to retry."""


class PermanentError(Exception):
    """An error the writer is told not to retry."""


#: A policy that retries fast, for 5 seconds.
FAST = RetryPolicy(deadline_s=5.0, backoff_initial_s=0.001, backoff_max_s=0.01)


def make_rows(count: int, bad: Sequence[int] = ()) -> list[EntryRow]:
    """``count`` rows with writer_seq 1.., the ones at ``bad`` positions with actor "bad"."""
    return [
        with_writer_seq(
            PendingRow(
                event_id=new_event_id(),
                event_type="tool.invoked",
                actor="bad" if n in bad else None,
                resource=None,
                details=f'{{"n":{n}}}',
                correlation_id=None,
                created_at=datetime.now(UTC),
                writer_id=None,
            ),
            n + 1,
        )
        for n in range(count)
    ]


class FakeSink:
    """Raises what ``fail`` returns for a batch (None: commits it); records every call."""

    def __init__(self, fail: Callable[[Sequence[EntryRow]], BaseException | None]) -> None:
        self.fail = fail
        self.calls: list[list[EntryRow]] = []

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        self.calls.append(list(rows))
        error = self.fail(rows)
        if error is not None:
            raise error


def retrying(
    sink: FakeSink, policy: RetryPolicy = FAST, clock: Callable[[], float] = time.monotonic
) -> RetryingWrite:
    """A RetryingWrite into ``sink`` that retries TransientError only."""
    return RetryingWrite(
        sink,
        policy,
        is_transient=lambda exc: isinstance(exc, TransientError),
        describe=repr,
        clock=clock,
    )


def refuse_bad(rows: Sequence[EntryRow]) -> BaseException | None:
    """A lasting refusal of any batch holding a "bad" row."""
    bad = [row for row in rows if row.actor == "bad"]
    return PermanentError(f"bad row {bad[0].writer_seq}") if bad else None


def test_retry_backoff_doubles_up_to_its_cap() -> None:
    """The pause before each retry doubles from backoff_initial_s and stops at backoff_max_s."""
    policy = RetryPolicy(deadline_s=10, backoff_initial_s=0.05, backoff_max_s=0.3)
    assert [policy.delay_s(attempt) for attempt in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert RetryPolicy().delay_s(100) == RetryPolicy().backoff_max_s
    # However many retries a long deadline allows, the pause stays computable.
    assert RetryPolicy().delay_s(5000) == RetryPolicy().backoff_max_s


def test_a_transient_error_is_retried_until_it_passes() -> None:
    """Three transient failures, then a commit: no failure, three retries counted."""
    failures_left = [3]

    def flaky(rows: Sequence[EntryRow]) -> BaseException | None:
        if failures_left[0]:
            failures_left[0] -= 1
            return TransientError("locked")
        return None

    sink = FakeSink(flaky)
    write = retrying(sink)
    committed: list[Sequence[EntryRow]] = []
    rows = make_rows(4)
    assert write.write_or_split(rows, committed.append) == []
    assert committed == [rows]
    assert write.retried == 3
    assert len(sink.calls) == 4


def test_a_transient_error_past_the_deadline_fails_the_batch_whole() -> None:
    """Past deadline_s, a transient error fails every row of the batch, without a split."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every look at the clock is a second later
        return now[0]

    sink = FakeSink(lambda rows: TransientError("locked"))
    write = retrying(sink, RetryPolicy(deadline_s=3.0, backoff_initial_s=0.001), clock)
    rows = make_rows(4)
    failures = write.write_or_split(rows, lambda rows: None)
    assert [row for row, _ in failures] == rows
    assert all(isinstance(error, TransientError) for _, error in failures)
    assert all(len(call) == 4 for call in sink.calls)  # never split
    assert write.retried == len(sink.calls) - 1


def test_a_lasting_error_is_isolated_to_the_bad_rows() -> None:
    """The batch is halved until each bad row fails alone; the good parts commit."""
    sink = FakeSink(refuse_bad)
    write = retrying(sink)
    committed: list[EntryRow] = []
    rows = make_rows(16, bad=[3, 11])
    failures = write.write_or_split(rows, committed.extend)
    assert [(row, str(error)) for row, error in failures] == [
        (rows[3], "bad row 4"),
        (rows[11], "bad row 12"),
    ]
    assert sorted(committed) == sorted(row for row in rows if row.actor != "bad")
    assert write.retried == 0  # a lasting error is not retried


def test_a_stop_deadline_cuts_the_retries_short() -> None:
    """After stop_by(now), a transient error fails the batch without another try."""
    sink = FakeSink(lambda rows: TransientError("locked"))
    write = retrying(sink, RetryPolicy(deadline_s=60.0, backoff_initial_s=10.0))
    write.stop_by(time.monotonic())
    started = time.monotonic()
    assert write.write(make_rows(2)) is not None
    assert time.monotonic() - started < GENEROUS_S
    assert len(sink.calls) == 1


def test_interrupt_ends_the_pause_under_way() -> None:
    """A long backoff is cut short by interrupt(): the retry comes at once, and commits."""
    attempts = [0]

    def once(rows: Sequence[EntryRow]) -> BaseException | None:
        attempts[0] += 1
        return TransientError("locked") if attempts[0] == 1 else None

    sink = FakeSink(once)
    write = retrying(sink, RetryPolicy(deadline_s=600.0, backoff_initial_s=300.0))
    outcome: list[BaseException | None] = []
    thread = threading.Thread(target=lambda: outcome.append(write.write(make_rows(2))))
    started = time.monotonic()
    thread.start()
    wait_until(lambda: attempts[0] == 1, what="the first attempt")
    write.interrupt()
    thread.join(GENEROUS_S)
    assert outcome == [None]
    assert time.monotonic() - started < GENEROUS_S
