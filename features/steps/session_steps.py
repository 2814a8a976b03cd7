"""The synchronous fallback: a service that writes through the caller's SQLAlchemy session."""

from __future__ import annotations

from audit_support import open_sqlite, remember_service, sqlite_url
from behave import given, then
from behave.runner import Context
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cleveragents import AuditService, Settings
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES


@given('a SQLAlchemy session on "{db_name}"')
def given_session(context: Context, db_name: str) -> None:
    context.db_path = context.tmp / db_name
    engine = create_engine(sqlite_url(context.db_path))
    context.engines.append(engine)
    context.session = Session(engine)
    context.sessions.append(context.session)


@given("an audit service using that session")
def given_service_on_session(context: Context) -> None:
    remember_service(context, AuditService(session=context.session), context.db_path)


@given("an audit service using that session, with asynchronous recording requested")
def given_service_on_session_async(context: Context) -> None:
    settings = Settings(audit_async=True, database_url=sqlite_url(context.tmp / "unused.db"))
    remember_service(context, AuditService(settings, session=context.session), context.db_path)


@then("the session sees the entry at once")
def then_session_sees(context: Context) -> None:
    row = context.session.execute(
        text("SELECT id, event_type, actor FROM audit_log WHERE event_id = :event_id"),
        {"event_id": context.entry.event_id},
    ).one_or_none()
    assert row is not None, "the session does not see the entry"
    assert (row.id, row.event_type, row.actor) == (
        context.entry.id,
        context.entry.event_type.value,
        context.entry.actor,
    ), row


@then("another connection sees the entry at once")
def then_other_connection_sees(context: Context) -> None:
    with open_sqlite(context.db_path) as connection:
        row = connection.execute(
            "SELECT id FROM audit_log WHERE event_id = ?", (context.entry.event_id,)
        ).fetchone()
    assert row is not None, "the entry is not committed"
    assert row["id"] == context.entry.id, (row["id"], context.entry.id)


@then("the entries got ascending ids")
def then_ids_ascend(context: Context) -> None:
    ids = [entry.id for entry in context.recorded]
    assert all(i >= 1 for i in ids), ids
    assert ids == sorted(set(ids)), ids


@then("the session still works and sees {count:d} entries")
def then_session_still_works(context: Context, count: int) -> None:
    kinds = context.session.execute(text("SELECT event_type FROM audit_log")).scalars()
    seen = sum(kind not in SYSTEM_EVENT_TYPES for kind in kinds)  # writer.opened/closed aside
    assert seen == count, seen
