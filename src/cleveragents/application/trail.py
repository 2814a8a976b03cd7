"""Tamper evidence, as operations on an audit database: verify, checkpoint, purge.

Used by :class:`AuditService` (``verify()``, ``checkpoint()``) and the command
line (``verify``, ``checkpoint``, ``purge``). See the README's "Tamper evidence".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from cleveragents.domain.errors import AuditError, AuditStorageError
from cleveragents.domain.rows import EntryRow
from cleveragents.domain.system_entries import retention_purged
from cleveragents.domain.verification import Checkpoint, VerifyReport
from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.persistence.errors import describe
from cleveragents.infrastructure.persistence.retention import (
    PurgePlan,
    delete_prefix,
    plan_purge,
    prefix_summary,
)
from cleveragents.infrastructure.persistence.verify import one_snapshot, read_head, verify_chain

__all__ = [
    "Checkpoint",
    "CheckpointingSink",
    "PurgePreview",
    "PurgeRefusedError",
    "PurgeReport",
    "append_checkpoint",
    "current_checkpoint",
    "head_checkpoint",
    "load_checkpoints",
    "preview_purge",
    "purge",
    "verify",
]

_log = structlog.get_logger("cleveragents.audit")
_PRIVATE = 0o600


def verify(
    database: AuditDatabase,
    *,
    hmac_key: bytes | None,
    checkpoints: Iterable[Checkpoint] = (),
    own_writer_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify the whole chain; a report with status UNVERIFIABLE if it cannot be read."""
    try:
        with database.connect() as connection:
            return verify_chain(
                one_snapshot(connection),
                hmac_key=hmac_key,
                checkpoints=checkpoints,
                own_writer_id=own_writer_id,
                progress=progress,
            )
    except SQLAlchemyError as exc:
        return VerifyReport.unverifiable(f"cannot read {database.url}: {describe(exc)}")


def current_checkpoint(database: AuditDatabase) -> Checkpoint:
    """A checkpoint of the chain head now.

    Raises:
        AuditStorageError: the head row is missing (the trail is damaged) or unreadable.
    """
    try:
        with database.connect() as connection:
            return head_checkpoint(connection, database.url)
    except SQLAlchemyError as exc:
        raise AuditStorageError(f"cannot read {database.url}: {describe(exc)}") from exc


def head_checkpoint(connection: Connection, where: str) -> Checkpoint:
    """A checkpoint of the chain head ``connection`` sees; ``where`` names the database.

    Raises:
        AuditStorageError: the head row is missing (the trail is damaged).
    """
    head = read_head(connection)
    if head is None:
        raise AuditStorageError(
            f"the chain head of {where} is missing: run `cleveragents-audit verify`"
        )
    return head.checkpoint()


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` as one JSON line to ``path`` (created owner-only)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _PRIVATE)
    try:
        os.write(fd, checkpoint.to_json() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoints(path: str | os.PathLike[str]) -> list[Checkpoint]:
    """Every checkpoint in ``path``: one JSON document, or JSON Lines of them.

    Raises:
        ValueError: the file holds something that is not a checkpoint (named by line).
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    stripped = data.strip()
    if not stripped:
        raise ValueError(f"{path} is empty")
    try:  # one (maybe pretty-printed) document
        return [Checkpoint.from_json(_object(orjson.loads(stripped)))]
    except orjson.JSONDecodeError:
        pass
    checkpoints: list[Checkpoint] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            checkpoints.append(Checkpoint.from_json(_object(orjson.loads(line))))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return checkpoints


def _object(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class CheckpointingSink:
    """The writer's sink when automatic checkpoints are on: writes, then checkpoints when due.

    Due after ``every`` entries or ``interval_s`` seconds since the last one (whichever
    comes first, where both are given). A checkpoint that cannot be written is
    logged; it never fails the batch.
    """

    def __init__(
        self,
        database: AuditDatabase,
        path: Path,
        *,
        every: int | None,
        interval_s: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self.path = path
        self._every = every
        self._interval_s = interval_s
        self._clock = clock
        self._since = 0
        self._last = clock()

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        """Write ``rows``; then a checkpoint, when one is due.

        Raises only when ``rows`` were not committed: whatever goes wrong with the
        checkpoint after the commit is logged (this runs on the writer thread).
        """
        self._database.write_batch(rows)
        try:
            self._since += len(rows)
            due_by_count = self._every is not None and self._since >= self._every
            due_by_time = (
                self._interval_s is not None and self._clock() - self._last >= self._interval_s
            )
            if due_by_count or due_by_time:
                self.write_now()
        except BaseException as exc:  # the batch is committed: it must not count as failed
            _log.error(
                "audit_checkpoint_failed", path=str(self.path), error=f"{type(exc).__name__}: {exc}"
            )

    def write_now(self) -> None:
        """Append a checkpoint of the head now (errors logged)."""
        self._since = 0
        self._last = self._clock()
        try:
            append_checkpoint(self.path, current_checkpoint(self._database))
        except Exception as exc:  # never fails the batch that was committed before it
            _log.error(
                "audit_checkpoint_failed",
                path=str(self.path),
                error=f"{type(exc).__name__}: {exc}",
            )


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge removed."""

    through_seq: int | None  # None: nothing was old enough
    through_hash: str | None
    deleted: int
    before: datetime


@dataclass(frozen=True, slots=True)
class PurgePreview:
    """What a purge with ``before`` would remove now: the prefix of the chain it ends.

    ``recent`` counts the entries of that prefix created at or after ``recent_since``
    (0 when no such time was asked about).
    """

    before: datetime
    count: int
    first_seq: int | None
    through_seq: int | None  # None: nothing is old enough
    oldest: datetime | None
    newest: datetime | None
    recent: int
    recent_since: datetime | None


class PurgeRefusedError(AuditError):
    """A purge would remove entries newer than the caller allows; nothing was removed."""

    def __init__(self, preview: PurgePreview) -> None:
        super().__init__(
            f"purging before {preview.before.isoformat()} would remove {preview.recent} "
            f"entries created at or after {_iso(preview.recent_since)}"
        )
        self.preview = preview


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat()


def _aware(**moments: datetime | None) -> None:
    """Every moment given (None: not asked about) must be timezone-aware."""
    for name, moment in moments.items():
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise ValueError(f"{name} must be timezone-aware, got the naive {moment!r}")


def preview_purge(
    database: AuditDatabase, before: datetime, *, recent_since: datetime | None = None
) -> PurgePreview:
    """What :func:`purge` with ``before`` would remove now; nothing is changed.

    Raises:
        ValueError: ``before`` or ``recent_since`` is naive.
        AuditStorageError: the database cannot be read.
    """
    _aware(before=before, recent_since=recent_since)
    try:
        with database.connect() as connection:
            return _preview(connection, before, recent_since)[0]
    except SQLAlchemyError as exc:
        raise AuditStorageError(f"cannot read {database.url}: {describe(exc)}") from exc


def _preview(
    connection: Connection, before: datetime, recent_since: datetime | None
) -> tuple[PurgePreview, PurgePlan | None]:
    plan = plan_purge(connection, before)
    if plan is None:
        return PurgePreview(before, 0, None, None, None, None, 0, recent_since), None
    held = prefix_summary(connection, plan.through_id, recent_since)
    preview = PurgePreview(
        before,
        plan.count,
        held.first_seq,
        plan.through_seq,
        held.oldest,
        held.newest,
        held.recent,
        recent_since,
    )
    return preview, plan


def _allowed_plan(
    database: AuditDatabase, before: datetime, protect_since: datetime | None
) -> PurgePlan | None:
    """The purge's plan (None: nothing to purge), refused when it removes protected entries.

    Raises:
        PurgeRefusedError: the prefix holds entries created at or after ``protect_since``.
    """
    with database.connect() as connection:
        preview, plan = _preview(connection, before, protect_since)
    if plan is not None and preview.recent:
        raise PurgeRefusedError(preview)
    return plan


def purge(
    database: AuditDatabase,
    before: datetime,
    *,
    protect_since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeReport:
    """Remove the prefix of the chain older than ``before``, so that ``verify`` still passes.

    In order: a ``retention.purged`` entry (through seq and hash, count) is appended
    through the chain, the prefix is deleted in batches (one transaction each), and
    the head row's origin moves forward. Interrupted, it can simply be run again:
    verify starts after the newest declaration in any case.

    With ``protect_since``, a prefix holding any entry created at or after it is
    refused before anything is written (checked on the same read that plans the cut).

    Raises:
        ValueError: ``before`` or ``protect_since`` is naive.
        PurgeRefusedError: the prefix holds entries created at or after ``protect_since``.
        AuditStorageError: the database refused.
    """
    _aware(before=before, protect_since=protect_since)
    try:
        plan = _allowed_plan(database, before, protect_since)
        if plan is None:
            return PurgeReport(None, None, 0, before)
        database.write_one(
            retention_purged(
                through_seq=plan.through_seq,
                through_hash=plan.through_hash,
                count=plan.count,
                before=before,
            )
        )
        deleted = delete_prefix(database, plan, progress)
    except SQLAlchemyError as exc:
        raise AuditStorageError(f"purge of {database.url} failed: {describe(exc)}") from exc
    _log.info(
        "audit_purged",
        through_seq=plan.through_seq,
        deleted=deleted,
        before=before.isoformat(),
    )
    return PurgeReport(plan.through_seq, plan.through_hash, deleted, before)
