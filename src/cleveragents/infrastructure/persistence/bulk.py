"""Appending rows to the hash chain: every write path of the library ends here.

In the caller's transaction, :func:`append`:

1. takes the chain's lock: on SQLite the transaction begins with ``BEGIN
   IMMEDIATE`` (the database's one write lock, taken before anything is read); on
   PostgreSQL the head row is read ``FOR UPDATE``. Writers in every process and on
   every host wait there, so ``seq`` is gapless and commit order is ``seq`` order.
   Readers never take it.
2. reads the head (``seq``, ``entry_hash``) and links each row to the one before
   it (:mod:`cleveragents.domain.chain`), adding the HMAC in keyed mode;
3. inserts the rows (SQLite: the driver's executemany on prepared tuples;
   PostgreSQL: COPY into a temporary staging table and one INSERT ... SELECT) and
   moves the head.

Rows whose event_id is stored already must not be inserted (they would leave a
hole in ``seq``). The writer's batches are new by construction, so the insert
says ``ON CONFLICT (event_id) DO NOTHING`` and checks the row count: a retried
batch whose first commit did succeed is refused with :class:`StoredAlreadyError`,
and then written again with ``skip_stored=True``, which looks the event_ids up
first (replay and import always do).

An import that keeps another database's chain (``export --chain``) takes the same
lock with :func:`lock_head` and inserts rows that carry their chain fields already
with :func:`append_chained` (the checks are
:mod:`cleveragents.infrastructure.persistence.chain_copy`'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from cleveragents.domain.chain import canonical_header, entry_digest, entry_hmac_of_digest
from cleveragents.domain.details import jsonb_can_hold
from cleveragents.domain.errors import AuditStorageError
from cleveragents.domain.rows import CHAIN_FIELDS, ROW_FIELDS, ChainedRow, EntryRow
from cleveragents.infrastructure.persistence.sqlite import (
    aware,
    begin_immediate,
    sqlite_time_text,
)
from cleveragents.infrastructure.persistence.table import audit_chain, audit_log

__all__ = [
    "Declare",
    "StoredAlreadyError",
    "append",
    "append_chained",
    "jsonb_text",
    "lock_head",
    "sqlite_time_text",
]

#: ``declare(new_rows, first_seq)``: one more row to append after ``new_rows`` (which get
#: seq ``first_seq`` on), in the same transaction, or None.
Declare = Callable[[Sequence[EntryRow], int], EntryRow | None]

_COLUMNS = ", ".join(ROW_FIELDS + CHAIN_FIELDS)
_MARKS = ", ".join("?" * len(ROW_FIELDS + CHAIN_FIELDS))
_SQLITE_INSERT = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}) VALUES ({_MARKS}) ON CONFLICT (event_id) DO NOTHING"
)
_HEAD = f"SELECT head_seq, head_hash FROM {audit_chain.name} WHERE id = 1"
_MOVE_HEAD = f"UPDATE {audit_chain.name} SET head_seq = ?, head_hash = ? WHERE id = 1"
_POSTGRES_MOVE_HEAD = _MOVE_HEAD.replace("?", "%s")
# PostgreSQL: COPY into a per-connection staging table, then one INSERT ... SELECT
# in the batch's order.
_STAGE = "cleveragents_audit_stage"
_POSTGRES_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (event_id text, "
    "event_type text, actor text, resource text, details text, correlation_id text, "
    "created_at timestamptz, writer_id text, writer_seq bigint, seq bigint, "
    "prev_hash text, entry_hash text, hmac text, details_json jsonb) ON COMMIT DELETE ROWS"
)
_POSTGRES_COPY = f"COPY {_STAGE} ({_COLUMNS}, details_json) FROM STDIN"
_POSTGRES_MOVE = (
    f"INSERT INTO {audit_log.name} ({_COLUMNS}, details_json) "
    f"SELECT {_COLUMNS}, details_json FROM {_STAGE} ORDER BY seq "
    "ON CONFLICT (event_id) DO NOTHING"
)
# The details text of an INSERT's parameters (a plain tuple in ROW_FIELDS' order): as
# fast as indexing it, and named.
_details_of = itemgetter(ROW_FIELDS.index("details"))
# Event ids looked up per statement when stored ones are skipped.
_LOOKUP_CHUNK = 500


class StoredAlreadyError(Exception):
    """Some rows of a batch were stored already (a retry after a commit that did succeed).

    Raised before anything is committed; write the batch again with ``skip_stored=True``.
    """


def append(
    connection: Connection,
    rows: Sequence[EntryRow],
    *,
    hmac_key: bytes | None,
    skip_stored: bool = False,
    declare: Declare | None = None,
) -> int:
    """Append ``rows`` to the chain in the connection's transaction; how many were new.

    The caller commits. With ``skip_stored``, rows whose event_id is stored (or
    repeated within ``rows``) are left out; without it, such a row raises
    :class:`StoredAlreadyError` and nothing of the batch may be committed.
    ``declare(new_rows, first_seq)`` may return one more row, appended after them in the
    same transaction (a replay's or an import's declaration of what it appended); it is
    not counted.

    Raises:
        StoredAlreadyError: without ``skip_stored``, a row's event_id is stored already.
        AuditStorageError: the chain's head row is missing (see ``verify``).
        sqlalchemy.exc.SQLAlchemyError: the database refused the write.
    """
    if not rows:
        return 0
    postgres = connection.dialect.name == "postgresql"
    # The lock first, then the lookup: a row another writer commits meanwhile is seen.
    seq, prev_hex = _lock(connection, postgres, ", so no entry can be chained")
    if skip_stored:
        rows = _new_rows(connection, rows)
        if not rows:
            return 0
    declared = 0
    if declare is not None:
        extra = declare(rows, seq + 1)
        if extra is not None:
            rows, declared = [*rows, extra], 1
    stored_time = _utc if postgres else sqlite_time_text
    linked, head = _linked(rows, seq, prev_hex, hmac_key, stored_time)
    return _store(connection, linked, postgres, head) - declared


def _linked(
    rows: Sequence[EntryRow],
    seq: int,
    prev_hex: str,
    hmac_key: bytes | None,
    stored_time: Callable[[datetime], Any],
) -> tuple[list[tuple[Any, ...]], tuple[int, str]]:
    """The rows linked after the head (``seq``, ``prev_hex``), in the INSERT's column order
    (ROW_FIELDS, then the chain's fields); and the new head."""
    prev = bytes.fromhex(prev_hex)  # once: each link then hashes the raw digest before it
    linked: list[tuple[Any, ...]] = []
    add, header, link = linked.append, canonical_header, entry_digest  # the hot loop's names
    for row in rows:
        seq += 1
        event_id, kind, actor, resource, details, correlation_id, created, writer, number = row
        stored = stored_time(created)  # first: a naive time is a ValueError, not a TypeError
        # The names unpacked above rather than header(seq, *row): faster, timed over
        # _linked (1,000 rows, HMAC on) at 2.8 us a row against 3.0 with the star.
        canonical = header(
            seq, event_id, kind, actor, resource, details, correlation_id, created, writer, number
        )
        digest = link(prev, canonical)
        hashed = digest.hex()
        mac = None if hmac_key is None else entry_hmac_of_digest(hmac_key, digest)
        add(
            (
                event_id,
                kind,
                actor,
                resource,
                details,
                correlation_id,
                stored,
                writer,
                number,
                seq,
                prev_hex,
                hashed,
                mac,
            )
        )
        prev, prev_hex = digest, hashed
    return linked, (seq, prev_hex)


def _store(
    connection: Connection, linked: list[tuple[Any, ...]], postgres: bool, head: tuple[int, str]
) -> int:
    """Insert the ``linked`` rows, all new or none (:class:`StoredAlreadyError`); move the head."""
    inserted = (_postgres_copy if postgres else _sqlite_insert)(connection, linked)
    if inserted != len(linked):
        raise StoredAlreadyError(
            f"{len(linked) - inserted} of {len(linked)} rows are stored already"
        )
    connection.exec_driver_sql(_POSTGRES_MOVE_HEAD if postgres else _MOVE_HEAD, head)
    return inserted


def lock_head(connection: Connection) -> tuple[int, str]:
    """Take the chain's lock, as :func:`append` does, and read the head: (seq, entry_hash).

    Raises:
        AuditStorageError: the chain's head row is missing.
    """
    return _lock(connection, connection.dialect.name == "postgresql", "")


def _lock(connection: Connection, postgres: bool, consequence: str) -> tuple[int, str]:
    """Take the chain's lock and read the head (seq, entry_hash); ``consequence`` ends the
    first clause of the error raised when the head row is missing."""
    if not postgres:
        begin_immediate(connection)
    head = connection.exec_driver_sql(_HEAD + (" FOR UPDATE" if postgres else "")).first()
    if head is None:
        raise AuditStorageError(
            f"the chain head (row 1 of {audit_chain.name}) is missing{consequence}: the trail"
            " was damaged or tampered with; run `cleveragents-audit verify`"
        )
    return int(head.head_seq), str(head.head_hash)


def append_chained(connection: Connection, rows: Sequence[ChainedRow]) -> None:
    """Insert rows that carry their chain fields, as they are, and move the head to the last.

    For an import that keeps another database's chain: nothing is linked or hashed
    here. The caller holds the lock (:func:`lock_head`) in this transaction, has
    checked that the rows continue the chain, and commits.

    Raises:
        StoredAlreadyError: an event_id is stored already (or repeated in ``rows``).
        sqlalchemy.exc.SQLAlchemyError: the database refused the write.
    """
    if not rows:
        return
    postgres = connection.dialect.name == "postgresql"
    stored_time = _utc if postgres else sqlite_time_text
    linked = [
        (event_id, kind, actor, resource, details, correlation_id, stored_time(created), *rest)
        for event_id, kind, actor, resource, details, correlation_id, created, *rest in rows
    ]
    if postgres:
        # One transaction may copy many batches: the staging table is emptied at commit only.
        connection.exec_driver_sql(_POSTGRES_STAGE)
        connection.exec_driver_sql(f"DELETE FROM {_STAGE}")
    last = rows[-1]
    _store(connection, linked, postgres, (last.seq, last.entry_hash))


def _new_rows(connection: Connection, rows: Sequence[EntryRow]) -> list[EntryRow]:
    """``rows`` without those whose event_id is stored, or seen earlier in ``rows``."""
    seen: set[str] = set()
    ids = list(dict.fromkeys(row.event_id for row in rows))
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        stored = connection.execute(
            audit_log.select()
            .with_only_columns(audit_log.c.event_id)
            .where(audit_log.c.event_id.in_(chunk))
        ).scalars()
        seen.update(stored)
    fresh: list[EntryRow] = []
    for row in rows:
        if row.event_id not in seen:
            seen.add(row.event_id)
            fresh.append(row)
    return fresh


def _sqlite_insert(connection: Connection, linked: list[tuple[Any, ...]]) -> int:
    return int(connection.exec_driver_sql(_SQLITE_INSERT, linked).rowcount)


def _postgres_copy(connection: Connection, linked: list[tuple[Any, ...]]) -> int:
    # Every time: a rolled-back transaction takes the table's creation with it.
    connection.exec_driver_sql(_POSTGRES_STAGE)
    driver = connection.connection.driver_connection
    dialect = connection.dialect
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(_POSTGRES_COPY) as copy:
            for row in linked:
                copy.write_row((*row, jsonb_text(_details_of(row))))
        cursor.execute(_POSTGRES_MOVE)
        return int(cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        # Raised by the driver itself: give it SQLAlchemy's shape (IntegrityError,
        # OperationalError, ...), and drop the connection if the server is gone, as
        # SQLAlchemy does for the statements it runs.
        disconnected = dialect.is_disconnect(exc, driver, cursor)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            _POSTGRES_MOVE,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=disconnected,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


def _utc(moment: datetime) -> datetime:
    """An aware ``moment`` in UTC: PostgreSQL refuses some offsets Python allows."""
    if moment.tzinfo is UTC:  # record()'s own times: nothing to check or convert
        return moment
    return aware(moment).astimezone(UTC)


def jsonb_text(details: str | None) -> str | None:
    """The details text for the JSONB column, or None where JSONB cannot hold it (U+0000).

    The text column keeps such details exactly.
    """
    if details is None or not jsonb_can_hold(details):
        return None
    return details
