"""Purges in the database: the prefix a purge removes, what it holds, its deletion.

The operations themselves (checks, the ``retention.purged`` declaration, reports)
are :mod:`cleveragents.application.trail`'s; the SQL they need is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, delete, func, select, update

from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.persistence.table import audit_chain, audit_log

__all__ = [
    "PURGE_BATCH",
    "PrefixSummary",
    "PurgePlan",
    "delete_prefix",
    "delete_through",
    "move_origin",
    "plan_purge",
    "prefix_summary",
]

#: Rows deleted per transaction by a purge.
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What a purge removes: the rows up to ``through_id``, the chain up to ``through_seq``."""

    through_id: int
    through_seq: int
    through_hash: str
    count: int


def plan_purge(connection: Connection, before: datetime) -> PurgePlan | None:
    """The longest prefix of the chain (in commit order) whose entries are all older than
    ``before``; None when nothing goes.

    Only a prefix: an entry at or after ``before`` ends it, even if older ones follow
    (timestamps are the writers' claims, and clocks differ).
    """
    first_kept = connection.execute(
        select(audit_log.c.id)
        .where(audit_log.c.created_at >= before)
        .order_by(audit_log.c.id)
        .limit(1)
    ).scalar_one_or_none()
    last = select(audit_log.c.id, audit_log.c.seq, audit_log.c.entry_hash).where(
        audit_log.c.seq.is_not(None)
    )
    if first_kept is not None:
        last = last.where(audit_log.c.id < first_kept)
    row = connection.execute(last.order_by(audit_log.c.id.desc()).limit(1)).first()
    if row is None or row.entry_hash is None:
        return None
    count = connection.execute(
        select(func.count()).select_from(audit_log).where(audit_log.c.id <= row.id)
    ).scalar_one()
    return PurgePlan(int(row.id), int(row.seq), str(row.entry_hash), int(count))


def delete_through(connection: Connection, after_id: int, through_id: int) -> int:
    """Delete one batch of the prefix, ids in (after_id, after_id + PURGE_BATCH]; rows gone."""
    upper = min(through_id, after_id + PURGE_BATCH)
    result = connection.execute(
        delete(audit_log).where(audit_log.c.id > after_id, audit_log.c.id <= upper)
    )
    return int(result.rowcount)


def move_origin(connection: Connection, through_seq: int, through_hash: str) -> None:
    """The kept chain now starts after ``through_seq``."""
    connection.execute(
        update(audit_chain)
        .where(audit_chain.c.id == 1)
        .values(origin_seq=through_seq + 1, origin_prev_hash=through_hash)
    )


@dataclass(frozen=True, slots=True)
class PrefixSummary:
    """What the prefix up to a plan's ``through_id`` holds (for a purge's preview)."""

    first_seq: int | None
    oldest: datetime | None
    newest: datetime | None
    recent: int  # entries created at or after the time asked about (0: none asked about)


def prefix_summary(
    connection: Connection, through_id: int, recent_since: datetime | None
) -> PrefixSummary:
    """The first seq, oldest and newest times of the rows with ``id <= through_id``, and
    how many were created at or after ``recent_since``."""
    recent = (
        func.count()
        if recent_since is None
        else func.count(case((audit_log.c.created_at >= recent_since, 1)))
    )
    first_seq, oldest, newest, newer = connection.execute(
        select(
            func.min(audit_log.c.seq),
            func.min(audit_log.c.created_at),
            func.max(audit_log.c.created_at),
            recent,
        ).where(audit_log.c.id <= through_id)
    ).one()
    return PrefixSummary(
        None if first_seq is None else int(first_seq),
        oldest,
        newest,
        0 if recent_since is None else int(newer),
    )


def delete_prefix(
    database: AuditDatabase, plan: PurgePlan, progress: Callable[[int, int], None] | None
) -> int:
    """Delete the plan's prefix in batches (a transaction each), then move the origin past it.

    ``progress(deleted, plan.count)`` is called after every batch. Returns the rows deleted.
    """
    deleted = 0
    with database.connect() as connection:
        after = int(connection.execute(select(func.min(audit_log.c.id))).scalar_one() or 1) - 1
    while after < plan.through_id:
        with database.transaction() as connection:
            deleted += delete_through(connection, after, plan.through_id)
        after = min(plan.through_id, after + PURGE_BATCH)
        if progress is not None:
            progress(deleted, plan.count)
    with database.transaction() as connection:
        move_origin(connection, plan.through_seq, plan.through_hash)
    return deleted
