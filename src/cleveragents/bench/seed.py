"""The seed design, reimplemented faithfully as the baseline to beat.

As merged in the reference runtime: ``record()`` enqueues a payload object on a
``queue.Queue`` and returns a placeholder entry (``id=-1``); one daemon thread
takes one payload at a time and does an ORM INSERT + COMMIT for it; ``flush()``
sends a stop sentinel and joins the thread.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import AuditEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.infrastructure.persistence.table import AuditLogRecord, Base

__all__ = ["SeedAuditService"]

_STOP = object()


@dataclass
class _AuditPayload:
    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: dict[str, Any]
    correlation_id: str | None
    created_at: datetime


class SeedAuditService:
    """One ORM INSERT + COMMIT per entry on a daemon writer thread."""

    def __init__(self, database_url: str, *, maxsize: int = 10_000) -> None:
        self._engine = create_engine(database_url)
        Base.metadata.create_all(self._engine)
        self._session = Session(self._engine)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._writer_loop, name="audit-writer", daemon=True)
        self._thread.start()

    def record(
        self,
        event_type: AuditEventType | str,
        *,
        actor: str | None = None,
        resource: str | None = None,
        details: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> AuditLogEntry:
        kind = AuditEventType(event_type)
        event_id = new_event_id()
        payload = _AuditPayload(
            event_id, kind.value, actor, resource, details or {}, correlation_id, datetime.now(UTC)
        )
        self._queue.put(payload)
        return AuditLogEntry(
            -1, event_id, kind, actor, resource, payload.details, correlation_id, payload.created_at
        )

    def _writer_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if isinstance(item, _AuditPayload):
                    self._write_payload(item)
            except Exception:  # the seed logged and swallowed write errors
                self._session.rollback()
            finally:
                self._queue.task_done()

    def _write_payload(self, payload: _AuditPayload) -> None:
        self._session.add(
            AuditLogRecord(
                event_id=payload.event_id,
                event_type=payload.event_type,
                actor=payload.actor,
                resource=payload.resource,
                details=json.dumps(payload.details),
                correlation_id=payload.correlation_id,
                created_at=payload.created_at,
            )
        )
        self._session.commit()

    def flush(self) -> None:
        """The seed's flush: stop the writer and wait for it."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def close(self) -> None:
        self.flush()
        self._session.close()
        self._engine.dispose()
