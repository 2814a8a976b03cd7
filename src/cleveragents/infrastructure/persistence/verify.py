"""Reading the chain for ``verify``, ``checkpoint`` and ``purge``.

The rows are read in pages by ``seq`` (keyset on the unique index), so memory
stays bounded however long the trail is; the checks themselves are
:class:`cleveragents.domain.verification.ChainVerifier`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, delete, func, select, update

from cleveragents.domain.chain import GENESIS_HASH
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.verification import (
    ChainVerifier,
    Checkpoint,
    FindingKind,
    StoredRow,
    VerifyReport,
)
from cleveragents.infrastructure.persistence.table import audit_chain, audit_log

__all__ = [
    "ChainHead",
    "PurgePlan",
    "delete_through",
    "move_origin",
    "plan_purge",
    "read_head",
    "verify_chain",
]

#: Rows per page while verifying.
VERIFY_PAGE = 5_000
#: Rows deleted per transaction by a purge.
PURGE_BATCH = 10_000

_COLUMNS = (
    audit_log.c.id,
    audit_log.c.seq,
    audit_log.c.event_id,
    audit_log.c.event_type,
    audit_log.c.actor,
    audit_log.c.resource,
    audit_log.c.details,
    audit_log.c.correlation_id,
    audit_log.c.created_at,
    audit_log.c.writer_id,
    audit_log.c.writer_seq,
    audit_log.c.prev_hash,
    audit_log.c.entry_hash,
    audit_log.c.hmac,
)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The head row: the last entry appended, and where the kept chain begins."""

    seq: int
    entry_hash: str
    origin_seq: int
    origin_prev_hash: str

    @property
    def count(self) -> int:
        """Entries from the origin to the head."""
        return max(0, self.seq - self.origin_seq + 1)

    def checkpoint(self, moment: datetime | None = None) -> Checkpoint:
        """A checkpoint of this head, at ``moment`` (now)."""
        return Checkpoint(self.seq, self.entry_hash, self.count, moment or datetime.now(UTC))


def read_head(connection: Connection) -> ChainHead | None:
    """The chain head row, or None when it is missing."""
    row = connection.execute(
        select(
            audit_chain.c.head_seq,
            audit_chain.c.head_hash,
            audit_chain.c.origin_seq,
            audit_chain.c.origin_prev_hash,
        ).where(audit_chain.c.id == 1)
    ).first()
    if row is None:
        return None
    return ChainHead(int(row[0]), str(row[1]), int(row[2]), str(row[3]))


def _purge_declarations(connection: Connection) -> list[tuple[int, str]]:
    """(through_seq, through_hash) of every ``retention.purged`` entry, oldest first."""
    texts = connection.execute(
        select(audit_log.c.details)
        .where(audit_log.c.event_type == SystemEventType.RETENTION_PURGED.value)
        .order_by(audit_log.c.seq)
    ).scalars()
    declared: list[tuple[int, str]] = []
    for text in texts:
        try:
            details = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # its hash check reports it
        through, hashed = details.get("through_seq"), details.get("through_hash")
        if type(through) is int and isinstance(hashed, str):
            declared.append((through, hashed))
    return declared


def _pages(
    connection: Connection, after_seq: int, through_seq: int | None
) -> Iterator[list[StoredRow]]:
    while True:
        statement = select(*_COLUMNS).where(audit_log.c.seq > after_seq)
        if through_seq is not None:
            statement = statement.where(audit_log.c.seq <= through_seq)
        rows = connection.execute(statement.order_by(audit_log.c.seq).limit(VERIFY_PAGE)).all()
        if not rows:
            return
        yield [StoredRow(**row._mapping) for row in rows]
        after_seq = rows[-1].seq


def verify_chain(
    connection: Connection,
    *,
    hmac_key: bytes | None,
    checkpoints: Iterable[Checkpoint] = (),
    own_writer_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Stream the whole chain through a :class:`ChainVerifier`; its report.

    ``progress(done, total)`` is called after every page.
    """
    checkpoints = list(checkpoints)
    head = read_head(connection)
    declared = _purge_declarations(connection)
    start_seq, start_prev = 1, GENESIS_HASH
    if declared:
        through, through_hash = max(declared)
        start_seq, start_prev = through + 1, through_hash
    verifier = ChainVerifier(
        start_seq=start_seq,
        start_prev_hash=start_prev,
        hmac_key=hmac_key,
        checkpoints=checkpoints,
        own_writer_id=own_writer_id,
        purged=bool(declared),
    )
    for checkpoint in checkpoints:
        if 0 < checkpoint.seq < start_seq:
            # Purged since: it can only be checked where a purge ended exactly on it.
            for through, through_hash in declared:
                if through == checkpoint.seq and through_hash != checkpoint.entry_hash:
                    verifier.report(
                        FindingKind.ALTERED,
                        "a purge declares a different hash at this checkpoint's seq",
                        seq=checkpoint.seq,
                    )
    total = 0 if head is None else head.count
    done = 0
    # The chain up to the head read above: writers append on while it is verified.
    for page in _pages(connection, start_seq - 1, None if head is None else head.seq):
        for row in page:
            verifier.feed(row)
        done += len(page)
        if progress is not None:
            progress(done, total)
    # Rows below the start (deleted by a purge that did not finish) are not checked;
    # rows with no seq at all were never appended by a writer.
    outside = connection.execute(
        select(audit_log.c.id, audit_log.c.event_id).where(audit_log.c.seq.is_(None)).limit(1000)
    ).all()
    # One statement, so one snapshot: committed rows never lie beyond the head.
    head_now, last_now = connection.execute(
        select(
            select(audit_chain.c.head_seq).where(audit_chain.c.id == 1).scalar_subquery(),
            select(func.max(audit_log.c.seq)).scalar_subquery(),
        )
    ).one()
    beyond = head_now is not None and last_now is not None and int(last_now) > int(head_now)
    return verifier.finish(
        head_seq=None if head is None else head.seq,
        rows_outside_chain=[(int(r[0]), str(r[1])) for r in outside],
        beyond_head=int(head_now) + 1 if beyond else None,
    )


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What a purge removes: the chain prefix ``origin_seq..through_seq``."""

    through_seq: int
    through_hash: str
    count: int


def plan_purge(connection: Connection, before: datetime) -> PurgePlan | None:
    """The longest prefix of the kept chain whose entries are all older than ``before``.

    Only a prefix: an entry at or after ``before`` ends it, even if older ones follow
    (timestamps are the writers' claims, and clocks differ). None when nothing goes.
    """
    head = read_head(connection)
    if head is None or head.count == 0:
        return None
    first_kept = connection.execute(
        select(func.min(audit_log.c.seq)).where(
            audit_log.c.seq >= head.origin_seq, audit_log.c.created_at >= before
        )
    ).scalar_one_or_none()
    through = head.seq if first_kept is None else int(first_kept) - 1
    if through < head.origin_seq:
        return None
    row = connection.execute(
        select(audit_log.c.entry_hash).where(audit_log.c.seq == through)
    ).first()
    if row is None:
        return None
    count = connection.execute(
        select(func.count())
        .select_from(audit_log)
        .where(audit_log.c.seq >= head.origin_seq, audit_log.c.seq <= through)
    ).scalar_one()
    return PurgePlan(through, str(row[0]), int(count))


def delete_through(connection: Connection, after_seq: int, through_seq: int) -> int:
    """Delete one batch of the prefix: seq in (after_seq, after_seq + PURGE_BATCH]; rows gone."""
    upper = min(through_seq, after_seq + PURGE_BATCH)
    result = connection.execute(
        delete(audit_log).where(audit_log.c.seq > after_seq, audit_log.c.seq <= upper)
    )
    return int(result.rowcount)


def move_origin(connection: Connection, through_seq: int, through_hash: str) -> None:
    """The kept chain now starts after ``through_seq``."""
    connection.execute(
        update(audit_chain)
        .where(audit_chain.c.id == 1)
        .values(origin_seq=through_seq + 1, origin_prev_hash=through_hash)
    )
