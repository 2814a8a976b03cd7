"""What :class:`AuditService` offers on the committed trail: reads, verify, checkpoint, replay.

A base of the service: every call goes to its :class:`TrailDatabase` (an engine of
its own or the caller's session alike) and is refused once the service is closed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cleveragents.application.services.databases import TrailDatabase
from cleveragents.application.services.recorder import Recorder
from cleveragents.application.services.spool_replay import replay_spool
from cleveragents.application.trail import load_checkpoints
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.errors import AuditServiceClosedError
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES, AuditEventType, SystemEventType
from cleveragents.domain.replay import ReplayReport
from cleveragents.domain.verification import Checkpoint, VerifyReport
from cleveragents.infrastructure.persistence import reads
from cleveragents.infrastructure.persistence.reads import EntryFilter
from cleveragents.infrastructure.spool import Spool

__all__ = ["TrailAccess"]


class TrailAccess:
    """Reads, verification, checkpoints and replay of the trail in ``_database``."""

    _closed: bool
    _database: TrailDatabase
    _recorder: Recorder
    _spool: Spool

    def _refuse_if_closed(self, what: str) -> None:
        if self._closed:
            raise AuditServiceClosedError(f"the audit service is closed; {what}")

    def replay(self, path: str | os.PathLike[str] | None = None) -> ReplayReport:
        """Re-ingest a dead-letter spool (default: this service's), idempotently.

        Entries already stored are skipped, so replaying twice changes nothing. The
        spool is truncated only after its entries are committed; lines that are not
        valid entries (a torn last line after a crash, say) are kept aside in the
        rejects file beside it, with their line numbers.
        """
        self._refuse_if_closed("replay() is refused")
        spool = self._spool if path is None else Spool(Path(path).absolute())
        return replay_spool(self._database, spool)

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
        self._refuse_if_closed("verify() is refused")
        checkpoints: list[Checkpoint] = []
        if isinstance(checkpoint, Checkpoint):
            checkpoints = [checkpoint]
        elif checkpoint is not None:
            try:
                checkpoints = load_checkpoints(checkpoint)
            except (OSError, ValueError) as exc:
                return VerifyReport.unverifiable(f"cannot use the checkpoint {checkpoint}: {exc}")
        return self._database.verify(
            checkpoints=checkpoints, own_writer_id=self._recorder.writer_id, progress=progress
        )

    def checkpoint(self) -> Checkpoint:
        """The chain head now (seq, entry_hash, count, time): keep it away from the database.

        Write it out with ``checkpoint.to_json()``; a later :meth:`verify` against it
        proves that nothing up to it was truncated or rewritten.
        """
        self._refuse_if_closed("checkpoint() is refused")
        return self._database.checkpoint()

    @property
    def spool_path(self) -> Path:
        """Where entries the database would not take are kept for replay."""
        return self._spool.path

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
        self._refuse_if_closed("reads are refused")
        with self._database.connect() as reader:
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
        self._refuse_if_closed("reads are refused")
        with self._database.connect() as reader:
            return reads.query(reader, where, after_id=after_id, limit=limit)

    def get(self, event_id: str, *, include_system: bool = False) -> AuditLogEntry | None:
        """The committed entry with ``event_id``, or None (also for a system entry, unless
        ``include_system=True``)."""
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, not {type(event_id).__name__}")
        if not isinstance(include_system, bool):
            raise TypeError(f"include_system must be a bool, not {type(include_system).__name__}")
        self._refuse_if_closed("reads are refused")
        with self._database.connect() as reader:
            entry = reads.get(reader, event_id)
        if entry is not None and not include_system and entry.event_type in SYSTEM_EVENT_TYPES:
            return None
        return entry
