"""The writer thread outlives any exception, at any step, on real SQLite and PostgreSQL.

An arbitrary exception (an ``Exception``, a ``RuntimeError`` subclass, and one that is
not an ``Exception`` at all) is injected into one step of the writer by patching the
library's own functions; the database stays real. After each: the writer still
commits later entries, the counters add up and are never negative, and ``verify``
says what an operator expects: the failed entry is declared (spooled or lost), never
a false "tampered" or an undeclared gap; a replay of the spool makes the trail whole.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from cleveragents import AuditService, AuditWriterError, Settings, VerifyStatus
from cleveragents.application import trail as trail_module
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow, PendingRow
from cleveragents.domain.stats import AuditStats
from cleveragents.infrastructure import spool as spool_module
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.spool import Spool
from cleveragents.infrastructure.writer import MAX_FAILURES_IN_ROW, AuditWriter
from tests.conftest import MakeService
from tests.support import GENEROUS_S, wait_until
from tests.trail_support import verify_url

POISON = "poison"


class BoomError(Exception):
    """An exception the library has never heard of."""


class CrashError(RuntimeError):
    """A built-in kind, subclassed."""


class FatalError(BaseException):
    """Not an ``Exception`` at all (like ``SystemExit``)."""


KINDS = [BoomError, CrashError, FatalError]


def poisoned(rows: Sequence[EntryRow]) -> bool:
    """True when one of ``rows`` is the caller's poison entry."""
    return any(row.actor == POISON for row in rows)


class Injector:
    """Patches one step of the writer to raise ``kind``: for poison rows, or once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: type[BaseException]) -> None:
        self.monkeypatch = monkeypatch
        self.kind = kind
        self.raised = 0

    def fail(self, what: str) -> None:
        self.raised += 1
        raise self.kind(f"injected into {what}")

    def insert(self) -> None:
        """The batch insert refuses every batch holding the poison entry."""
        original = AuditDatabase.write_batch

        def write_batch(database: AuditDatabase, rows: Sequence[EntryRow]) -> None:
            if poisoned(rows):
                self.fail("write_batch")
            original(database, rows)

        self.monkeypatch.setattr(AuditDatabase, "write_batch", write_batch)

    def spool(self) -> None:
        """The spool's append fails as a whole."""

        def append(spool: Spool, rows: Sequence[EntryRow], error: str) -> None:
            self.fail("Spool.append")

        self.monkeypatch.setattr(Spool, "append", append)

    def encode(self) -> None:
        """The spool cannot encode the poison entry's line."""
        original = spool_module.spool_line

        def encode_line(row: EntryRow, error: str, spooled_at: str) -> bytes:
            if row.actor == POISON:
                self.fail("the spool's encoder")
            return original(row, error, spooled_at)

        self.monkeypatch.setattr(spool_module, "spool_line", encode_line)

    def checkpoint(self) -> None:
        """Every automatic checkpoint fails."""

        def append_checkpoint(path: Path, checkpoint: object) -> None:
            self.fail("append_checkpoint")

        self.monkeypatch.setattr(trail_module, "append_checkpoint", append_checkpoint)

    def accounting(self) -> None:
        """The first ``writer.spooled`` declaration cannot be built."""
        original = WriterIdentity.spooled

        def spooled(identity: WriterIdentity, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
            if not self.raised:
                self.fail("WriterIdentity.spooled")
            return original(identity, *args, **kwargs)

        self.monkeypatch.setattr(WriterIdentity, "spooled", spooled)

    def batch(self) -> None:
        """The writer's own handling of the batch holding the poison entry fails once."""
        original = AuditWriter._write

        def write(writer: AuditWriter, batch: list[EntryRow]) -> None:
            if not self.raised and poisoned(batch):
                self.fail("AuditWriter._write")
            original(writer, batch)

        self.monkeypatch.setattr(AuditWriter, "_write", write)


def assert_consistent(stats: AuditStats) -> None:
    """Every counter is non-negative, and each accepted entry is written or failed, once."""
    assert all(value >= 0 for value in astuple(stats)), stats
    assert stats.queue_depth == 0
    assert stats.enqueued == stats.written + stats.failed, stats
    assert stats.spooled <= stats.failed, stats


def record_around_poison(service: AuditService) -> None:
    """Five entries, the poison entry, five more."""
    for n in range(5):
        service.record("tool.invoked", actor="agent", details={"n": n})
    service.record("tool.invoked", actor=POISON, details={"n": "poison"})
    for n in range(5, 10):
        service.record("tool.invoked", actor="agent", details={"n": n})


@contextmanager
def injected(monkeypatch: pytest.MonkeyPatch, *steps: Callable[[], None]) -> Iterator[None]:
    """Apply ``steps`` (Injector methods) inside the block; undo them after."""
    for step in steps:
        step()
    try:
        yield
    finally:
        monkeypatch.undo()


# (the steps injected, failed, spooled, verify status while open and after close)
SCENARIOS: dict[str, tuple[Callable[[Injector], list[Callable[[], None]]], int, int, bool]] = {
    # the insert fails for the poison entry: it is spooled and declared
    "insert": (lambda i: [i.insert], 1, 1, True),
    # ... and the spool fails too: declared lost
    "spool": (lambda i: [i.insert, i.spool], 1, 0, False),
    # ... and the spool cannot encode it: declared lost, the spool is still used
    "encode": (lambda i: [i.insert, i.encode], 1, 0, False),
    # the declaration of the spooled entry fails once: made again with the next batch
    "accounting": (lambda i: [i.insert, i.accounting], 1, 1, True),
}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("step", sorted(SCENARIOS))
def test_the_writer_survives_an_exception_at_each_step(
    make_service: MakeService,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    kind: type[BaseException],
) -> None:
    """An exception injected at one step fails only the poison entry; the rest is committed,
    the counters add up, verify shows the declared failure, never tampering or a gap."""
    steps, failed, spooled, replayable = SCENARIOS[step]
    injector = Injector(monkeypatch, kind)
    service = make_service(database_url=database_url, audit_batch_size=4)
    with injected(monkeypatch, *steps(injector)):
        record_around_poison(service)
        assert service.flush(GENEROUS_S) is False  # the poison entry failed
        for n in range(10, 15):  # later entries: the writer is alive and commits them
            service.record("tool.invoked", actor="agent", details={"n": n})
        assert service.flush(GENEROUS_S) is True
    assert injector.raised >= 1
    stats = service.stats()
    assert_consistent(stats)
    assert (stats.written, stats.failed, stats.spooled) == (15, failed, spooled)
    assert service.count() == 15
    open_report = service.verify()
    assert open_report.status is VerifyStatus.DECLARED_DROPS, open_report.to_dict()
    assert set(open_report.counts) == {"spooled"}, open_report.to_dict()
    service.close()
    closed_report = verify_url(database_url)
    assert closed_report.status is VerifyStatus.DECLARED_DROPS, closed_report.to_dict()
    assert set(closed_report.counts) == {"spooled"}, closed_report.to_dict()
    with AuditService(Settings(database_url=database_url)) as reader:
        replay = reader.replay(service.spool_path)
        assert replay.inserted == spooled
        assert reader.count() == 15 + spooled
        report = reader.verify()
        expected = VerifyStatus.INTACT if replayable else VerifyStatus.DECLARED_DROPS
        assert report.status is expected, report.to_dict()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_a_failing_checkpoint_never_fails_a_committed_batch(
    make_service: MakeService,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: type[BaseException],
) -> None:
    """Every automatic checkpoint raising: every entry committed once, none failed, intact."""
    injector = Injector(monkeypatch, kind)
    service = make_service(
        database_url=database_url,
        audit_batch_size=4,
        audit_checkpoint_path=tmp_path / "checkpoints.jsonl",
        audit_checkpoint_every=1,
    )
    with capture_logs() as logs, injected(monkeypatch, injector.checkpoint):
        record_around_poison(service)
        assert service.flush(GENEROUS_S) is True
    assert injector.raised >= 1
    assert any(log["event"] == "audit_checkpoint_failed" for log in logs)
    stats = service.stats()
    assert_consistent(stats)
    assert (stats.written, stats.failed) == (11, 0)
    assert service.count() == 11
    service.close()
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.to_dict()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_an_exception_from_the_writers_own_handling_spools_the_batch_in_hand(
    make_service: MakeService,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    kind: type[BaseException],
) -> None:
    """The writer's batch handling raising once: that batch is spooled and declared, the
    writer resumes (logged), and a replay makes the trail whole."""
    injector = Injector(monkeypatch, kind)
    service = make_service(database_url=database_url, audit_batch_size=4)
    with capture_logs() as logs, injected(monkeypatch, injector.batch):
        record_around_poison(service)
        assert service.flush(GENEROUS_S) is False
        service.record("tool.invoked", actor="agent", details={"n": "after"})
        assert service.flush(GENEROUS_S) is True
    assert injector.raised == 1
    assert [log["log_level"] for log in logs if log["event"] == "audit_writer_failed"] == [
        "critical"
    ]
    assert any(log["event"] == "audit_writer_resumed" for log in logs)
    stats = service.stats()
    assert_consistent(stats)
    assert 1 <= stats.failed == stats.spooled <= 4  # at most the batch in hand
    assert stats.written + stats.failed == 12
    assert service.count() == stats.written
    report = service.verify()
    assert report.status is VerifyStatus.DECLARED_DROPS, report.to_dict()
    service.close()
    with AuditService(Settings(database_url=database_url)) as reader:
        assert reader.replay(service.spool_path).inserted == stats.failed
        assert reader.count() == 12
        whole = reader.verify()
        assert whole.status is VerifyStatus.INTACT, whole.to_dict()


def test_record_after_the_writer_gave_up_raises_naming_the_cause(
    make_service: MakeService, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer failing at every batch gives up: record() raises AuditWriterError naming the
    last failure, what it held is spooled with its writer.closed, and a replay restores it."""

    def write(writer: AuditWriter, batch: list[EntryRow]) -> None:
        raise BoomError("the writer is broken for good")

    service = make_service(database_url=database_url)
    assert service.flush(GENEROUS_S) is True  # writer.opened committed
    monkeypatch.setattr(AuditWriter, "_write", write)
    accepted = 0
    refused: AuditWriterError | None = None
    for n in range(MAX_FAILURES_IN_ROW * 4):  # its own declarations fail too: fewer entries
        try:
            service.record("tool.invoked", details={"n": n})
        except AuditWriterError as exc:
            refused = exc
            break
        accepted += 1
        assert service.flush(GENEROUS_S) is False
    assert refused is not None
    assert "gave up after" in str(refused)
    assert "BoomError: the writer is broken for good" in str(refused)
    stats = service.stats()
    assert_consistent(stats)
    assert (stats.written, stats.failed, stats.spooled) == (0, accepted, accepted)
    monkeypatch.undo()
    service.close()
    with AuditService(Settings(database_url=database_url)) as reader:
        # The entries, their declarations and writer.closed come back from the spool.
        assert reader.replay(service.spool_path).inserted > accepted
        assert reader.count() == accepted
        report = reader.verify()
        assert report.status is VerifyStatus.INTACT, report.to_dict()


def test_a_producer_waiting_for_room_is_released_when_the_writer_gives_up() -> None:
    """record() blocked on a full queue raises AuditWriterError as soon as the queue refuses."""
    entries = AuditQueue(1)
    row = PendingRow(
        new_event_id(), "tool.invoked", None, None, "{}", None, datetime.now(UTC), None
    )
    entries.put_nowait(row)
    outcome: list[BaseException] = []

    def producer() -> None:
        try:
            entries.put_when_full(row)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=producer)
    thread.start()
    wait_until(lambda: entries._blocked == 1, what="the producer to wait for room")
    entries.refuse("the audit writer gave up: BoomError")
    thread.join(GENEROUS_S)
    assert not thread.is_alive()
    [error] = outcome
    assert isinstance(error, AuditWriterError)
    assert "BoomError" in str(error)
    assert entries.entries_put == 1


def spool_row(writer_seq: int, actor: str, details: str) -> EntryRow:
    """A caller's row with this ``actor`` and ``details`` (canonical JSON, or not)."""
    return EntryRow(
        event_id=new_event_id(),
        event_type="tool.invoked",
        actor=actor,
        resource=None,
        details=details,
        correlation_id=None,
        created_at=datetime.now(UTC),
        writer_id=None,
        writer_seq=writer_seq,
    )


def test_the_spool_keeps_a_row_it_cannot_encode_as_utf8_and_leaves_out_only_the_broken(
    tmp_path: Path,
) -> None:
    """A lone surrogate (refused by record(), but met here) is kept as an ASCII escape; a row
    that cannot be encoded at all is returned with the reason, the others are appended."""
    spool = Spool(tmp_path / "audit.spool.jsonl")
    good = spool_row(1, "agent", '{"n":1}')
    surrogate = spool_row(2, "a\ud800", "{}")
    broken = spool_row(3, "\udfff", "{not json")
    [(left_out, reason)] = spool.append([good, surrogate, broken], "test")
    assert left_out is broken
    assert "JSONDecodeError" in reason
    lines = spool.path.read_bytes().splitlines()
    assert len(lines) == 2
    assert b"\\ud800" in lines[1]
    with spool.draining() as contents:
        assert [row.event_id for row in contents.rows] == [good.event_id]
        [rejected] = contents.rejected
        assert rejected.line_number == 2
        assert "surrogate" in rejected.reason
