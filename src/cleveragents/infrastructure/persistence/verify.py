"""Reading the chain for ``verify`` and ``checkpoint``.

The rows are read in pages by ``id`` (commit order, the primary key), in one
snapshot, so memory stays bounded however long the trail is and writers and
purges can go on meanwhile; the checks themselves are
:class:`cleveragents.domain.verification.ChainVerifier`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, String, Text, cast, func, select, type_coerce

from cleveragents.domain.chain import GENESIS_HASH
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.system_entries import PurgedDetails
from cleveragents.domain.verification import (
    ChainVerifier,
    Checkpoint,
    FindingKind,
    StoredRow,
    VerifyReport,
)
from cleveragents.infrastructure.persistence.sqlite import begin_read, sqlite_time_text
from cleveragents.infrastructure.persistence.table import audit_chain, audit_log

__all__ = [
    "ChainHead",
    "one_snapshot",
    "read_head",
    "verify_chain",
]

#: Rows per page while verifying.
VERIFY_PAGE = 5_000

_COLUMNS = (
    audit_log.c.id,
    audit_log.c.seq,
    audit_log.c.event_id,
    audit_log.c.event_type,
    audit_log.c.actor,
    audit_log.c.resource,
    audit_log.c.details,
    audit_log.c.correlation_id,
    # Raw: on SQLite any value may stand there, and the verifier reports it (parsed below).
    type_coerce(audit_log.c.created_at, String).label("created_at"),
    audit_log.c.writer_id,
    audit_log.c.writer_seq,
    audit_log.c.prev_hash,
    audit_log.c.entry_hash,
    audit_log.c.hmac,
    # PostgreSQL's JSONB copy of details, as text, to check it against the hashed text.
    cast(audit_log.c.details_json, Text).label("details_json"),
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
    return ChainHead(
        int(row.head_seq), str(row.head_hash), int(row.origin_seq), str(row.origin_prev_hash)
    )


def _purge_declarations(connection: Connection) -> list[tuple[int, str]]:
    """(through_seq, through_hash) of every ``retention.purged`` entry, oldest first."""
    texts = connection.execute(
        select(audit_log.c.details)
        .where(audit_log.c.event_type == SystemEventType.RETENTION_PURGED.value)
        .order_by(audit_log.c.seq)
    ).scalars()
    declared: list[tuple[int, str]] = []
    for text in texts:
        purged = PurgedDetails.parse(text)  # unreadable: its hash check reports it
        if purged.through_seq is not None and purged.through_hash is not None:
            declared.append((purged.through_seq, purged.through_hash))
    return declared


def _pages(connection: Connection, through_id: int) -> Iterator[list[StoredRow]]:
    """The rows with ``id <= through_id``, in id (commit) order, a page at a time."""
    after_id: int | None = None  # no lower bound: a row put in by hand may have id <= 0
    while True:
        statement = select(*_COLUMNS).where(audit_log.c.id <= through_id)
        if after_id is not None:
            statement = statement.where(audit_log.c.id > after_id)
        rows = connection.execute(statement.order_by(audit_log.c.id).limit(VERIFY_PAGE)).all()
        if not rows:
            return
        yield [
            StoredRow(**{**row._mapping, "created_at": _stored_time(row.created_at)})
            for row in rows
        ]
        after_id = rows[-1].id


def _stored_time(value: object) -> object:
    """``created_at`` as the reads parse it (naive means UTC); any other value as it is.

    SQLite keeps it as text: only the one spelling the writer stores is a time here.
    Another spelling of the same instant (``+23:59``, say) hashes the same but sorts
    and filters differently, so it is left as text, which verify reports as altered.
    """
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment if sqlite_time_text(moment) == value else value
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _snapshot(connection: Connection) -> tuple[int | None, str | None, int]:
    """(head_seq, head_hash, the last id) in one statement, so in one snapshot: the rows up
    to that id are exactly those the head row accounts for; writers append on meanwhile."""
    head = select(audit_chain.c.head_seq, audit_chain.c.head_hash).where(audit_chain.c.id == 1)
    head_seq, head_hash, last_id = connection.execute(
        select(
            head.with_only_columns(audit_chain.c.head_seq).scalar_subquery(),
            head.with_only_columns(audit_chain.c.head_hash).scalar_subquery(),
            select(func.max(audit_log.c.id)).scalar_subquery(),
        )
    ).one()
    if type(head_seq) is not int:  # missing, or not a number (the row was tampered with)
        return None, None, int(last_id or 0)
    return head_seq, None if head_hash is None else str(head_hash), int(last_id or 0)


def one_snapshot(connection: Connection) -> Connection:
    """Make every read on ``connection`` (fresh, no statement run yet) see one snapshot.

    A purge or a writer committing while verify pages through the trail must not
    make rows vanish or appear between two pages. SQLite: a read transaction begun
    explicitly (WAL keeps its snapshot); PostgreSQL: REPEATABLE READ, read only.
    The transaction ends when the connection is returned.
    """
    if connection.dialect.name == "postgresql":
        return connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    begin_read(connection)
    return connection


def _start(connection: Connection, declared: list[tuple[int, str]]) -> tuple[int, str]:
    """Where verifying begins, (seq, prev_hash): after the newest purge ``declared``, if any."""
    if not declared:
        return 1, GENESIS_HASH
    through, through_hash = max(declared)
    first = connection.execute(
        select(audit_log.c.seq, audit_log.c.prev_hash)
        .where(audit_log.c.seq.is_not(None))
        .order_by(audit_log.c.id)
        .limit(1)
    ).first()
    if first is not None and type(first.seq) is int and first.seq <= through:
        # Rows the declaration says are purged are still there (an unfinished purge,
        # or a forged declaration): they are verified too, from the first one, whose
        # link to the rows purged before it is taken as it stands.
        return first.seq, GENESIS_HASH if first.seq == 1 else str(first.prev_hash)
    return through + 1, through_hash


def verify_chain(
    connection: Connection,
    *,
    hmac_key: bytes | None,
    checkpoints: Iterable[Checkpoint] = (),
    own_writer_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Stream the whole chain, in id order, through a :class:`ChainVerifier`; its report.

    ``progress(done, total)`` is called after every page.
    """
    checkpoints = list(checkpoints)
    head_seq, head_hash, last_id = _snapshot(connection)
    declared = _purge_declarations(connection)
    start_seq, start_prev = _start(connection, declared)
    verifier = ChainVerifier(
        start_seq=start_seq,
        start_prev_hash=start_prev,
        hmac_key=hmac_key,
        checkpoints=checkpoints,
        own_writer_id=own_writer_id,
        purged=bool(declared),
        jsonb_copies=connection.dialect.name == "postgresql",
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
    total = 0 if head_seq is None else max(0, head_seq - start_seq + 1)
    done = 0
    for page in _pages(connection, last_id):
        for row in page:
            verifier.feed(row)
        done += len(page)
        if progress is not None:
            progress(done, total)
    return verifier.finish(head_seq=head_seq, head_hash=head_hash)
