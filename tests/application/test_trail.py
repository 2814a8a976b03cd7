"""Verify on real databases in the flows a review found hard: outages, replays, purges."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleveragents import AuditService, Settings
from cleveragents.application import trail
from cleveragents.cli.main import app
from cleveragents.domain.verification import FindingKind, VerifyStatus
from cleveragents.infrastructure.persistence.database import open_database
from tests.conftest import MakeService
from tests.support import GENEROUS_S, sqlite_path
from tests.trail_support import execute, verify_url


def test_an_outage_that_refuses_the_writers_declarations_too_verifies_after_replay(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """Entries and the writer.spooled rows about them all spooled: replayed, the trail is whole."""
    service = make_service(database_url=sqlite_url, audit_batch_size=10, audit_retry_deadline=0.2)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    outage = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    outage.execute(
        "CREATE TRIGGER outage BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'down'); END"
    )
    for n in range(5):
        service.record("tool.invoked", details={"n": n})
    assert not service.flush(GENEROUS_S)
    for n in range(3):  # the writer.spooled queued after the first failure is refused too
        service.record("tool.invoked", details={"m": n})
    assert not service.flush(GENEROUS_S)
    outage.execute("DROP TRIGGER outage")
    outage.close()
    service.record("session.ended")
    assert service.flush(GENEROUS_S)
    before = service.verify()
    assert before.status is VerifyStatus.LOSS_SUSPECTED  # not in the trail yet
    assert not set(before.counts) & {"altered", "deleted", "inserted", "reordered", "truncated"}

    assert service.replay().inserted >= 8
    service.close()
    report = verify_url(sqlite_url)
    assert report.intact, report.to_dict()


def test_rows_spooled_when_close_times_out_verify_after_replay(sqlite_url: str) -> None:
    """close() gives up on a locked database; the writer closes later; replay makes it whole."""
    service = AuditService(
        Settings(database_url=sqlite_url, audit_batch_size=2, audit_close_timeout_s=0.3)
    )
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    lock = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN IMMEDIATE")
    for n in range(10):
        service.record("tool.invoked", details={"n": n})
    service.close()  # times out: what is queued goes to the spool
    lock.execute("ROLLBACK")
    lock.close()
    with AuditService(Settings(database_url=sqlite_url, audit_async=False)) as replayer:
        replayer.replay(service.spool_path)
    # The first service's writer commits its batch in hand and writer.closed once the lock
    # is gone; the trail verifies whether or not it has done so yet, but for that writer.
    report = verify_url(sqlite_url)
    tampering = {"altered", "deleted", "inserted", "reordered", "truncated"}
    assert not set(report.counts) & tampering, report.to_dict()


@pytest.mark.parametrize("kind", ["retention.purged", "spool.replayed", "trail.imported"])
def test_a_purge_or_replay_declaration_is_never_replayed_or_imported(
    make_service: MakeService, sqlite_url: str, tmp_path: Path, kind: str
) -> None:
    """Such a line could hide a deletion: replay keeps it aside, import refuses it."""
    service = make_service(database_url=sqlite_url, audit_async=False)
    entry = {
        "event_id": "01a22905-5ae2-719a-9584-dbb329f36e5f",
        "event_type": kind,
        "actor": None,
        "resource": None,
        "details": {"through_seq": 3, "through_hash": "0" * 64, "count": 3},
        "correlation_id": None,
        "created_at": "2026-11-29T20:00:00+00:00",
    }
    line = json.dumps(entry) + "\n"
    spool = tmp_path / "forged.jsonl"
    spool.write_text(line)
    report = service.replay(spool)
    assert report.inserted == 0
    assert [r.line_number for r in report.rejected] == [1]
    assert "never replayed" in report.rejected[0].reason
    exported = tmp_path / "forged-export.jsonl"  # replay emptied the spool
    exported.write_text(line)
    result = CliRunner().invoke(app, ["import", str(exported), "--database-url", sqlite_url])
    assert result.exit_code == 1
    assert "not imported" in result.output
    assert service.count(include_system=True, event_type=kind) == 0


def test_verify_reads_one_snapshot_while_a_purge_runs(sqlite_url: str) -> None:
    """A purge that commits between two pages of a verify does not make it see a hole."""
    from cleveragents.infrastructure.persistence import verify as verify_module

    with AuditService(Settings(database_url=sqlite_url)) as service:
        for n in range(12_000):
            service.record("tool.invoked", details={"n": n})
    database = open_database(sqlite_url, create=False)
    purged: list[int] = []
    page = verify_module.VERIFY_PAGE

    def purge_once(done: int, total: int) -> None:
        if not purged:
            from datetime import UTC, datetime

            purged.append(trail.purge(database, datetime.now(UTC)).deleted)

    try:
        report = trail.verify(database, hmac_key=None, progress=purge_once)
    finally:
        database.dispose()
    assert purged
    assert purged[0] > page
    assert report.intact, report.to_dict()
    assert report.entries == 12_002
    assert verify_url(sqlite_url).intact


def test_a_time_respelled_as_another_offset_is_altered(sqlite_url: str) -> None:
    """The same instant written as +23:59 hashes alike but sorts apart: reported as altered."""
    with AuditService(Settings(database_url=sqlite_url)) as service:
        service.record("tool.invoked", actor="a")
    connection = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    (created,) = connection.execute("SELECT created_at FROM audit_log WHERE seq = 2").fetchone()
    from datetime import datetime, timedelta, timezone

    moment = datetime.fromisoformat(created).replace(tzinfo=UTC)
    respelled = moment.astimezone(timezone(timedelta(hours=23, minutes=59))).isoformat()
    connection.execute("UPDATE audit_log SET created_at = ? WHERE seq = 2", (respelled,))
    connection.close()
    report = verify_url(sqlite_url)
    assert report.status is VerifyStatus.TAMPERED
    assert (FindingKind.ALTERED, 2) in [(f.kind, f.seq) for f in report.findings]


@pytest.mark.postgres
def test_an_emptied_jsonb_copy_is_altered(postgres_url: str) -> None:
    """details_json set to NULL on a writer's row hides it from JSON queries: altered."""
    with AuditService(Settings(database_url=postgres_url)) as service:
        service.record("tool.invoked", details={"n": 1})
    execute(postgres_url, "UPDATE audit_log SET details_json = NULL WHERE seq = 2")
    report = verify_url(postgres_url)
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.ALTERED, 2)]


def test_a_head_row_that_is_not_a_number_is_a_finding_not_a_crash(sqlite_url: str) -> None:
    """A tampered head row is reported; verify still checks every entry."""
    with AuditService(Settings(database_url=sqlite_url)) as service:
        service.record("tool.invoked")
    execute(sqlite_url, "UPDATE audit_chain SET head_seq = 'x'")
    report = verify_url(sqlite_url)
    assert report.status is VerifyStatus.TAMPERED
    assert report.entries == 3
    assert [f.kind for f in report.findings] == [FindingKind.ALTERED]


def test_import_in_keyed_mode_signs_what_it_appends(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CLEVERAGENTS_AUDIT_HMAC_KEY set, imported entries carry an HMAC and verify."""
    with AuditService(Settings(database_url=sqlite_url)) as service:
        service.record("tool.invoked", details={"n": 1})
    runner = CliRunner()
    exported = tmp_path / "trail.jsonl"
    result = runner.invoke(app, ["export", "--out", str(exported), "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_HMAC_KEY", "k" * 32)
    result = runner.invoke(app, ["import", str(exported), "--database-url", target])
    assert result.exit_code == 0, result.output
    assert verify_url(target, key=b"k" * 32).intact


def test_verify_with_invalid_settings_exits_4(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify's contract: anything that stops it from verifying is 4, never 2 (loss)."""
    with AuditService(Settings(database_url=sqlite_url)):
        pass
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_HMAC_KEY", "")
    result = CliRunner().invoke(app, ["verify", "--database-url", sqlite_url])
    assert result.exit_code == 4, result.output


def _record_in_child(service: AuditService) -> None:
    service.record("tool.invoked", actor="child")


@pytest.mark.parametrize("audit_async", [True, False], ids=["async", "sync"])
def test_a_multiprocessing_child_that_never_closes_its_service_still_closes_its_writer(
    sqlite_url: str, audit_async: bool
) -> None:
    """multiprocessing ends a child with os._exit(): its writer.closed is written anyway."""
    import multiprocessing

    service = AuditService(Settings(database_url=sqlite_url, audit_async=audit_async))
    child = multiprocessing.get_context("fork").Process(target=_record_in_child, args=(service,))
    child.start()
    child.join(GENEROUS_S)
    service.close()
    assert child.exitcode == 0
    report = verify_url(sqlite_url)
    assert report.intact, report.to_dict()
    assert report.writers == 2
