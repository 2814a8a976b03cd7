"""The writer's own entries in the chain, queued behind the rows they speak of."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.rows import PendingRow, SystemRow
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.writer_accounting import WriterAccount


def drain(entries: AuditQueue) -> list[SystemRow]:
    """Every row queued, in order."""
    return [entries.get_nowait() for _ in range(entries.qsize())]


def test_nothing_is_declared_when_nothing_happened() -> None:
    """No refusal and no row given up: declare() queues nothing."""
    entries = AuditQueue(10)
    WriterAccount(entries, WriterIdentity("async")).declare()
    assert entries.qsize() == 0


def test_each_group_given_up_gets_its_writer_spooled_once() -> None:
    """Two groups noted: two writer.spooled rows, in order; a second declare() adds none."""
    entries = AuditQueue(10)
    account = WriterAccount(entries, WriterIdentity("async"))
    account.note_given_up([1, 2, 3], "/tmp/audit.spool.jsonl", "boom")
    account.note_given_up([7], None, "lost")
    account.declare()
    account.declare()
    rows = drain(entries)
    assert [row.event_type for row in rows] == [SystemEventType.WRITER_SPOOLED.value] * 2
    assert [json.loads(row.details)["spool"] for row in rows] == ["/tmp/audit.spool.jsonl", None]
    assert all(type(row) is SystemRow for row in rows)


def test_close_declares_what_is_left_then_writer_closed_with_the_totals() -> None:
    """close() queues the pending writer.spooled, then writer.closed with the counts given."""
    entries = AuditQueue(10)
    account = WriterAccount(entries, WriterIdentity("async"))
    account.note_given_up([1], None, "boom")
    account.close(written=4, failed=1)
    spooled, closed = drain(entries)
    assert spooled.event_type == SystemEventType.WRITER_SPOOLED.value
    assert closed.event_type == SystemEventType.WRITER_CLOSED.value
    details = json.loads(closed.details)
    assert (details["written"], details["failed"], details["dropped"]) == (4, 1, 0)
    assert details["last_writer_seq"] == spooled.writer_seq


def test_a_declaration_that_fails_is_made_again_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group stays listed until its row is queued: the next declare() queues it."""
    entries = AuditQueue(10)
    account = WriterAccount(entries, WriterIdentity("async"))
    account.note_given_up([1], None, "boom")
    original = WriterIdentity.spooled

    def failing(identity: WriterIdentity, *args: Any, **kwargs: Any) -> PendingRow:
        raise RuntimeError("cannot build the row")

    monkeypatch.setattr(WriterIdentity, "spooled", failing)
    with pytest.raises(RuntimeError):
        account.declare()
    assert entries.qsize() == 0
    monkeypatch.setattr(WriterIdentity, "spooled", original)
    account.declare()
    assert [row.event_type for row in drain(entries)] == [SystemEventType.WRITER_SPOOLED.value]
