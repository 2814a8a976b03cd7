"""The ``audit_log`` table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Index, Integer, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuditChainHead",
    "AuditLogRecord",
    "Base",
    "UTCDateTime",
    "audit_chain",
    "audit_log",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is
    stored as naive UTC text (which sorts in time order) and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: audit times must be timezone-aware")
        if dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the audit tables."""


class AuditLogRecord(Base):
    """One committed audit entry. ``details`` holds the canonical JSON text."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    event_type: Mapped[str] = mapped_column(String, nullable=False)
    actor: Mapped[str | None] = mapped_column(String)
    resource: Mapped[str | None] = mapped_column(String)
    details: Mapped[str] = mapped_column(Text, nullable=False)
    # PostgreSQL only: the details as JSONB, for queries with JSON operators. The text
    # above stays the source: JSONB normalises numbers and cannot hold U+0000, so this
    # column is NULL where it could not represent the details exactly. NULL on SQLite.
    details_json: Mapped[Any | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    correlation_id: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # The hash chain (domain/chain.py), assigned by the insert under the chain's lock:
    # seq is gapless and in commit order, which is also id order (ids are assigned at
    # insert, under the same lock), so verify reads by id and no index on seq is kept
    # (it cost about 15 % of insert throughput). NULL only on a row put there by hand,
    # which verify reports as inserted.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    hmac: Mapped[str | None] = mapped_column(String(64))  # keyed mode only
    # Writer accounting: the service instance that accepted the entry, and its count.
    writer_id: Mapped[str | None] = mapped_column(String(36))
    writer_seq: Mapped[int | None] = mapped_column(BigInteger)

    # The filters of query(), count() and the command line. An equality filter is on
    # (column, id), so a filtered page in id order, forwards or backwards, is one
    # index range scan (PostgreSQL needs the id spelled out; SQLite has it anyway).
    # The schema is made by the migrations (persistence/migrations/); a test checks
    # that they and this table agree.
    __table_args__ = (
        Index("ix_audit_log_event_type", "event_type", "id"),
        Index("ix_audit_log_actor", "actor", "id"),
        Index("ix_audit_log_resource", "resource", "id"),
        Index("ix_audit_log_correlation_id", "correlation_id", "id"),
        Index("ix_audit_log_created_at", "created_at"),
    )


class AuditChainHead(Base):
    """The chain's one head row (``id = 1``): the lock writers take, and the chain's end.

    ``head_*`` is the last entry appended (verify checks that the trail ends there);
    ``origin_*`` the first entry kept (seq 1 after GENESIS, moved forward by a
    purge), which gives a checkpoint its ``count``. Verify does not trust the origin:
    it starts after the newest ``retention.purged`` entry in the chain itself.
    """

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    origin_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    origin_prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)


audit_log = cast(Table, AuditLogRecord.__table__)
audit_chain = cast(Table, AuditChainHead.__table__)
