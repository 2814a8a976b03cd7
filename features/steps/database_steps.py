"""Other connections to the audit database: holding its write lock, dropping its table; logs."""

from __future__ import annotations

import json
import sqlite3

import structlog.testing
from audit_support import flush, is_system_line, open_sqlite
from behave import given, step, then, when
from behave.runner import Context

# -- another connection to the same SQLite file -------------------------------------------


@step("another connection holds the database's write lock")
def given_write_lock(context: Context) -> None:
    service = getattr(context, "service", None)
    if service is not None and service.is_async and not service.closed:
        # Its writer commits writer.opened first: let it, so the lock holds back only entries.
        assert flush(service), "the writer did not commit its writer.opened"
    # The service has put the file in WAL mode, so readers still read; only writers wait.
    lock = sqlite3.connect(context.db_path, timeout=10.0, isolation_level=None)
    context.locks.append(lock)  # after_scenario releases it before closing the services
    lock.execute("BEGIN IMMEDIATE")
    context.lock = lock


@when("the other connection releases the write lock")
def when_release_lock(context: Context) -> None:
    context.lock.rollback()
    context.lock.close()
    context.locks.remove(context.lock)


@when("another connection drops the audit_log table")
def when_drop_table(context: Context) -> None:
    with open_sqlite(context.db_path) as connection:
        (context.audit_log_ddl,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'"
        ).fetchone()
        connection.execute("DROP TABLE audit_log")
        connection.commit()


@when("another connection creates the audit_log table again")
def when_restore_table(context: Context) -> None:
    with open_sqlite(context.db_path) as connection:
        connection.execute(context.audit_log_ddl)
        connection.commit()


@given('a file "{name}" that is not a database')
def given_not_a_database(context: Context, name: str) -> None:
    (context.tmp / name).write_text("meeting notes, not SQLite\n" * 200, encoding="utf-8")


# -- log lines ----------------------------------------------------------------------------


@given("the log is captured")
def given_log_captured(context: Context) -> None:
    context.logs = context.exit_stack.enter_context(structlog.testing.capture_logs())


def _logged(context: Context, event: str, level: str) -> list[dict[str, object]]:
    return [
        line
        for line in context.logs
        if line.get("event") == event and line.get("log_level") == level
    ]


@then('an "{event}" {level} was logged')
def then_logged(context: Context, event: str, level: str) -> None:
    seen = [(line.get("event"), line.get("log_level")) for line in context.logs]
    assert _logged(context, event, level), f"no {level} {event!r} in {seen}"


@then('an "audit_entries_failed" error was logged for {count:d} entry')
@then('an "audit_entries_failed" error was logged for {count:d} entries')
def then_failed_logged(context: Context, count: int) -> None:
    lines = _logged(context, "audit_entries_failed", "error")
    assert lines, f"no audit_entries_failed error in {context.logs}"
    assert sum(int(str(line["count"])) for line in lines) == count, lines
    failed_ids = {event_id for line in lines for event_id in line["event_ids"]}
    others = failed_ids - {entry.event_id for entry in context.recorded}
    if others:  # only the writer's own rows, given up with the entries and kept in the spool
        spool = context.service.spool_path.read_bytes().splitlines()
        system_ids = {item["event_id"] for item in map(json.loads, spool) if is_system_line(item)}
        assert others <= system_ids, others
