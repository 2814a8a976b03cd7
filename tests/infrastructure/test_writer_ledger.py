"""What became of each row the writer took: counted once, as written or failed, and the
failed ones kept in a real spool (or counted as lost when there is none, or it breaks).
"""

from __future__ import annotations

import json
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow, SystemRow, with_writer_seq
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.spool import Spool
from cleveragents.infrastructure.writer_accounting import WriterAccount
from cleveragents.infrastructure.writer_ledger import WriterLedger, callers, error_text


def pending(n: int) -> PendingRow:
    """A caller's row, ``writer_seq`` to come."""
    return PendingRow(
        event_id=new_event_id(),
        event_type="tool.invoked",
        actor=None,
        resource=None,
        details=f'{{"n":{n}}}',
        correlation_id=None,
        created_at=datetime.now(UTC),
        writer_id=None,
    )


def caller_rows(count: int, first_seq: int = 1) -> list[EntryRow]:
    """``count`` caller rows with writer_seq from ``first_seq``."""
    return [with_writer_seq(pending(n), first_seq + n) for n in range(count)]


def ledger(
    spool: Spool | None = None, account: WriterAccount | None = None, *, on_writer: bool = True
) -> WriterLedger:
    """A ledger with its own lock, as if called on the writer thread (or not)."""
    return WriterLedger(threading.Condition(), spool, account, lambda: on_writer)


def test_a_row_committed_twice_is_counted_once() -> None:
    """A retry that commits rows already counted (skip_stored) adds nothing."""
    book = ledger()
    rows = caller_rows(3)
    book.take(rows)
    book.count_written(rows)
    book.count_written(rows)
    assert (book.written, book.batches, book.unsettled()) == (3, 1, [])


def test_a_row_given_up_stays_failed_when_a_late_commit_comes() -> None:
    """abandon() gives the batch in hand up; the commit that lands after counts nothing."""
    book = ledger()
    rows = caller_rows(2)
    book.take(rows)
    book.give_up(rows, "the writer did not finish before the exit deadline")
    book.count_written(rows)
    assert (book.written, book.failed, book.batches) == (0, 2, 0)


def test_rows_given_up_go_to_the_spool_and_system_rows_are_not_counted(tmp_path: Path) -> None:
    """Caller rows and system rows are spooled; only the caller's count as failed/spooled."""
    spool = Spool(tmp_path / "audit.spool.jsonl")
    book = ledger(spool)
    system = with_writer_seq(pending(0), 9, SystemRow)
    rows = [*caller_rows(2), system]
    with capture_logs() as logs:
        book.give_up(rows, "OperationalError: database or disk is full")
    assert (book.failed, book.spooled) == (2, 2)
    assert callers(rows) == 2
    with spool.draining() as contents:
        assert [row.writer_seq for row in contents.rows] == [1, 2, 9]
    [failed] = [log for log in logs if log["event"] == "audit_entries_failed"]
    assert failed["spool"] == str(spool.path)
    assert failed["lost"] == 0


def test_without_a_spool_the_rows_are_counted_as_lost() -> None:
    """No spool: failed, not spooled, and the log says they are lost."""
    book = ledger()
    with capture_logs() as logs:
        book.give_up(caller_rows(2), "boom")
    assert (book.failed, book.spooled) == (2, 0)
    [failed] = [log for log in logs if log["event"] == "audit_entries_failed"]
    assert failed["hint"] == "these entries are lost"


def test_a_spool_that_cannot_be_written_counts_the_rows_as_lost(tmp_path: Path) -> None:
    """The spool's append fails (its path is a directory): failed, none spooled, logged."""
    book = ledger(Spool(tmp_path))
    with capture_logs() as logs:
        book.give_up(caller_rows(3), "boom")
    assert (book.failed, book.spooled) == (3, 0)
    assert [log["log_level"] for log in logs if log["event"] == "audit_spool_failed"] == [
        "critical"
    ]


def test_count_lost_skips_rows_already_counted() -> None:
    """The last resort counts only the rows not yet settled."""
    book = ledger()
    rows = caller_rows(4)
    book.take(rows)
    book.count_written(rows[:2])
    book.count_lost(rows, "the spool is broken too")
    assert (book.written, book.failed) == (2, 2)


def test_the_queued_rows_are_given_up_and_control_messages_put_back() -> None:
    """give_up_queued takes every row from the queue; controls go back when asked."""
    entries = AuditQueue(10)
    for n in range(3):
        entries.put_nowait(pending(n))
    marker = object()
    entries.put_control(marker)
    book = ledger()
    book.give_up_queued(entries, "the writer thread is not running", requeue_controls=lambda: True)
    assert book.failed == 3
    assert entries.get_nowait() is marker
    book.give_up_queued(entries, "again", requeue_controls=lambda: False)
    assert entries.qsize() == 0


def test_rows_given_up_on_the_writer_thread_are_declared_by_writer_spooled(
    tmp_path: Path,
) -> None:
    """With an account, a give-up on the writer thread queues a writer.spooled row naming them."""
    entries = AuditQueue(10)
    account = WriterAccount(entries, WriterIdentity("async"))
    spool = Spool(tmp_path / "audit.spool.jsonl")
    ledger(spool, account).give_up(caller_rows(3, first_seq=5), "boom")
    declaration = entries.get_nowait()
    assert type(declaration) is SystemRow
    assert declaration.event_type == SystemEventType.WRITER_SPOOLED.value
    details = json.loads(declaration.details)
    assert (details["count"], details["spool"]) == (3, str(spool.path))
    # Off the writer thread (abandon() at exit) nothing is queued: writer.closed says it.
    ledger(spool, account, on_writer=False).give_up(caller_rows(1, first_seq=9), "late")
    assert entries.qsize() == 0


def test_error_text_survives_a_broken_str() -> None:
    """An exception whose __str__ raises is named by its type alone."""

    class BrokenError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert error_text(ValueError("bad")) == "ValueError: bad"
    assert error_text(BrokenError()) == "BrokenError"


def test_the_queue_is_not_touched_when_nothing_waits() -> None:
    """An empty queue gives nothing up."""
    entries = AuditQueue(1)
    book = ledger()
    book.give_up_queued(entries, "nothing", requeue_controls=lambda: True)
    assert book.failed == 0
    with pytest.raises(queue.Empty):
        entries.get_nowait()
