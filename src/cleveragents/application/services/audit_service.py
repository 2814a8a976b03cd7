"""The audit service: validate in the caller's thread, then hand the row to its recorder.

An entry's way: ``ReactiveEventBus.emit`` -> the handler from :meth:`AuditService.attach`
-> :meth:`AuditService.record` (validation, encoding, id and time) -> a
:class:`~.recorder.Recorder`: queued (:class:`AuditQueue` -> :class:`AuditWriter`,
batches, retries) or direct (INSERT + COMMIT) -> the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.orm import Session

from cleveragents.application.event_bus import ReactiveEventBus
from cleveragents.application.services import process_hooks
from cleveragents.application.services.databases import (
    OwnedDatabase,
    SessionDatabase,
    TrailDatabase,
)
from cleveragents.application.services.direct_recorder import DirectRecorder
from cleveragents.application.services.entry_prep import EntryPreparer, entry_of
from cleveragents.application.services.lifecycle import Lifecycle
from cleveragents.application.services.queued_recorder import QueuedRecorder
from cleveragents.application.services.recorder import Recorder
from cleveragents.application.services.trail_access import TrailAccess
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.errors import AuditServiceClosedError
from cleveragents.domain.event_types import AuditEventType
from cleveragents.domain.events import DomainEvent
from cleveragents.domain.stats import AuditStats
from cleveragents.infrastructure.persistence.database import open_database
from cleveragents.infrastructure.spool import Spool, spool_path_for

__all__ = ["AuditService"]

_log = structlog.get_logger("cleveragents.audit")


class AuditService(Lifecycle, TrailAccess):
    """Records audit entries without slowing the caller down, and reads them back.

    Without ``session`` the service owns an engine made from ``settings.database_url``
    and, when ``settings.audit_async`` is true, a writer thread that commits queued
    entries in batches. With ``session`` it always writes synchronously through that
    session (INSERT + COMMIT per record), so the caller's transaction sees the row.

    The service is open until :meth:`close`; it is a context manager.

    Inherited: from :class:`TrailAccess` (``trail_access.py``) the reads
    (:meth:`count`, :meth:`query`, :meth:`get`), :meth:`verify`, :meth:`checkpoint`,
    :meth:`replay` and :attr:`spool_path`; from :class:`Lifecycle` (``lifecycle.py``)
    :meth:`aflush`, :meth:`aclose` and the context managers (``with``, ``async with``).
    """

    def __init__(self, settings: Settings | None = None, *, session: Session | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._closed = False
        hmac_key = self._settings.hmac_key_bytes()
        self._preparer = EntryPreparer(self._settings)
        if session is not None:
            self._database: TrailDatabase = SessionDatabase(session, hmac_key)
            self._spool = Spool(spool_path_for(self._settings.audit_spool_path, None))
            self._recorder: Recorder = DirectRecorder(self._database)
            return
        owned = open_database(self._settings.database_url, hmac_key=hmac_key)
        self._database = OwnedDatabase(owned, hmac_key)
        self._spool = Spool(spool_path_for(self._settings.audit_spool_path, owned.sqlite_path))
        recorder: QueuedRecorder | DirectRecorder = (
            QueuedRecorder(owned, self._settings, self._spool)
            if self._settings.audit_async
            else DirectRecorder(self._database)
        )
        self._recorder = recorder
        process_hooks.register(self, recorder)

    @property
    def is_async(self) -> bool:
        """True when record() queues entries for the writer thread."""
        return self._recorder.is_async

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
        recorder = self._recorder
        kind, row, masked = self._preparer.prepare(
            event_type, actor, resource, details, correlation_id, recorder.writer_id
        )
        return entry_of(recorder.record(row), kind, row, masked)

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
        with overflow ``block``: waits on the loop until the queue wakes it, holding
        no thread (the loop's default executor, which also resolves host names, stays
        free). Synchronous service: the INSERT + COMMIT runs in a worker thread of
        the service's own.

        A task cancelled while it waits for room records nothing.
        """
        if self._closed:
            raise AuditServiceClosedError("the audit service is closed; record() is refused")
        recorder = self._recorder
        kind, row, masked = self._preparer.prepare(
            event_type, actor, resource, details, correlation_id, recorder.writer_id
        )
        return entry_of(await recorder.arecord(row), kind, row, masked)

    def note_adapter_failure(
        self, adapter: str, error: BaseException, *, event_type: str | None = None
    ) -> None:
        """Account for an event a framework adapter could not record: logged and counted.

        For adapters (``cleveragents.integrations``), which must never raise into
        the framework they observe: the loss shows in ``stats().adapter_failed`` and
        as an ``audit_adapter_failed`` error in the log.
        """
        total = self._recorder.note_adapter_failure()
        _log.error(
            "audit_adapter_failed",
            adapter=adapter,
            event_type=event_type,
            error=f"{type(error).__name__}: {error}",
            total_adapter_failed=total,
        )

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

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry recorded before this call is committed.

        Returns True when done, False on timeout, when an entry could not be
        written, or when the writer cannot be waited for (it died, or this is
        the writer thread). The writer keeps running: later records are persisted.
        A synchronous service has nothing pending and returns True.
        """
        return self._recorder.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer and dispose what the service owns. Idempotent.

        Waits at most ``settings.audit_close_timeout_s``; entries that could not
        be persisted by then are counted in ``stats().failed`` and logged.
        """
        self._closed = True
        process_hooks.discard(self)
        self._recorder.close()

    @property
    def writer_id(self) -> str:
        """This service's writer id in the chain's accounting (a forked child has its own)."""
        return self._recorder.writer_id

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def __repr__(self) -> str:
        mode = "async" if self.is_async else "sync"
        state = "closed" if self._closed else "open"
        return f"<AuditService {mode} {self._database.description} {state}>"

    def stats(self) -> AuditStats:
        """A snapshot of the counters."""
        return self._recorder.stats()
