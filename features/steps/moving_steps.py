"""Moving a trail: a SQLite trail written by real services, a fresh PostgreSQL schema."""

from __future__ import annotations

import os
import shlex
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from audit_support import in_scenario_dir, sqlite_url
from behave import given, then, when
from behave.runner import Context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cleveragents import AuditService, Settings
from cleveragents.application import trail
from cleveragents.cli.main import app
from cleveragents.infrastructure.persistence.database import open_database

POSTGRES_URL_ENV = "CLEVERAGENTS_TEST_POSTGRES_URL"
#: Most seconds a step waits for the clock to move on.
CLOCK_WAIT_S = 5.0
#: Every stored field of a row, the chain's included.
ROW_SQL = (
    "SELECT seq, event_id, event_type, actor, resource, details, correlation_id,"
    " writer_id, writer_seq, prev_hash, entry_hash, hmac FROM audit_log ORDER BY id"
)


def _record(context: Context, url: str, actor: str, count: int, **settings: Any) -> None:
    """One service records ``count`` entries by ``actor`` and closes (after_scenario too)."""
    service = AuditService(Settings(database_url=url, **settings))
    context.services.append(service)
    for n in range(count):
        service.record("tool.invoked", actor=actor, details={"n": n, "text": "é ✓"})
    service.close()


def _rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(ROW_SQL))]
    finally:
        engine.dispose()


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = connection.execute(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            )
            return sorted(row[0] for row in names)
    finally:
        engine.dispose()


@given("a SQLite trail written by four agents, the first of them purged since")
def given_sqlite_trail(context: Context) -> None:
    context.trail_url = sqlite_url(context.tmp / "trail.db")
    _record(context, context.trail_url, "agent:purged", 3)
    cut = datetime.now(UTC) + timedelta(microseconds=1)
    deadline = time.monotonic() + CLOCK_WAIT_S
    while datetime.now(UTC) <= cut:
        assert time.monotonic() < deadline, "the clock did not move on"
    _record(context, context.trail_url, "agent:first", 7)
    database = open_database(context.trail_url, create=False)
    try:
        assert trail.purge(database, cut).deleted == 5  # writer.opened, 3 entries, writer.closed
    finally:
        database.dispose()
    _record(context, context.trail_url, "agent:second", 5)
    _record(context, context.trail_url, "agent:sync", 4, audit_async=False)
    os.environ["CLEVERAGENTS_DATABASE_URL"] = context.trail_url  # after_scenario restores it


@given('a checkpoint of it kept in "{name}"')
def given_checkpoint(context: Context, name: str) -> None:
    result = CliRunner().invoke(app, ["checkpoint", "--out", name], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


@given("an empty PostgreSQL schema")
def given_postgres_schema(context: Context) -> None:
    base = context.saved_env.get(POSTGRES_URL_ENV)  # before_scenario took it out of os.environ
    if not base:
        context.scenario.skip(f"{POSTGRES_URL_ENV} is not set: no PostgreSQL server to move to")
        return
    schema = f"t_{uuid.uuid4().hex}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    context.engines.append(engine)  # after_scenario disposes of it
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    context.exit_stack.callback(_drop_schema, engine, schema)
    context.postgres_url = (
        make_url(base)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def _drop_schema(engine: Any, schema: str) -> None:
    with engine.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@given("the PostgreSQL schema holds a trail of its own")
def given_postgres_trail(context: Context) -> None:
    _record(context, context.postgres_url, "agent:already-there", 2)
    context.postgres_rows = _rows(context.postgres_url)


@given('a file "{name}" whose first line is not an entry')
def given_bad_file(context: Context, name: str) -> None:
    (context.tmp / name).write_bytes(b'{"event_type": "tool.invoked"}\n')


@when('I run "cleveragents-audit {arguments}" against PostgreSQL')
def when_run_on_postgres(context: Context, arguments: str) -> None:
    args = [*shlex.split(in_scenario_dir(context, arguments)), "--database-url"]
    context.result = CliRunner().invoke(app, [*args, context.postgres_url], catch_exceptions=False)


@when("an agent records {count:d} more entries in the SQLite trail")
def when_more_entries(context: Context, count: int) -> None:
    _record(context, context.trail_url, "agent:later", count)


@then("it says the entries kept their chain")
def then_kept(context: Context) -> None:
    assert ", keeping their chain (head: seq " in context.result.stdout, context.result.stdout


@then("PostgreSQL holds every entry of the SQLite trail with the same seq, hashes and writers")
def then_same_rows(context: Context) -> None:
    source = _rows(context.trail_url)
    assert source, "the SQLite trail is empty"
    assert _rows(context.postgres_url) == source


@then("the PostgreSQL trail is as it was")
def then_unchanged(context: Context) -> None:
    assert _rows(context.postgres_url) == context.postgres_rows


@then("the PostgreSQL schema has no tables")
def then_no_tables(context: Context) -> None:
    assert _tables(context.postgres_url) == []
