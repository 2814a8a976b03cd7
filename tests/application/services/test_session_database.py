"""An injected session serves the trail's calls as an owned engine does: verify, replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cleveragents import VerifyStatus
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import PendingRow, with_writer_seq
from cleveragents.infrastructure.persistence.table import audit_log
from cleveragents.infrastructure.spool import Spool
from tests.conftest import MakeService


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A caller's session on the test database."""
    engine = create_engine(database_url)
    with Session(engine) as opened:
        yield opened
    engine.dispose()


def test_verify_and_checkpoint_read_through_the_session(
    make_service: MakeService, database_url: str, session: Session
) -> None:
    """verify() and checkpoint() of a session's service see the rows it committed."""
    service = make_service(database_url=database_url, session=session)
    for n in range(3):
        service.record("tool.invoked", details={"n": n})
    report = service.verify()
    assert report.status is VerifyStatus.INTACT, report.to_dict()
    head = service.checkpoint()
    assert head.count == 4  # writer.opened and the three entries
    assert service.verify(checkpoint=head).status is VerifyStatus.INTACT
    assert repr(service) == "<AuditService sync session open>"


def test_replay_inserts_through_the_session_once(
    make_service: MakeService, database_url: str, session: Session, tmp_path: Path
) -> None:
    """replay() commits a spool's rows through the session; a second replay inserts none."""
    service = make_service(database_url=database_url, session=session)
    spool = Spool(tmp_path / "given-up.jsonl")
    writer_id = new_event_id()
    rows = [
        with_writer_seq(
            PendingRow(
                new_event_id(), "tool.invoked", "agent:a", None, "{}", None, datetime.now(UTC), None
            )._replace(writer_id=writer_id),
            seq,
        )
        for seq in (1, 2)
    ]
    assert spool.append(rows, "OperationalError: database is locked") == []
    report = service.replay(spool.path)
    assert (report.read, report.inserted, report.rejected) == (2, 2, ())
    stored = session.execute(select(audit_log.c.event_id).where(audit_log.c.actor == "agent:a"))
    assert sorted(stored.scalars()) == sorted(row.event_id for row in rows)
    spool.append(rows, "OperationalError: database is locked")  # the same rows once more
    assert service.replay(spool.path).inserted == 0
