"""Steps of hardening.feature: bad input on both backends, and failures injected into the writer.

The PostgreSQL examples use a fresh schema of the server named by
``CLEVERAGENTS_TEST_POSTGRES_URL`` (read when the steps load, before any scenario
clears the environment), dropped when the scenario ends; without the variable
they are skipped, as the pytest suite's PostgreSQL tests are.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from audit_support import flush, record_numbered, remember_service
from behave import given, then, when
from behave.runner import Context
from sqlalchemy.engine import make_url

from cleveragents import AuditService, Settings, VerifyStatus
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.spool import Spool

POSTGRES_URL = os.environ.get("CLEVERAGENTS_TEST_POSTGRES_URL")


class InjectedError(Exception):
    """An exception the library has never heard of."""


def _postgres_schema_url(context: Context) -> str:
    """The URL of a fresh schema on the test server; dropped when the scenario ends."""
    import psycopg
    from psycopg import sql

    assert POSTGRES_URL is not None
    schema = f"t_{uuid.uuid4().hex}"
    conninfo = make_url(POSTGRES_URL).set(drivername="postgresql")
    conninfo_text = conninfo.render_as_string(hide_password=False)
    with psycopg.connect(conninfo_text, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))

    def drop() -> None:
        for service in context.services:  # after_scenario closed them already; idempotent
            service.close()
        with psycopg.connect(conninfo_text, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    context.add_cleanup(drop)
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@given("an audit service writing to the {backend} test database")
def given_service_on(context: Context, backend: str) -> None:
    if backend == "PostgreSQL":
        if POSTGRES_URL is None:
            context.scenario.skip("CLEVERAGENTS_TEST_POSTGRES_URL is not set")
            return
        url = _postgres_schema_url(context)
    else:
        assert backend == "SQLite", backend
        url = f"sqlite:///{context.tmp / 'audit.db'}"
    remember_service(context, AuditService(Settings(database_url=url)), None)


def _try_record(context: Context, **fields: Any) -> None:
    context.error = None
    try:
        context.service.record("tool.invoked", **fields)
    except Exception as exc:
        context.error = exc


@when("I try to record an entry by an actor of {size:d} bytes")
def when_try_actor_of(context: Context, size: int) -> None:
    _try_record(context, actor="a" * size)


@when("I try to record an entry by an actor holding a NUL")
def when_try_actor_nul(context: Context) -> None:
    _try_record(context, actor="agent\x00one")


@when("I record an entry by an actor of {size:d} bytes")
def when_record_actor_of(context: Context, size: int) -> None:
    actor = "é" * (size // 2) + "a" * (size % 2)  # two bytes each in UTF-8
    context.recorded.append(context.service.record("tool.invoked", actor=actor))


@when('I record an entry by "{actor}"')
def when_record_by(context: Context, actor: str) -> None:
    context.recorded.append(context.service.record("tool.invoked", actor=actor))


@then("the service has committed {count:d} entries, failed none, and verifies intact")
def then_committed_intact(context: Context, count: int) -> None:
    service: AuditService = context.service
    assert flush(service) is True, "flush() failed"
    assert service.count() == count, service.count()
    stats = service.stats()
    assert (stats.written, stats.failed) == (count, 0), stats
    report = service.verify()
    assert report.status is VerifyStatus.INTACT, report.to_dict()


@given('every batch holding an entry by "{actor}" fails with an unknown exception')
def given_batches_fail(context: Context, actor: str) -> None:
    original = AuditDatabase.write_batch

    def write_batch(database: AuditDatabase, rows: Sequence[EntryRow]) -> None:
        if any(row[2] == actor for row in rows):
            raise InjectedError(f"a batch holding an entry by {actor}")
        original(database, rows)

    AuditDatabase.write_batch = write_batch  # type: ignore[method-assign]
    context.add_cleanup(setattr, AuditDatabase, "write_batch", original)


@given("appending to the spool fails with an unknown exception")
def given_spool_fails(context: Context) -> None:
    original = Spool.append

    def append(spool: Spool, rows: Sequence[EntryRow], error: str) -> None:
        raise InjectedError("the spool is broken")

    Spool.append = append  # type: ignore[assignment,method-assign]
    context.add_cleanup(setattr, Spool, "append", original)


@then("later entries are still committed")
def then_later_committed(context: Context) -> None:
    before = context.service.count()
    record_numbered(context, 2)
    assert flush(context.service) is True, "flush() after the failure failed"
    assert context.service.count() == before + 2


@then("verify reports the failed entry as declared, not as tampering")
def then_verify_declared(context: Context) -> None:
    report = context.service.verify()
    assert report.status is VerifyStatus.DECLARED_DROPS, report.to_dict()
    assert set(report.counts) == {"spooled"}, report.to_dict()
