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
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cleveragents.domain.chain import GENESIS_HASH, canonical_header, entry_hash
from cleveragents.infrastructure.persistence.table import UTCDateTime

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


def _chain_existing_rows() -> tuple[int, str]:
    """Give the rows present seq 1..n in id order and their hashes; the head (n, hash)."""
    connection = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.BigInteger()),
        sa.column("event_id", sa.String()),
        sa.column("event_type", sa.String()),
        sa.column("actor", sa.String()),
        sa.column("resource", sa.String()),
        sa.column("details", sa.Text()),
        sa.column("correlation_id", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    update = (
        sa.update(log)
        .where(log.c.id == sa.bindparam("row_id"))
        .values(seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev"))
        .values(entry_hash=sa.bindparam("new_hash"))
    )
    seq, prev, last_id = 0, GENESIS_HASH, None
    while True:
        page = sa.select(log).order_by(log.c.id).limit(_BACKFILL_PAGE)
        if last_id is not None:
            page = page.where(log.c.id > last_id)
        rows = connection.execute(page).all()
        if not rows:
            return seq, prev
        params = []
        for row in rows:
            seq += 1
            header = canonical_header(
                seq=seq,
                event_id=row.event_id,
                event_type=row.event_type,
                actor=row.actor,
                resource=row.resource,
                details=row.details,
                correlation_id=row.correlation_id,
                created_at=row.created_at,
                writer_id=None,
                writer_seq=None,
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
