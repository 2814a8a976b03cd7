"""Databases at a given schema revision, made before migrations, or behind a newer head."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
)

from cleveragents.infrastructure.persistence import schema
from cleveragents.infrastructure.persistence.schema import (
    MIGRATIONS_DIR,
    alembic_config,
    head_revision,
)
from cleveragents.infrastructure.persistence.table import Base


def at_revision(url: str, revision: str) -> None:
    """Make an empty database the schema of ``revision`` (only migrations, as a real one was)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


ROWS = [
    {
        "event_id": f"0190f1d2-0000-7000-8000-00000000000{n}",
        "event_type": "tool.invoked",
        "actor": "agent:é",
        "resource": None,
        "details": f'{{"n":{n},"nested":{{"a":[1,"ü"]}}}}',
        "correlation_id": "run-1",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 123456 + n, tzinfo=UTC),
    }
    for n in range(3)
]


def insert_base_rows(url: str) -> None:
    """Insert ROWS with the columns of the first revision only (what it had)."""
    engine = create_engine(url)
    table = Table(
        "audit_log",
        MetaData(),
        autoload_with=engine,
    )
    try:
        with engine.begin() as connection:
            connection.execute(table.insert(), [dict(row) for row in ROWS])
    finally:
        engine.dispose()


def legacy_table(url: str, *, with_details_json: bool) -> None:
    """The audit_log that create_all made before migrations: single-column indexes."""
    metadata = MetaData()
    columns: list[Any] = [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String, nullable=False),
        Column("actor", String),
        Column("resource", String),
        Column("details", Text, nullable=False),
        Column("correlation_id", String),
        Column("created_at", Base.metadata.tables["audit_log"].c.created_at.type, nullable=False),
    ]
    if with_details_json:
        columns.append(
            Column("details_json", Base.metadata.tables["audit_log"].c.details_json.type)
        )
    table = Table("audit_log", metadata, *columns)
    for name in ("event_type", "actor", "resource", "correlation_id", "created_at"):
        Index(f"ix_audit_log_{name}", table.c[name])
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


NEXT_REVISION = textwrap.dedent(
    '''
    """A test revision after the shipped head: one more nullable column."""
    import sqlalchemy as sa
    from alembic import op

    revision = "test_next"
    down_revision = {head!r}
    branch_labels = None
    depends_on = None


    def upgrade() -> None:
        with op.batch_alter_table("audit_log") as batch:
            batch.add_column(sa.Column("tenant", sa.String(), nullable=True))


    def downgrade() -> None:
        with op.batch_alter_table("audit_log") as batch:
            batch.drop_column("tenant")
    '''
)


@pytest.fixture
def next_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The shipped migrations plus one newer revision, in a copy the schema module uses."""
    shipped_head = head_revision()
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "test_next.py").write_text(
        NEXT_REVISION.format(head=shipped_head), encoding="utf-8"
    )
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
    schema._scripts.cache_clear()
    yield shipped_head
    schema._scripts.cache_clear()
