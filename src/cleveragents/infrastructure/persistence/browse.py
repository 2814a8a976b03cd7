"""Reads for operators: raw rows by id, the newest first, gaps, totals, bounds and size.

The command line's reads. Rows come back as they are stored (``details`` as the
canonical JSON text, never decoded), so that an export writes them out as they are;
every query is an index range scan (the primary key, or a ``(column, id)`` index).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, func, literal_column, select, text

from cleveragents.infrastructure.persistence.reads import EntryFilter
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = [
    "CHAIN_COLUMNS",
    "ROW_COLUMNS",
    "Bounds",
    "BrowsedChainRow",
    "BrowsedRow",
    "bounds",
    "chain_page",
    "count_rows",
    "database_size",
    "existing_ids",
    "max_id",
    "newest",
    "page",
    "rows_with_ids",
    "totals",
    "totals_by_type_and_actor",
]

#: The columns of a raw row, in this order.
ROW_COLUMNS = (
    audit_log.c.id,
    audit_log.c.event_id,
    audit_log.c.event_type,
    audit_log.c.actor,
    audit_log.c.resource,
    audit_log.c.correlation_id,
    audit_log.c.created_at,
    audit_log.c.details,
)


#: What ``chain_page`` adds to a raw row, in this order.
CHAIN_COLUMNS = (
    audit_log.c.seq,
    audit_log.c.prev_hash,
    audit_log.c.entry_hash,
    audit_log.c.hmac,
    audit_log.c.writer_id,
    audit_log.c.writer_seq,
)


class BrowsedRow(NamedTuple):
    """A row as the command line reads it (:data:`ROW_COLUMNS`): ``details`` as stored."""

    id: int
    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    correlation_id: str | None
    created_at: datetime
    details: str


class BrowsedChainRow(NamedTuple):
    """A :class:`BrowsedRow` followed by its chain fields (:data:`CHAIN_COLUMNS`)."""

    id: int
    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    correlation_id: str | None
    created_at: datetime
    details: str
    seq: int
    prev_hash: str
    entry_hash: str
    hmac: str | None
    writer_id: str | None
    writer_seq: int | None


def chain_page(
    connection: Connection, *, after_id: int | None, limit: int, up_to_id: int | None
) -> Sequence[Any]:
    """Up to ``limit`` rows of every kind with ``after_id < id <= up_to_id``, ascending,
    each a raw row followed by :data:`CHAIN_COLUMNS`."""
    statement = select(*ROW_COLUMNS, *CHAIN_COLUMNS)
    if after_id is not None:
        statement = statement.where(audit_log.c.id > after_id)
    if up_to_id is not None:
        statement = statement.where(audit_log.c.id <= up_to_id)
    return connection.execute(statement.order_by(audit_log.c.id).limit(limit)).all()


def _rows(where: EntryFilter) -> Select[Any]:
    return select(*ROW_COLUMNS).where(*where.clauses())


#: A ``--since`` range with fewer rows than this is read through the created_at index.
RECENT_ROWS = 10_000


def _by_id(connection: Connection, where: EntryFilter, *, descending: bool) -> Any:
    """ORDER BY id, or, for a short recent range on SQLite, an order its planner won't walk.

    SQLite's planner, with no statistics, answers ``created_at >= ? ORDER BY id LIMIT n``
    by walking the primary key from the oldest row: on a large trail and a recent
    ``since`` that reads nearly every row. When the range is short (counted through
    the created_at index, at most :data:`RECENT_ROWS` entries), ``+id`` makes it read
    the range through that index and sort it instead. PostgreSQL's planner has the
    statistics to choose by itself.
    """
    column = audit_log.c.id
    if (
        where.since is not None
        and connection.dialect.name == "sqlite"
        and _is_short(connection, where.since)
    ):
        column = literal_column("+audit_log.id")  # type: ignore[assignment]
    return column.desc() if descending else column


def _is_short(connection: Connection, since: Any) -> bool:
    recent = (
        select(audit_log.c.id).where(audit_log.c.created_at >= since).limit(RECENT_ROWS).subquery()
    )
    return int(connection.execute(select(func.count()).select_from(recent)).scalar_one()) < (
        RECENT_ROWS
    )


def page(
    connection: Connection,
    where: EntryFilter,
    *,
    after_id: int | None,
    limit: int,
    up_to_id: int | None = None,
) -> Sequence[Any]:
    """Up to ``limit`` matching rows with ``after_id < id <= up_to_id``, ascending."""
    statement = _rows(where)
    if after_id is not None:
        statement = statement.where(audit_log.c.id > after_id)
    if up_to_id is not None:
        statement = statement.where(audit_log.c.id <= up_to_id)
    order = _by_id(connection, where, descending=False)
    return connection.execute(statement.order_by(order).limit(limit)).all()


def newest(
    connection: Connection, where: EntryFilter, *, limit: int, up_to_id: int | None = None
) -> list[Any]:
    """The ``limit`` matching rows with the highest ids (up to ``up_to_id``), ascending."""
    statement = _rows(where)
    if up_to_id is not None:
        statement = statement.where(audit_log.c.id <= up_to_id)
    statement = statement.order_by(_by_id(connection, where, descending=True)).limit(limit)
    return list(reversed(connection.execute(statement).all()))


def rows_with_ids(connection: Connection, where: EntryFilter, ids: Sequence[int]) -> Sequence[Any]:
    """The matching rows among ``ids``, ascending."""
    statement = _rows(where).where(audit_log.c.id.in_(ids)).order_by(audit_log.c.id)
    return connection.execute(statement).all()


def existing_ids(connection: Connection, *, above: int, up_to: int) -> set[int]:
    """The ids committed in ``(above, up_to]``, whatever they hold (the primary key only)."""
    statement = select(audit_log.c.id).where(audit_log.c.id > above, audit_log.c.id <= up_to)
    return set(connection.execute(statement).scalars())


def max_id(connection: Connection, where: EntryFilter | None = None) -> int | None:
    """The highest id (of the matching rows), or None when there is none."""
    statement = select(func.max(audit_log.c.id))
    if where is not None:
        statement = statement.where(*where.clauses())
    value = connection.execute(statement).scalar_one()
    return None if value is None else int(value)


def count_rows(
    connection: Connection, where: EntryFilter, *, after_id: int | None, up_to_id: int | None
) -> int:
    """How many matching rows have ``after_id < id <= up_to_id``."""
    statement = select(func.count()).select_from(audit_log).where(*where.clauses())
    if after_id is not None:
        statement = statement.where(audit_log.c.id > after_id)
    if up_to_id is not None:
        statement = statement.where(audit_log.c.id <= up_to_id)
    return int(connection.execute(statement).scalar_one())


def totals_by_type_and_actor(
    connection: Connection, where: EntryFilter
) -> list[tuple[str, str | None, int]]:
    """Matching rows per (event type, actor): one pass over the rows, for ``stats``.

    On SQLite, with a time range, the grouping is on ``+column`` so that the planner
    reads the range through the created_at index rather than every row through the
    event_type index.
    """
    number = func.count()
    groups: list[Any] = [audit_log.c.event_type, audit_log.c.actor]
    if connection.dialect.name == "sqlite" and (where.since or where.until) is not None:
        groups = [literal_column("+audit_log.event_type"), literal_column("+audit_log.actor")]
    statement = (
        select(audit_log.c.event_type, audit_log.c.actor, number)
        .where(*where.clauses())
        .group_by(*groups)
    )
    return [(kind, actor, int(n)) for kind, actor, n in connection.execute(statement)]


def totals(
    connection: Connection, where: EntryFilter, column: str, *, limit: int | None
) -> list[tuple[str | None, int]]:
    """Matching rows per value of ``column``, most first (ties by value), at most ``limit``."""
    grouped = audit_log.c[column]
    number = func.count().label("n")
    statement = (
        select(grouped, number)
        .where(*where.clauses())
        .group_by(grouped)
        .order_by(number.desc(), grouped)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return [(value, int(n)) for value, n in connection.execute(statement)]


@dataclass(frozen=True, slots=True)
class Bounds:
    """The oldest and newest matching entries: (id, created_at) each, or None."""

    oldest: tuple[int, datetime] | None
    newest: tuple[int, datetime] | None


def bounds(connection: Connection, where: EntryFilter) -> Bounds:
    """The matching entries with the earliest and the latest ``created_at``."""
    base = select(audit_log.c.id, audit_log.c.created_at).where(*where.clauses())
    first = connection.execute(
        base.order_by(audit_log.c.created_at, audit_log.c.id).limit(1)
    ).first()
    last = connection.execute(
        base.order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc()).limit(1)
    ).first()
    return Bounds(
        oldest=None if first is None else (int(first.id), first.created_at),
        newest=None if last is None else (int(last.id), last.created_at),
    )


def database_size(connection: Connection, sqlite_path: Path | None) -> int | None:
    """Bytes on disk: the SQLite file with its WAL, or the audit table with its indexes."""
    if connection.dialect.name == "postgresql":
        value = connection.execute(
            text("SELECT pg_total_relation_size(to_regclass('audit_log'))")
        ).scalar_one()
        return None if value is None else int(value)
    if sqlite_path is None:
        return None
    size = 0
    for path in (sqlite_path, sqlite_path.with_name(sqlite_path.name + "-wal")):
        try:
            size += os.stat(path).st_size
        except FileNotFoundError:
            continue
    return size
