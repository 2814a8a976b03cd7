"""An injected session stays usable after a record() that the database refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from cleveragents import AuditService, Settings

SQLITE_TRIGGER = (
    "CREATE TRIGGER refuse_evil BEFORE INSERT ON audit_log WHEN NEW.actor = 'evil' "
    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
)
POSTGRES_TRIGGER = (
    "CREATE FUNCTION refuse_evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.actor = 'evil' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER refuse_evil BEFORE INSERT ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION refuse_evil()",
)


def test_a_refused_record_leaves_the_callers_session_usable(database_url: str) -> None:
    """After a refused INSERT the session is rolled back: later records and reads work."""
    engine = create_engine(database_url)
    session = Session(engine)
    try:
        service = AuditService(Settings(database_url=database_url), session=session)
        postgres = engine.dialect.name == "postgresql"
        for statement in POSTGRES_TRIGGER if postgres else (SQLITE_TRIGGER,):
            session.execute(text(statement))
        session.commit()
        with capture_logs() as logs, pytest.raises(DBAPIError, match="refused by the test"):
            service.record("tool.invoked", actor="evil", details={"ssn": "123-45-6789"})
        kept = service.record("tool.invoked", actor="good")
        assert kept.id > 0
        assert service.count() == 1
        assert service.stats().failed == 1
        [failed] = [log for log in logs if log["event"] == "audit_entry_failed"]
        assert "123-45-6789" not in str(failed)  # audit data stays out of the log
        service.close()
    finally:
        session.close()
        engine.dispose()
