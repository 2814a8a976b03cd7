"""The replay's insert on a real database: refused rows isolated by the bisection helper.

``AuditDatabase.insert_new`` commits per batch and halves a batch the database refuses
(:func:`~cleveragents.infrastructure.bisection.bisect_failures`) until the refused rows
stand alone, so that they cannot hold the others back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.table import audit_log


def make_row(n: int, *, refused: bool = False) -> EntryRow:
    """A caller's row; a ``refused`` one has no event_type, which the table does not allow."""
    return EntryRow(
        event_id=new_event_id(),
        event_type=None if refused else "tool.invoked",  # type: ignore[arg-type]
        actor=f"actor-{n}",
        resource=None,
        details=f'{{"n":{n}}}',
        correlation_id=None,
        created_at=datetime.now(UTC),
        writer_id=None,
        writer_seq=None,
    )


@pytest.fixture
def database(database_url: str) -> Iterator[AuditDatabase]:
    """An opened audit database on the backend under test, disposed afterwards."""
    opened = open_database(database_url)
    yield opened
    opened.dispose()


def stored_event_ids(database: AuditDatabase) -> list[str]:
    """The event_ids stored, in id order."""
    with database.connect() as connection:
        query = select(audit_log.c.event_id).order_by(audit_log.c.id)
        return list(connection.execute(query).scalars())


def test_refused_rows_are_isolated_and_the_others_inserted(database: AuditDatabase) -> None:
    """Two rows the table refuses come back by index, with the reason; the rest commit."""
    rows = [make_row(n, refused=n in (3, 11)) for n in range(16)]
    inserted, refused = database.insert_new(rows)
    assert inserted == 14
    assert [index for index, _ in refused] == [3, 11]
    assert all("event_type" in reason for _, reason in refused), refused
    assert set(stored_event_ids(database)) == {
        row.event_id for n, row in enumerate(rows) if n not in (3, 11)
    }


def test_rows_stored_already_are_skipped_and_not_refused(database: AuditDatabase) -> None:
    """Inserting the same rows again inserts none and refuses none."""
    rows = [make_row(n) for n in range(5)]
    assert database.insert_new(rows) == (5, [])
    assert database.insert_new(rows) == (0, [])
    assert stored_event_ids(database) == [row.event_id for row in rows]


def test_when_every_row_is_refused_for_the_rows_own_sake_they_are_returned(
    database: AuditDatabase,
) -> None:
    """No batch commits, but each error is about its row: the rows are refused, no raise."""
    rows = [make_row(n, refused=True) for n in range(3)]
    inserted, refused = database.insert_new(rows)
    assert (inserted, [index for index, _ in refused]) == (0, [0, 1, 2])
    assert stored_event_ids(database) == []


def test_when_no_row_can_be_written_for_the_databases_sake_the_error_is_raised(
    database: AuditDatabase,
) -> None:
    """A missing table refuses every batch: that is the database's fault, and it raises."""
    with database.transaction() as connection:
        connection.execute(text("DROP TABLE audit_log"))
    with pytest.raises(SQLAlchemyError):
        database.insert_new([make_row(n) for n in range(4)])
