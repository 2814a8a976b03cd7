"""The hash chain and writer accounting: chain columns, the chain head, existing rows chained.

Revision ID: 0002
Revises: 0001
Created: 2026-11-29

Adds ``seq``, ``prev_hash``, ``entry_hash``, ``hmac``, ``writer_id`` and
``writer_seq`` to ``audit_log`` (nullable: a row inserted by hand, without them,
is what ``verify`` reports as inserted) and the ``audit_chain`` table whose one
row is the chain head that writers lock. No index on ``seq``: it follows ``id``.

Rows already in the table are chained in ``id`` order, with no writer (they were
written before writers were accounted) and no HMAC (a migration never sees the
key). Their hashes prove that nothing changed after this upgrade, not before it.

Self-contained: the canonical form and hash are frozen here as they were at this
revision (a test holds them to the live :mod:`cleveragents.domain.chain`), so a change
to the live code can never change what this migration writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("seq", sa.BigInteger()),
    ("prev_hash", sa.String(64)),
    ("entry_hash", sa.String(64)),
    ("hmac", sa.String(64)),
    ("writer_id", sa.String(36)),
    ("writer_seq", sa.BigInteger()),
)
_BACKFILL_PAGE = 5_000
# The chain's canonical form at this revision (domain/chain.py, frozen).
_ENTRY_TAG = b"cleveragents-audit/v1/entry\x00"
GENESIS_HASH = "0" * 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """``created_at`` read as an aware UTC datetime (SQLite keeps naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def canonical_header(
    seq: int,
    event_id: str,
    event_type: str,
    actor: str | None,
    resource: str | None,
    details: str,
    correlation_id: str | None,
    created_at: datetime,
) -> bytes:
    """The canonical bytes of a row chained here (no writer: ``writer_id``/``writer_seq`` null)."""
    delta = created_at - _EPOCH
    return orjson.dumps(
        {
            "actor": actor,
            "correlation_id": correlation_id,
            "created_at": (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
            "details_sha256": hashlib.sha256(details.encode("utf-8")).hexdigest(),
            "event_id": event_id,
            "event_type": event_type,
            "resource": resource,
            "seq": seq,
            "writer_id": None,
            "writer_seq": None,
        }
    )


def entry_hash(prev_hash: str, header: bytes) -> str:
    """``SHA-256(ENTRY_TAG || prev_hash || header)`` as lowercase hex."""
    return hashlib.sha256(_ENTRY_TAG + bytes.fromhex(prev_hash) + header).hexdigest()


def upgrade() -> None:
    """Add the chain columns and head, and chain the rows already there."""
    for name, type_ in _COLUMNS:
        op.add_column("audit_log", sa.Column(name, type_, nullable=True))
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("origin_seq", sa.BigInteger(), nullable=False),
        sa.Column("origin_prev_hash", sa.String(64), nullable=False),
    )
    head_seq, head_hash = _chain_existing_rows()
    op.bulk_insert(
        chain,
        [
            {
                "id": 1,
                "head_seq": head_seq,
                "head_hash": head_hash,
                "origin_seq": 1,
                "origin_prev_hash": GENESIS_HASH,
            }
        ],
    )


_LOG = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger()),
    sa.column("event_id", sa.String()),
    sa.column("event_type", sa.String()),
    sa.column("actor", sa.String()),
    sa.column("resource", sa.String()),
    sa.column("details", sa.Text()),
    sa.column("correlation_id", sa.String()),
    sa.column("created_at", _UTCDateTime()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("entry_hash", sa.String()),
)


def _chain_existing_rows() -> tuple[int, str]:
    """Give the rows present seq 1..n in id order and their hashes; the head (n, hash)."""
    connection = op.get_bind()
    update = (
        sa.update(_LOG)
        .where(_LOG.c.id == sa.bindparam("row_id"))
        .values(seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev"))
        .values(entry_hash=sa.bindparam("new_hash"))
    )
    seq, prev, last_id = 0, GENESIS_HASH, None
    while True:
        page = sa.select(_LOG).order_by(_LOG.c.id).limit(_BACKFILL_PAGE)
        if last_id is not None:
            page = page.where(_LOG.c.id > last_id)
        rows = connection.execute(page).all()
        if not rows:
            return seq, prev
        params = []
        for row in rows:
            seq += 1
            header = canonical_header(
                seq,
                row.event_id,
                row.event_type,
                row.actor,
                row.resource,
                row.details,
                row.correlation_id,
                row.created_at,
            )
            hashed = entry_hash(prev, header)
            params.append({"row_id": row.id, "new_seq": seq, "new_prev": prev, "new_hash": hashed})
            prev = hashed
        connection.execute(update, params)
        last_id = rows[-1].id


def downgrade() -> None:
    """Drop the chain (the hashes are lost: the trail is no longer tamper-evident)."""
    op.drop_table("audit_chain")
    for name, _ in reversed(_COLUMNS):
        op.drop_column("audit_log", name)
