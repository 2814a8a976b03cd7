"""The audit_log table and the indexes behind the command line's filters.

Revision ID: 0001
Revises:
Created: 2026-11-29

Exactly the table that ``Base.metadata.create_all`` made before migrations
existed, except for the filter indexes, which are on ``(column, id)``: a filtered
page (``WHERE actor = ? AND id > ? ORDER BY id LIMIT ?``) and the newest entries
of a filter (``... ORDER BY id DESC``) are then one index range scan on
PostgreSQL too (SQLite appends the rowid to every index anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: name -> columns of every index this revision creates.
INDEXES: dict[str, list[str]] = {
    "ix_audit_log_event_type": ["event_type", "id"],
    "ix_audit_log_actor": ["actor", "id"],
    "ix_audit_log_resource": ["resource", "id"],
    "ix_audit_log_correlation_id": ["correlation_id", "id"],
    "ix_audit_log_created_at": ["created_at"],
}


def upgrade() -> None:
    """Create ``audit_log`` and its indexes."""
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("resource", sa.String(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column(
            "details_json", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("correlation_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id"),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_log", columns)


def downgrade() -> None:
    """Drop ``audit_log`` with everything in it."""
    for name in INDEXES:
        op.drop_index(name, table_name="audit_log")
    op.drop_table("audit_log")
