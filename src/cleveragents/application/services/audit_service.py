"""The audit service: validate in the caller's thread, then enqueue (async) or write (sync).

An entry's way: ``ReactiveEventBus.emit`` -> the handler from :meth:`AuditService.attach`
-> :meth:`AuditService.record` (validation, encoding, id and time) -> :class:`AuditQueue`
-> :class:`AuditWriter` (batches, retries) -> :class:`AuditDatabase` (insert, commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from cleveragents.application import trail
from cleveragents.application.event_bus import ReactiveEventBus
from cleveragents.application.services.entry_prep import EntryPreparer, entry_of
from cleveragents.application.trail import CheckpointingSink, load_checkpoints
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import PENDING_ID, AuditLogEntry
from cleveragents.domain.errors import (
    AuditQueueFullError,
    AuditServiceClosedError,
)
from cleveragents.domain.event_types import (
    SYSTEM_EVENT_TYPES,
    AuditEventType,
    SystemEventType,
)
from cleveragents.domain.events import DomainEvent
from cleveragents.domain.replay import RejectedLine, ReplayReport
from cleveragents.domain.rows import PendingRow, with_writer_seq
from cleveragents.domain.stats import AuditStats
from cleveragents.domain.verification import Checkpoint, VerifyReport
from cleveragents.infrastructure.accounting import WriterIdentity
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.exit_hooks import run_at_exit
from cleveragents.infrastructure.persistence import reads
from cleveragents.infrastructure.persistence.database import (
    AuditDatabase,
    create_schema,
    insert_new,
    insert_one,
    open_database,
)
from cleveragents.infrastructure.persistence.errors import describe, is_transient
from cleveragents.infrastructure.persistence.reads import EntryFilter
from cleveragents.infrastructure.persistence.verify import verify_chain
from cleveragents.infrastructure.spool import DEFAULT_SPOOL_NAME, Spool
from cleveragents.infrastructure.trace_context import audit_io
from cleveragents.infrastructure.writer import AuditWriter, BatchSink, RetryPolicy

__all__ = ["AuditService"]

_log = structlog.get_logger("cleveragents.audit")

# While record() waits for room in a full queue, it looks this often whether the
# writer is still alive and the service still open.
_FULL_QUEUE_CHECK_S = 0.1
# While arecord() waits for room it looks again after this pause, doubled each time up
# to the second one: room is seen within milliseconds, and many waiting tasks stay cheap.
_ROOM_POLL_FIRST_S = 0.001
_ROOM_POLL_MAX_S = 0.020
# Automatic checkpoints with a path and neither a count nor an interval: this often.
DEFAULT_CHECKPOINT_EVERY = 10_000


class AuditService:
    """Records audit entries without slowing the caller down, and reads them back.

    Without ``session`` the service owns an engine made from ``settings.database_url``
    and, when ``settings.audit_async`` is true, a writer thread that commits queued
    entries in batches. With ``session`` it always writes synchronously through that
    session (INSERT + COMMIT per record), so the caller's transaction sees the row.

    The service is open until :meth:`close`; it is a context manager.
    """

    def __init__(self, settings: Settings | None = None, *, session: Session | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._session = session
        self._database: AuditDatabase | None = None
        self._checkpoints: CheckpointingSink | None = None
        self._queue: AuditQueue | None = None
        self._writer: AuditWriter | None = None
        self._closed = False
        self._lock = threading.Lock()  # close(), and the counters below
        self._sync_written = 0
        self._sync_failed = 0
        self._adapter_failed = 0
        # arecord() on a synchronous service: its INSERT runs in a thread of the
        # service's own, not in the loop's default executor (made on first use).
        self._arecord_writes: ThreadPoolExecutor | None = None
        # Synchronous writes: writer_seq is taken and the row committed under this lock,
        # so the database sees this writer's rows in writer_seq order.
        self._sync_lock = threading.Lock()
        self._sync_writer_seq = 0
        self._hmac_key = self._settings.hmac_key_bytes()
        self._identity = WriterIdentity(
            "sync" if session is not None or not self._settings.audit_async else "async"
        )
        self._preparer = EntryPreparer(self._settings)
        if session is not None:
            create_schema(session)
            self._spool = Spool(self._spool_path(None))
            self._write_system(self._identity.opened())
            return
        self._database = open_database(self._settings.database_url, hmac_key=self._hmac_key)
        self._spool = Spool(self._spool_path(self._database))
        if self._settings.audit_async:
            self._start_writer()
        else:
            try:
                self._write_system(self._identity.opened())
            except BaseException:
                self._database.dispose()
                raise
        _open_services.add(self)

    def _spool_path(self, database: AuditDatabase | None) -> Path:
        if self._settings.audit_spool_path is not None:
            return self._settings.audit_spool_path.absolute()
        if database is not None and database.sqlite_path is not None:
            return database.sqlite_path.with_name(database.sqlite_path.name + ".spool.jsonl")
        return Path.cwd() / DEFAULT_SPOOL_NAME

    def _start_writer(self) -> None:
        assert self._database is not None
        self._queue = AuditQueue(self._settings.audit_queue_maxsize)
        self._queue.put_system(self._identity.opened())
        sink: BatchSink = self._database
        checkpoint_path = self._settings.audit_checkpoint_path
        if checkpoint_path is not None:
            every = self._settings.audit_checkpoint_every
            interval_s = self._settings.audit_checkpoint_interval_s
            self._checkpoints = CheckpointingSink(
                self._database,
                checkpoint_path.absolute(),
                every=DEFAULT_CHECKPOINT_EVERY if every is None and interval_s is None else every,
                interval_s=interval_s,
            )
            sink = self._checkpoints
        self._writer = AuditWriter(
            self._queue,
            sink,
            batch_size=self._settings.audit_batch_size,
            retry=RetryPolicy(deadline_s=self._settings.audit_retry_deadline),
            is_transient=is_transient,
            describe=describe,
            exit_timeout_s=self._settings.audit_close_timeout_s,
            spool=self._spool,
            identity=self._identity,
        )
        self._writer.start()

    def _restart_after_fork(self) -> None:
        """In a forked child: own connections, a fresh queue and a writer of its own.

        Entries the parent had queued stay the parent's to write; the child's
        records go through its own writer, a new one in the chain's accounting (a
        synchronous child writes its ``writer.opened`` before its first entry).
        """
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._identity = self._identity.forked()
        self._arecord_writes = None  # the parent's thread is not in the child
        self._sync_writer_seq = 0
        self._sync_written = self._sync_failed = 0  # the child's own totals
        assert self._database is not None
        self._database.after_fork_in_child()
        if self._writer is not None:
            self._writer.forget_after_fork()
            if not self._closed:
                self._start_writer()

    # -- recording ----------------------------------------------------------------------

    @property
    def is_async(self) -> bool:
        """True when record() queues entries for the writer thread."""
        return self._writer is not None

    @property
    def settings(self) -> Settings:
        """The settings this service was made with."""
        return self._settings

    def record(
        self,
        event_type: AuditEventType | str,
        *,
        actor: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> AuditLogEntry:
        """Record one entry.

        Everything is checked here, in the caller's thread, before anything is
        queued. Asynchronous: returns at once an entry with ``id == -1`` (pending).
        Synchronous: returns the committed entry with its database id.

        Unless ``settings.audit_redact`` is off, secrets in ``details`` are masked
        first (see :mod:`cleveragents.domain.redaction`), in a copy: the caller's
        object is never changed. The returned entry holds the masked details.

        Raises:
            ValueError: ``event_type`` is unknown, a number in ``details`` is not
                finite, a string holds a lone surrogate, or a value is beyond the
                limits of :mod:`cleveragents.domain.limits` (NUL or more than
                ``MAX_TEXT_BYTES`` in ``actor``, ``resource``, ``correlation_id``;
                ``details`` beyond ``MAX_DETAILS_BYTES`` or ``MAX_DETAILS_DEPTH``).
            TypeError: ``details`` is not a mapping of str keys to JSON values, or
                ``actor``, ``resource`` or ``correlation_id`` is not a str.
            AuditQueueFullError: the queue is full and the overflow policy says not
                to wait (longer); the entry is not recorded.
            AuditServiceClosedError: the service is closed.
            AuditWriterError: the writer thread gave up after repeated failures.
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; record() is refused")
        kind, row, masked = self._preparer.prepare(
            event_type, actor, resource, details, correlation_id, self._identity.writer_id
        )
        if self._queue is not None:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._put_when_full(row)
            if self._closed:
                self._spool_if_orphaned()
            entry_id = PENDING_ID
        else:
            entry_id = self._write_now(row)
        return entry_of(entry_id, kind, row, masked)

    async def arecord(
        self,
        event_type: AuditEventType | str,
        *,
        actor: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> AuditLogEntry:
        """:meth:`record` for asyncio code: never blocks the event loop.

        The entry is checked in the caller's thread (the same errors as
        :meth:`record`, raised at the call). Asynchronous service with room in the
        queue: returns as :meth:`record` does, without a context switch. Queue full
        with overflow ``block``: waits for room on the loop, looking again every few
        milliseconds, holding no thread (the loop's default executor, which also
        resolves host names, stays free). Synchronous service: the INSERT + COMMIT
        runs in a worker thread of the service's own.

        A task cancelled while it waits for room records nothing.
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; record() is refused")
        kind, row, masked = self._preparer.prepare(
            event_type, actor, resource, details, correlation_id, self._identity.writer_id
        )
        if self._queue is not None:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                await self._aput_when_full(row)
            if self._closed:
                self._spool_if_orphaned()
            entry_id = PENDING_ID
        else:
            entry_id = await self._write_in_worker(row)
        return entry_of(entry_id, kind, row, masked)

    async def _write_in_worker(self, row: PendingRow) -> int:
        """:meth:`_write_now` in the service's own worker thread (one: writes are serial).

        Not in the loop's default executor: a stuck database would hold its few
        threads, which asyncio also needs (``to_thread``, ``getaddrinfo``).
        """
        with self._lock:
            if self._closed:
                raise AuditServiceClosedError("the audit service is closed; record() is refused")
            if self._arecord_writes is None:
                self._arecord_writes = ThreadPoolExecutor(
                    1, thread_name_prefix="cleveragents-audit-arecord"
                )
            writes = self._arecord_writes
            # Under the lock, so close() cannot shut the thread down in between.
            future = writes.submit(contextvars.copy_context().run, self._write_now, row)
        return await asyncio.wrap_future(future)

    def _put_when_full(self, row: PendingRow) -> None:
        """Apply the overflow policy to a row that found the queue full."""
        entries, writer = self._queue, self._writer
        assert entries is not None
        assert writer is not None
        policy = self._settings.audit_overflow
        if policy == "raise":
            self._reject(row, "the audit queue is full")
        if writer.on_writer_thread():
            self._reject(row, "the audit queue is full and record() runs on the writer thread")
        timeout = self._settings.audit_block_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _FULL_QUEUE_CHECK_S
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    self._reject(row, f"the audit queue stayed full for {timeout} s")
            try:
                entries.put(row, timeout=wait)
                return
            except queue.Full:
                if self._closed:
                    raise AuditServiceClosedError(
                        "the audit service was closed while record() waited for room"
                    ) from None
                if not writer.is_alive():
                    self._reject(row, "the audit queue is full and its writer is not running")

    async def _aput_when_full(self, row: PendingRow) -> None:
        """:meth:`_put_when_full` for :meth:`arecord`: waits on the loop, not in a thread."""
        entries, writer = self._queue, self._writer
        assert entries is not None
        assert writer is not None
        if self._settings.audit_overflow == "raise":
            self._reject(row, "the audit queue is full")
        timeout = self._settings.audit_block_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _ROOM_POLL_FIRST_S
        while True:
            await asyncio.sleep(pause)
            try:
                entries.put_nowait(row)
                return
            except queue.Full:
                pause = min(pause * 2, _ROOM_POLL_MAX_S)
            if self._closed:
                raise AuditServiceClosedError(
                    "the audit service was closed while arecord() waited for room"
                )
            if not writer.is_alive():
                self._reject(row, "the audit queue is full and its writer is not running")
            if deadline is not None and time.monotonic() >= deadline:
                self._reject(row, f"the audit queue stayed full for {timeout} s")

    def _spool_if_orphaned(self) -> None:
        """After a record() that raced close(): if no writer will take the entry, spool it.

        The entry is then accounted for like any other the database did not get
        (counted, logged, replayable), so the call returns normally: raising would
        tell the caller it was not recorded, and a retry would duplicate it.
        """
        assert self._writer is not None
        if not self._writer.is_alive():
            self._writer.fail_orphans("the service was closed while record() ran")

    def _reject(self, row: PendingRow, reason: str) -> None:
        assert self._queue is not None
        rejected = self._queue.note_rejected()  # declared by the writer: writer.dropped
        _log.warning(
            "audit_entry_rejected",
            reason=reason,
            event_type=row[1],
            event_id=row[0],
            total_rejected=rejected,
        )
        raise AuditQueueFullError(
            f"{reason} ({self._settings.audit_queue_maxsize} entries waiting);"
            f" the {row[1]} entry was not recorded"
        )

    def _write_now(self, row: PendingRow) -> int:
        with self._sync_lock:
            if self._closed:  # close() ran since record() looked; its writer.closed is written
                raise AuditServiceClosedError("the audit service is closed; record() is refused")
            self._open_forked_child()
            try:
                entry_id = self._append_now(row)
            except Exception as exc:
                with self._lock:
                    self._sync_failed += 1
                # describe(): the driver's message only, never the statement's parameters,
                # which are audit data (an injected session's engine may not hide them).
                _log.error(
                    "audit_entry_failed", event_type=row[1], event_id=row[0], error=describe(exc)
                )
                raise
        with self._lock:
            self._sync_written += 1
        return entry_id

    def _write_system(self, row: PendingRow) -> None:
        """Synchronously append a system row (writer.opened, writer.closed)."""
        with self._sync_lock:
            self._open_forked_child()
            self._append_now(row)

    def _open_forked_child(self) -> None:
        """A forked synchronous child appends its ``writer.opened`` before anything else."""
        if self._sync_writer_seq == 0 and self._identity.parent_writer_id is not None:
            self._append_now(self._identity.opened())

    def _append_now(self, row: PendingRow) -> int:
        """Commit ``row`` with the next writer_seq (taken only if the commit succeeds)."""
        writer_seq = self._sync_writer_seq + 1
        full = with_writer_seq(row, writer_seq)
        with audit_io():  # spans of this write are the trail's own, never audited
            if self._session is not None:
                entry_id = insert_one(self._session, full, hmac_key=self._hmac_key)
            else:
                assert self._database is not None
                entry_id = self._database.write_one(full)
        self._sync_writer_seq = writer_seq
        return entry_id

    def note_adapter_failure(
        self, adapter: str, error: BaseException, *, event_type: str | None = None
    ) -> None:
        """Account for an event a framework adapter could not record: logged and counted.

        For adapters (``cleveragents.integrations``), which must never raise into
        the framework they observe: the loss shows in ``stats().adapter_failed`` and
        as an ``audit_adapter_failed`` error in the log.
        """
        with self._lock:
            self._adapter_failed += 1
            total = self._adapter_failed
        _log.error(
            "audit_adapter_failed",
            adapter=adapter,
            event_type=event_type,
            error=f"{type(error).__name__}: {error}",
            total_adapter_failed=total,
        )

    # -- the event bus -----------------------------------------------------------------

    def attach(self, bus: ReactiveEventBus) -> Callable[[], None]:
        """Record every :class:`DomainEvent` of an :class:`AuditEventType` emitted on ``bus``.

        The event's payload becomes the entry's details. Returns a callable that
        detaches the service again.
        """
        unsubscribes = [bus.subscribe(self._on_event, kind.value) for kind in AuditEventType]

        def detach() -> None:
            for unsubscribe in unsubscribes:
                unsubscribe()

        return detach

    def _on_event(self, event: DomainEvent) -> None:
        self.record(
            event.event_type,
            actor=event.actor,
            resource=event.resource,
            details=event.payload,
            correlation_id=event.correlation_id,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry recorded before this call is committed.

        Returns True when done, False on timeout, when an entry could not be
        written, or when the writer cannot be waited for (it died, or this is
        the writer thread). The writer keeps running: later records are persisted.
        A synchronous service has nothing pending and returns True.
        """
        if self._writer is None:
            return True
        return self._writer.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for asyncio code: waits in a thread of its own, never on the loop.

        Not in the loop's default executor, whose few threads a stuck database would hold.
        """
        return await _in_own_thread("cleveragents-audit-aflush", self.flush, timeout)

    async def aclose(self) -> None:
        """:meth:`close` for asyncio code: drains in a thread of its own, never on the loop.

        A task cancelled while it waits leaves the close to finish in that thread.
        """
        await _in_own_thread("cleveragents-audit-aclose", self.close)

    def close(self) -> None:
        """Flush, stop the writer and dispose what the service owns. Idempotent.

        Waits at most ``settings.audit_close_timeout_s``; entries that could not
        be persisted by then are counted in ``stats().failed`` and logged.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _open_services.discard(self)
        if self._arecord_writes is not None:
            self._arecord_writes.shutdown(wait=False)  # after the writes already submitted
        if self._writer is None:
            self._close_sync_account()
        else:
            if self._writer.on_writer_thread():
                self._writer.stop(None)  # logs; the writer ends once it has drained the queue
                return
            if not self._writer.stop(self._settings.audit_close_timeout_s):
                _log.error(
                    "audit_close_incomplete",
                    timeout_s=self._settings.audit_close_timeout_s,
                    hint="the writer is stuck on the database; what is still queued is spooled",
                )
                # The batch in the writer's hand stays its own: committed if the database
                # comes back, else spooled by the exit hook, which still tracks the writer.
                self._writer.fail_orphans("the writer did not finish before the close deadline")
                return  # the writer still uses the engine: leave it to the process exit
            if self._checkpoints is not None:
                self._checkpoints.write_now()  # the head after writer.closed
        if self._database is not None:
            self._database.dispose()

    def _close_sync_account(self) -> None:
        """Synchronous mode: append ``writer.closed``; a failure is logged, not raised."""
        with self._lock:
            written, failed = self._sync_written, self._sync_failed
        closed = self._identity.closed(
            last_writer_seq=self._sync_writer_seq,
            recorded=written + failed,
            written=written,
            failed=failed,
            dropped=0,
        )
        try:
            self._write_system(closed)
        except Exception as exc:
            _log.error(
                "audit_writer_close_failed",
                error=describe(exc),
                hint="verify will show this writer as unterminated",
            )

    def replay(self, path: str | os.PathLike[str] | None = None) -> ReplayReport:
        """Re-ingest a dead-letter spool (default: this service's), idempotently.

        Entries already stored are skipped, so replaying twice changes nothing. The
        spool is truncated only after its entries are committed; lines that are not
        valid entries (a torn last line after a crash, say) are kept aside in the
        rejects file beside it, with their line numbers.
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; replay() is refused")
        spool = self._spool if path is None else Spool(Path(path).absolute())
        with spool.draining() as contents:
            if self._session is not None:
                inserted = insert_new(
                    self._session.connection(), contents.rows, hmac_key=self._hmac_key
                )
                self._session.commit()
            else:
                assert self._database is not None
                inserted, refused = self._database.insert_new(contents.rows)
                for index, reason in refused:  # kept aside with the unreadable lines
                    number, text = contents.sources[index]
                    contents.rejected.append(
                        RejectedLine(number, f"refused by the database: {reason}", text)
                    )
        for line in contents.rejected:
            _log.warning(
                "audit_spool_line_rejected",
                spool=str(spool.path),
                line_number=line.line_number,
                reason=line.reason,
                kept_in=str(spool.rejects_path),
            )
        return ReplayReport(
            path=spool.path,
            read=len(contents.rows),
            inserted=inserted,
            rejected=tuple(contents.rejected),
            rejects_path=spool.rejects_path,
        )

    # -- tamper evidence ---------------------------------------------------------------

    def verify(
        self,
        *,
        checkpoint: str | os.PathLike[str] | Checkpoint | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Verify the committed chain: hashes, links, writer accounting, and checkpoints.

        Streams the trail in pages (bounded memory). In keyed mode the HMACs are
        checked with ``settings.audit_hmac_key``. ``checkpoint``: a checkpoint, or a
        file of them (from ``cleveragents-audit checkpoint`` or
        ``audit_checkpoint_path``), to detect truncation and rewrites up to it. This
        service's own writer is not reported as unterminated; call :meth:`flush`
        first to include what is still queued. ``progress(done, total)`` is called
        after every page.

        The report's ``status`` (and ``exit_code``): 0 intact, 1 tampered, 2 loss
        suspected, 3 only declared drops, 4 could not verify (e.g. an unreadable
        checkpoint file, or HMACs and no key).
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; verify() is refused")
        if isinstance(checkpoint, Checkpoint):
            checkpoints = [checkpoint]
        elif checkpoint is not None:
            try:
                checkpoints = load_checkpoints(checkpoint)
            except (OSError, ValueError) as exc:
                return VerifyReport.unverifiable(f"cannot use the checkpoint {checkpoint}: {exc}")
        else:
            checkpoints = []
        if self._session is not None:
            return verify_chain(
                self._session.connection(),
                hmac_key=self._hmac_key,
                checkpoints=checkpoints,
                own_writer_id=self._identity.writer_id,
                progress=progress,
            )
        assert self._database is not None
        return trail.verify(
            self._database,
            hmac_key=self._hmac_key,
            checkpoints=checkpoints,
            own_writer_id=self._identity.writer_id,
            progress=progress,
        )

    def checkpoint(self) -> Checkpoint:
        """The chain head now (seq, entry_hash, count, time): keep it away from the database.

        Write it out with ``checkpoint.to_json()``; a later :meth:`verify` against it
        proves that nothing up to it was truncated or rewritten.
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; checkpoint() is refused")
        if self._session is not None:
            return trail.head_checkpoint(self._session.connection(), "the session's database")
        assert self._database is not None
        return trail.current_checkpoint(self._database)

    @property
    def writer_id(self) -> str:
        """This service's writer id in the chain's accounting (a forked child has its own)."""
        return self._identity.writer_id

    @property
    def spool_path(self) -> Path:
        """Where entries the database would not take are kept for replay."""
        return self._spool.path

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        mode = "async" if self.is_async else "sync"
        where = "session" if self._database is None else self._database.url
        state = "closed" if self._closed else "open"
        return f"<AuditService {mode} {where} {state}>"

    # -- reads -------------------------------------------------------------------------

    def count(
        self,
        *,
        event_type: AuditEventType | SystemEventType | str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        correlation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_system: bool = False,
    ) -> int:
        """How many committed entries match every given filter (``since`` <= t < ``until``).

        The library's own entries (``writer.*``, ``retention.purged``) are counted only
        with ``include_system=True`` or when ``event_type`` names one.
        """
        where = EntryFilter(
            event_type, actor, resource, correlation_id, since, until, include_system
        )
        with self._reader() as reader:
            return reads.count(reader, where)

    def query(
        self,
        *,
        event_type: AuditEventType | SystemEventType | str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        correlation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
        include_system: bool = False,
    ) -> list[AuditLogEntry]:
        """Committed entries matching every filter, ascending by id, after ``after_id``.

        Page through a large trail by passing the last id seen as ``after_id``. The
        library's own entries are included only with ``include_system=True`` (or an
        ``event_type`` naming one).
        """
        where = EntryFilter(
            event_type, actor, resource, correlation_id, since, until, include_system
        )
        if after_id is not None and (isinstance(after_id, bool) or not isinstance(after_id, int)):
            raise TypeError(f"after_id must be an int or None, not {type(after_id).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int, not {type(limit).__name__}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._reader() as reader:
            return reads.query(reader, where, after_id=after_id, limit=limit)

    def get(self, event_id: str, *, include_system: bool = False) -> AuditLogEntry | None:
        """The committed entry with ``event_id``, or None (also for a system entry, unless
        ``include_system=True``)."""
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, not {type(event_id).__name__}")
        if not isinstance(include_system, bool):
            raise TypeError(f"include_system must be a bool, not {type(include_system).__name__}")
        with self._reader() as reader:
            entry = reads.get(reader, event_id)
        if entry is not None and not include_system and entry.event_type in SYSTEM_EVENT_TYPES:
            return None
        return entry

    def stats(self) -> AuditStats:
        """A snapshot of the counters."""
        if self._writer is not None and self._queue is not None:
            return AuditStats(
                enqueued=self._queue.entries_put,
                written=self._writer.written,
                failed=self._writer.failed,
                spooled=self._writer.spooled,
                rejected=self._queue.rejected,
                retried=self._writer.retried,
                batches=self._writer.batches,
                queue_depth=self._queue.entries_waiting(),
                adapter_failed=self._adapter_failed,
            )
        return AuditStats(
            enqueued=self._sync_written + self._sync_failed,
            written=self._sync_written,
            failed=self._sync_failed,
            rejected=0,
            retried=0,
            batches=self._sync_written,
            queue_depth=0,
            adapter_failed=self._adapter_failed,
        )

    @contextmanager
    def _reader(self) -> Iterator[Connection | Session]:
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; reads are refused")
        if self._session is not None:
            with nullcontext(self._session) as session:
                yield session
            return
        assert self._database is not None
        with self._database.connect() as connection:
            yield connection


# Services that own a database, for the fork hook below.
_open_services: weakref.WeakSet[AuditService] = weakref.WeakSet()


# The databases whose writes were held for the fork under way.
_held_for_fork: list[AuditDatabase] = []


def _hold_writes_before_fork() -> None:
    for service in list(_open_services):
        if service._database is not None:
            service._database.before_fork()
            _held_for_fork.append(service._database)


def _resume_writes_after_fork() -> None:
    while _held_for_fork:
        _held_for_fork.pop().after_fork_in_parent()


def _restart_services_after_fork() -> None:
    _held_for_fork.clear()
    for service in list(_open_services):
        service._restart_after_fork()


os.register_at_fork(
    before=_hold_writes_before_fork,
    after_in_parent=_resume_writes_after_fork,
    after_in_child=_restart_services_after_fork,
)


def _close_sync_services() -> None:
    """At exit, close synchronous services nobody closed, so their writer.closed is written.

    Nothing of theirs is pending (each record() committed); without this a clean exit
    would look like a killed writer to verify. Asynchronous services are drained by
    the writer's own exit hook.
    """
    for service in list(_open_services):
        if not service.is_async:
            service.close()


# Before the writers' own hook (priority 0): a synchronous service has nothing queued.
run_at_exit(_close_sync_services, priority=1)


_T = TypeVar("_T")


async def _in_own_thread(name: str, call: Callable[..., _T], *args: object) -> _T:
    """Run ``call(*args)`` in a new daemon thread and await its result on the running loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: tuple[_T, None] | tuple[None, BaseException]) -> None:
        if done.cancelled():
            return
        result, error = outcome
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        outcome: tuple[_T, None] | tuple[None, BaseException]
        try:
            outcome = (context.run(call, *args), None)
        except BaseException as exc:
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done
