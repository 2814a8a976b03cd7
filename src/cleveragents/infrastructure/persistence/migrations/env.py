"""Alembic's entry point: run the migrations on the connection we are given."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from cleveragents.infrastructure.persistence.schema import VERSION_TABLE
from cleveragents.infrastructure.persistence.table import Base


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite: ALTER TABLE through copy-and-move
        compare_type=True,
    )


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection is not None:  # from cleveragents: its transaction, its lock
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no connection and no sqlalchemy.url: use `cleveragents-audit db upgrade`, "
            "or an alembic.ini that names the database"
        )
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
            own.commit()
    finally:
        engine.dispose()


_run()
