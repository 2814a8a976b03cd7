"""The follower behind ``tail -f``: new rows by id, late rows on PostgreSQL, no re-reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from cleveragents.cli.follow import Follower
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.reads import EntryFilter
from tests.cli.conftest import Trail, write_rows


def row(actor: str) -> EntryRow:
    """A hand-made row (no writer) to append directly."""
    return EntryRow(
        new_event_id(), "tool.invoked", actor, None, "{}", None, datetime.now(UTC), None, None
    )


@pytest.fixture
def database(trail: Trail) -> Iterator[AuditDatabase]:
    """The trail's database, opened as the command line opens it."""
    opened = open_database(trail.url, create=False)
    yield opened
    opened.dispose()


def ids(rows: Iterable[Any]) -> list[int]:
    """The ids of selected rows."""
    return [int(r.id) for r in rows]


def test_new_rows_arrive_once_in_id_order(trail: Trail, database: AuditDatabase) -> None:
    """Each poll returns what was committed since the last one, nothing twice."""
    follower = Follower(database, EntryFilter(), after_id=12)
    assert follower.poll() == []
    write_rows(trail.url, [row("a"), row("b")])
    assert ids(follower.poll()) == [13, 14]
    assert follower.poll() == []
    write_rows(trail.url, [row("c")])
    assert ids(follower.poll()) == [15]


def test_a_filter_is_applied_and_skipped_rows_are_not_read_again(
    trail: Trail, database: AuditDatabase
) -> None:
    """Only matching rows come back; the highest id moves past the others too."""
    follower = Follower(database, EntryFilter(actor="wanted"), after_id=12)
    write_rows(trail.url, [row("other"), row("wanted"), row("other")])
    assert ids(follower.poll()) == [14]
    assert follower.highest == 15


def test_each_poll_reads_only_the_new_range(trail: Trail, database: AuditDatabase) -> None:
    """Polls query ids above the highest seen: the statements carry that bound."""
    follower = Follower(database, EntryFilter(), after_id=12)
    statements: list[tuple[str, object]] = []

    def capture(_c: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        statements.append((statement, params))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        write_rows(trail.url, [row("a")])
        follower.poll()
        follower.poll()
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    reads = [(s, p) for s, p in statements if "FROM audit_log" in s]
    assert reads, statements
    for statement, params in reads:
        if "max(audit_log.id)" in statement:
            continue  # the newest id: one index lookup
        # a range above the highest seen (the gap scan of PostgreSQL is raw SQL)
        assert "audit_log.id >" in statement or "WHERE id > " in statement, statement
        values = list(params.values()) if isinstance(params, dict) else list(params)  # type: ignore[call-overload]
        assert 12 in values or 13 in values, (statement, params)


@pytest.mark.postgres
def test_a_row_committed_late_below_the_highest_id_is_not_missed(postgres_url: str) -> None:
    """PostgreSQL: id 1 commits after id 2 (two writers); the follower still returns it."""
    open_database(postgres_url).dispose()  # the schema
    engine: Engine = create_engine(postgres_url)
    database = open_database(postgres_url, create=False)
    insert = text(
        "INSERT INTO audit_log (event_id, event_type, actor, details, created_at)"
        " VALUES (:e, 'tool.invoked', :a, '{}', now()) RETURNING id"
    )
    try:
        follower = Follower(database, EntryFilter(), after_id=0)
        slow = engine.connect()
        slow_tx = slow.begin()
        slow_id = slow.execute(insert, {"e": new_event_id(), "a": "slow"}).scalar_one()
        with engine.begin() as fast:
            fast_id = fast.execute(insert, {"e": new_event_id(), "a": "fast"}).scalar_one()
        assert slow_id < fast_id
        assert ids(follower.poll()) == [fast_id]
        assert slow_id in follower.pending_gaps
        assert follower.poll() == []  # still in flight
        slow_tx.commit()
        slow.close()
        late = follower.poll()
        assert ids(late) == [slow_id]
        assert late[0].actor == "slow"
        assert follower.pending_gaps == frozenset()
        assert follower.poll() == []
    finally:
        database.dispose()
        engine.dispose()


@pytest.mark.postgres
def test_a_rolled_back_id_is_given_up_after_the_grace(postgres_url: str) -> None:
    """An id whose transaction rolled back is looked for until the grace runs out, then not."""
    open_database(postgres_url).dispose()
    engine = create_engine(postgres_url)
    database = open_database(postgres_url, create=False)
    now = [100.0]
    insert = text(
        "INSERT INTO audit_log (event_id, event_type, details, created_at)"
        " VALUES (:e, 'tool.invoked', '{}', now())"
    )
    try:
        follower = Follower(database, EntryFilter(), after_id=0, grace_s=5.0, clock=lambda: now[0])
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(insert, {"e": new_event_id()})
            transaction.rollback()
        with engine.begin() as connection:
            connection.execute(insert, {"e": new_event_id()})
        assert ids(follower.poll()) == [2]
        assert follower.pending_gaps == frozenset({1})
        now[0] += 6.0
        assert follower.poll() == []
        assert follower.pending_gaps == frozenset()
    finally:
        database.dispose()
        engine.dispose()
