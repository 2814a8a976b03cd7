"""Faults injected into real databases: every entry is either persisted or spooled, then replayed.

Nothing here is a mock. A second connection holds the SQLite file's exclusive lock,
drops the table, caps the file's size, or adds a trigger that refuses some rows;
the service must retry what is transient, keep what fails for good in the spool,
say so (``flush()`` False, a structlog error naming the spool), and a replay must
bring back every spooled entry exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import Pool
from structlog.testing import capture_logs

from cleveragents import AuditLogEntry, AuditService, AuditServiceClosedError, Settings
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES
from cleveragents.infrastructure.spool import DEFAULT_SPOOL_NAME
from tests.conftest import MakeService
from tests.processes import duplicates, stored_rows
from tests.support import GENEROUS_S, SQLiteWriteLock, sqlite_path, wait_until

SPOOL_FIELDS = {
    "event_id",
    "event_type",
    "actor",
    "resource",
    "details",
    "correlation_id",
    "created_at",
    "writer_id",
    "writer_seq",
    "error",
    "spooled_at",
}
#: A value that must never reach a log line: log lines carry no entry data.
SECRET = "payload-marker-5b1e9c"


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The captured structlog events called ``name``."""
    return [log for log in logs if log["event"] == name]


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def spool_lines(path: Path) -> list[dict[str, Any]]:
    """The spool's entries, parsed with the standard library (big integers stay exact)."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def caller_lines(path: Path) -> list[dict[str, Any]]:
    """The spool's caller entries, without the writer's own rows (writer.spooled, ...)."""
    return [line for line in spool_lines(path) if line["event_type"] not in SYSTEM_EVENT_TYPES]


def execute(database_url: str, *statements: str) -> None:
    """Run ``statements`` in one transaction on a connection of a separate engine."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def record_varied(service: AuditService, count: int, start: int = 0) -> list[AuditLogEntry]:
    """Record ``count`` entries using every field, with details of several JSON types."""
    return [
        service.record(
            "tool.invoked" if seq % 3 else "permission.denied",
            actor=f"agent:{seq % 4}",
            resource=None if seq % 5 == 0 else f"tool:{seq}",
            details={
                "seq": seq,
                "ratio": seq / 7,
                "big": 2**70 + seq,
                "tags": ["a", None, True, {"k": "ü✓"}],
                "note": SECRET,
            },
            correlation_id=None if seq % 2 else f"run-{seq // 10}",
        )
        for seq in range(start, start + count)
    ]


def assert_stored_exactly(reader: AuditService, entries: list[AuditLogEntry]) -> None:
    """The database holds each of ``entries`` exactly once, as recorded, and nothing else."""
    stored = []
    after_id = None
    while page := reader.query(after_id=after_id, limit=1000):
        stored.extend(page)
        after_id = page[-1].id
    event_ids = [entry.event_id for entry in stored]
    assert duplicates(event_ids) == {}
    assert len(stored) == len(entries)
    by_id = {entry.event_id: entry for entry in stored}
    for entry in entries:
        found = by_id.get(entry.event_id)
        assert found is not None, f"{entry.event_id} is missing"
        for field in ("event_type", "actor", "resource", "details", "correlation_id"):
            assert getattr(found, field) == getattr(entry, field), (field, found, entry)
        assert found.created_at == entry.created_at


def assert_spool_holds(
    spool: Path, entries: list[AuditLogEntry], error_contains: str
) -> list[dict[str, Any]]:
    """The spool is owner-only and holds exactly ``entries``, field for field.

    Besides them it may hold only the writer's own rows (a ``writer.spooled`` the
    database refused too, say); the caller's lines are returned, in spool order.
    """
    assert mode_of(spool) == 0o600
    everything = spool_lines(spool)
    assert {line["event_type"] for line in everything} - {e.event_type.value for e in entries} <= (
        SYSTEM_EVENT_TYPES
    )
    lines = caller_lines(spool)
    assert len(lines) == len(entries)
    by_id = {line["event_id"]: line for line in lines}
    assert set(by_id) == {entry.event_id for entry in entries}
    for entry in entries:
        line = by_id[entry.event_id]
        assert set(line) == SPOOL_FIELDS
        assert line["event_type"] == entry.event_type.value
        assert (line["actor"], line["resource"], line["correlation_id"]) == (
            entry.actor,
            entry.resource,
            entry.correlation_id,
        )
        assert line["details"] == entry.details
        assert line["created_at"] == entry.created_at.isoformat()
        assert isinstance(line["writer_id"], str)
        assert type(line["writer_seq"]) is int
        assert line["writer_seq"] > 0
        assert error_contains in line["error"], line["error"]
    return lines


def assert_failure_logged(logs: list[dict[str, Any]], spool: Path, count: int) -> None:
    """``audit_entries_failed`` errors name the spool and count ``count`` entries, no data."""
    failures = events(logs, "audit_entries_failed")
    assert failures, [log["event"] for log in logs]
    assert all(log["log_level"] == "error" for log in failures)
    assert all(log["spool"] == str(spool) for log in failures)
    assert all(str(spool) in log["hint"] for log in failures)
    assert sum(log["count"] for log in failures) == count
    assert SECRET not in repr(logs)


# -- 1. a lock held for seconds ------------------------------------------------------------


def test_an_exclusive_lock_held_for_three_seconds_is_retried_and_nothing_is_lost(
    make_service: MakeService, sqlite_url: str, short_busy_timeout: float
) -> None:
    """Records go in while another connection holds the file exclusively for 3 s: all persist."""
    service = make_service(database_url=sqlite_url, audit_queue_maxsize=100_000)
    holder = sqlite3.connect(
        sqlite_path(sqlite_url), timeout=5.0, isolation_level=None, check_same_thread=False
    )
    locked, released = threading.Event(), threading.Event()
    seen_while_locked: dict[str, int] = {}

    def hold_the_lock() -> None:
        try:
            holder.execute("BEGIN EXCLUSIVE")
            locked.set()
            released.wait(3.0)  # the lock is held for 3 s; the test ends it early only on failure
            stats = service.stats()
            seen_while_locked.update(written=stats.written, retried=stats.retried)
            holder.execute("ROLLBACK")
        finally:
            released.set()

    lock_thread = threading.Thread(target=hold_the_lock, name="lock-holder")
    lock_thread.start()
    try:
        assert locked.wait(GENEROUS_S)
        with capture_logs() as logs:
            entries: list[AuditLogEntry] = []
            while not released.is_set():  # ~200 records every 50 ms for as long as the lock lasts
                entries.extend(record_varied(service, 200, start=len(entries)))
                released.wait(0.05)
            entries.extend(record_varied(service, 200, start=len(entries)))
            assert service.flush(GENEROUS_S * 2) is True
    finally:
        released.set()
        lock_thread.join(GENEROUS_S)
        holder.close()
    assert seen_while_locked["written"] == 0, "the lock did not keep the writer out"
    assert seen_while_locked["retried"] > 0
    stats = service.stats()
    assert len(entries) >= 2000
    assert (stats.written, stats.failed, stats.spooled) == (len(entries), 0, 0)
    assert stats.retried > 0
    assert events(logs, "audit_entries_failed") == []
    assert all("database is locked" in log["error"] for log in events(logs, "audit_write_retry"))
    assert not service.spool_path.exists() or service.spool_path.stat().st_size == 0
    assert_stored_exactly(service, entries)
    # Nothing was written twice: the ids follow the recording order.
    assert [row[0] for row in stored_rows(sqlite_url)] == [entry.event_id for entry in entries]


# -- 2. writes that fail for good: the spool and replay -------------------------------------


def test_a_dropped_table_sends_entries_to_the_spool_and_replay_brings_them_back(
    make_service: MakeService, database_url: str, tmp_path: Path
) -> None:
    """Table dropped: entries are spooled (0600, JSONL), flush() is False; replay restores them."""
    service = make_service(database_url=database_url, audit_retry_deadline=0.3, audit_batch_size=64)
    if database_url.startswith("sqlite"):
        assert service.spool_path == Path(f"{sqlite_path(database_url)}.spool.jsonl")
    else:
        assert service.spool_path == tmp_path / DEFAULT_SPOOL_NAME  # the working directory
    record_varied(service, 50)  # these go with the dropped table
    assert service.flush(GENEROUS_S) is True
    execute(database_url, "DROP TABLE audit_log")

    with capture_logs() as logs:
        lost = record_varied(service, 300, start=50)
        assert service.flush(GENEROUS_S) is False
    stats = service.stats()
    assert (stats.enqueued, stats.written, stats.failed, stats.spooled) == (350, 50, 300, 300)
    assert stats.queue_depth == 0
    lines = assert_spool_holds(service.spool_path, lost, "audit_log")
    assert [line["event_id"] for line in lines] == [entry.event_id for entry in lost]
    assert_failure_logged(logs, service.spool_path, 300)

    # Fix the database (a new service creates the missing table), and go on recording.
    reader = make_service(database_url=database_url, audit_async=False)
    later = record_varied(service, 20, start=350)
    assert service.flush(GENEROUS_S) is True
    spooled = len(spool_lines(service.spool_path))  # the 300, and the writer's own rows
    with capture_logs() as replay_logs:
        report = service.replay()
    assert (report.path, report.read, report.inserted, report.already_present) == (
        service.spool_path,
        spooled,
        spooled,
        0,
    )
    assert report.rejected == ()
    assert events(replay_logs, "audit_spool_line_rejected") == []
    assert_stored_exactly(reader, lost + later)  # the 50 earlier ones went with the table
    assert service.spool_path.read_bytes() == b""
    assert mode_of(service.spool_path) == 0o600

    again = service.replay()
    assert (again.read, again.inserted, again.rejected) == (0, 0, ())
    assert_stored_exactly(reader, lost + later)


def test_replaying_the_same_spool_twice_duplicates_nothing(
    make_service: MakeService, database_url: str, tmp_path: Path
) -> None:
    """A spool replayed, restored from a copy and replayed again inserts nothing the 2nd time."""
    service = make_service(database_url=database_url, audit_retry_deadline=0.3)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    execute(database_url, "DROP TABLE audit_log")
    lost = record_varied(service, 120)
    assert service.flush(GENEROUS_S) is False
    copy = tmp_path / "spool-copy.jsonl"
    shutil.copyfile(service.spool_path, copy)
    assert len(caller_lines(copy)) == 120
    spooled = len(spool_lines(copy))  # the 120, and the writer's own rows
    reader = make_service(database_url=database_url, audit_async=False)  # recreates the table

    first = service.replay()
    assert (first.read, first.inserted, first.already_present) == (spooled, spooled, 0)
    second = service.replay(copy)  # the same lines again, from another path
    assert (second.path, second.read, second.inserted, second.already_present) == (
        copy,
        spooled,
        0,
        spooled,
    )
    assert copy.read_bytes() == b""
    assert_stored_exactly(reader, lost)


def test_a_replay_into_a_still_broken_database_keeps_the_spool_intact(
    make_service: MakeService, sqlite_url: str
) -> None:
    """Replay fails while the table is still missing: it raises and the spool keeps every byte."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3)
    execute(sqlite_url, "DROP TABLE audit_log")
    lost = record_varied(service, 40)
    assert service.flush(GENEROUS_S) is False
    before = service.spool_path.read_bytes()
    assert len(caller_lines(service.spool_path)) == 40
    with pytest.raises(Exception, match="audit_log"):
        service.replay()
    assert service.spool_path.read_bytes() == before
    reader = make_service(database_url=sqlite_url, audit_async=False)
    assert service.replay().inserted == len(before.splitlines())  # the 40 and the writer's rows
    assert_stored_exactly(reader, lost)


@pytest.fixture
def page_cap() -> Iterator[dict[str, bool]]:
    """While ``cap["on"]``, every SQLite connection checked out of a pool is capped at its size.

    ``PRAGMA max_page_count`` is a per-connection setting, so it is applied on each
    checkout (and lifted again once ``cap["on"]`` is False): the database is "full".
    """
    cap = {"on": False}

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        if cap["on"]:
            (pages,) = dbapi_connection.execute("PRAGMA page_count").fetchone()
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")
        else:
            dbapi_connection.execute("PRAGMA max_page_count = 1073741823")

    event.listen(Pool, "checkout", on_checkout)
    yield cap
    event.remove(Pool, "checkout", on_checkout)


def test_a_full_database_sends_entries_to_the_spool_and_replay_brings_them_back(
    make_service: MakeService, sqlite_url: str, page_cap: dict[str, bool]
) -> None:
    """max_page_count reached: entries are spooled, not retried; replay once there is room."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3, audit_batch_size=32)
    kept = record_varied(service, 30)
    assert service.flush(GENEROUS_S) is True
    page_cap["on"] = True
    padding = "x" * 6000  # bigger than a page: every entry needs a new one
    with capture_logs() as logs:
        lost = [
            service.record("llm.request", actor="agent:big", details={"seq": n, "pad": padding})
            for n in range(100)
        ]
        assert service.flush(GENEROUS_S) is False
    stats = service.stats()
    assert (stats.written, stats.failed, stats.spooled) == (30, 100, 100)
    assert stats.retried == 0  # "database or disk is full" is not worth retrying
    assert_spool_holds(service.spool_path, lost, "full")
    assert_failure_logged(logs, service.spool_path, 100)

    page_cap["on"] = False
    spooled = len(spool_lines(service.spool_path))  # the 100, and writer rows that did not fit
    report = service.replay()
    assert (report.read, report.inserted) == (spooled, spooled)
    assert service.replay().inserted == 0
    assert service.spool_path.read_bytes() == b""
    assert_stored_exactly(service, kept + lost)


def poison_trigger(database_url: str) -> list[str]:
    """DDL for a trigger that refuses rows whose actor is 'poison', on this backend."""
    if database_url.startswith("sqlite"):
        return [
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log"
            " WHEN NEW.actor = 'poison' BEGIN SELECT RAISE(ABORT, 'poison row refused'); END"
        ]
    return [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.actor = 'poison' THEN RAISE EXCEPTION 'poison row refused'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ]


def test_poison_rows_are_isolated_the_rest_commit_and_replay_completes(
    make_service: MakeService, database_url: str
) -> None:
    """3 rows a trigger refuses are spooled alone; the other 197 of their batches commit."""
    service = make_service(database_url=database_url, audit_batch_size=200, audit_queue_maxsize=500)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    execute(database_url, *poison_trigger(database_url))
    poisoned = {17, 101, 199}
    with capture_logs() as logs:
        entries = [
            service.record(
                "tool.invoked",
                actor="poison" if seq in poisoned else "agent:ok",
                details={"seq": seq},
            )
            for seq in range(200)
        ]
        assert service.flush(GENEROUS_S) is False
    stats = service.stats()
    assert (stats.written, stats.failed, stats.spooled, stats.retried) == (198, 3, 3, 0)
    bad = [entry for entry in entries if entry.actor == "poison"]
    assert_spool_holds(service.spool_path, bad, "poison row refused")
    assert_failure_logged(logs, service.spool_path, 3)
    assert service.count(actor="agent:ok") == 197

    execute(
        database_url,
        "DROP TRIGGER refuse_poison" + ("" if "sqlite" in database_url else " ON audit_log"),
    )
    report = service.replay()
    assert (report.read, report.inserted) == (3, 3)
    assert service.count() == 201
    assert duplicates([row[0] for row in stored_rows(database_url)]) == {}
    assert [e.details["seq"] for e in service.query(actor="poison")] == sorted(poisoned)


# -- 3. torn and garbage lines -------------------------------------------------------------


def test_torn_and_garbage_lines_are_reported_by_number_and_kept_never_a_crash(
    make_service: MakeService, sqlite_url: str
) -> None:
    """Garbage lines and a torn last line: the good entries replay, the rest is kept aside."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3)
    execute(sqlite_url, "DROP TABLE audit_log")
    lost = record_varied(service, 10)
    assert service.flush(GENEROUS_S) is False
    spool = service.spool_path
    good_lines = [  # the caller's lines; the writer's own rows are left out of the rewrite
        line
        for line in spool.read_bytes().splitlines(keepends=True)
        if json.loads(line)["event_type"] not in SYSTEM_EVENT_TYPES
    ]
    assert len(good_lines) == 10
    # Lines 1-4 good, 5 garbage, 6-9 good, 10 not an entry, 11 good, 12 half of the 12th entry.
    torn = good_lines[9][: len(good_lines[9]) // 2]
    spool.write_bytes(
        b"".join(good_lines[:4])
        + b"\x00\xffgarbage that is not JSON\n"
        + b"".join(good_lines[4:8])
        + b'{"event_id": 42}\n'
        + good_lines[8]
        + torn
    )
    make_service(database_url=sqlite_url, audit_async=False)  # the table again
    with capture_logs() as logs:
        report = service.replay()
    assert (report.read, report.inserted) == (9, 9)
    assert [line.line_number for line in report.rejected] == [5, 10, 12]
    assert "torn" in report.rejected[-1].reason
    assert report.rejects_path == spool.with_name(spool.name + ".rejects")
    assert mode_of(report.rejects_path) == 0o600
    kept = [json.loads(line) for line in report.rejects_path.read_bytes().splitlines()]
    assert [item["line_number"] for item in kept] == [5, 10, 12]
    assert kept[2]["text"].encode() == torn
    warned = events(logs, "audit_spool_line_rejected")
    assert [log["line_number"] for log in warned] == [5, 10, 12]
    assert all(log["kept_in"] == str(report.rejects_path) for log in warned)
    assert spool.read_bytes() == b""
    assert_stored_exactly(service, lost[:9])
    # The torn entry is not lost from sight: its event id is in the rejects file.
    assert lost[9].event_id in kept[2]["text"]
    assert service.replay().rejected == ()


def test_replay_after_close_is_refused(make_service: MakeService, sqlite_url: str) -> None:
    """replay() on a closed service raises AuditServiceClosedError."""
    service = make_service(database_url=sqlite_url)
    service.close()
    with pytest.raises(AuditServiceClosedError):
        service.replay()


# -- the files the service creates are its owner's only ------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run the test with umask 000, so only the library's own modes keep files private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_every_file_the_service_creates_is_owner_only(
    make_service: MakeService, sqlite_url: str, permissive_umask: None
) -> None:
    """The SQLite file, its WAL and shm files, the spool and the rejects file are all 0600."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    database = sqlite_path(sqlite_url)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        assert mode_of(path) == 0o600, path
    execute(sqlite_url, "DROP TABLE audit_log")
    service.record("tool.invoked")
    assert service.flush(GENEROUS_S) is False
    assert mode_of(service.spool_path) == 0o600
    spooled = len(spool_lines(service.spool_path))  # the entry, and the writer's own rows
    with service.spool_path.open("ab") as handle:
        handle.write(b"torn")
    make_service(database_url=sqlite_url, audit_async=False)
    report = service.replay()
    assert [line.line_number for line in report.rejected] == [spooled + 1]
    assert mode_of(report.rejects_path) == 0o600


def test_a_spool_path_setting_is_used(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """audit_spool_path puts the spool where the operator says."""
    where = tmp_path / "spools" / "dead.jsonl"
    where.parent.mkdir()
    service = make_service(
        database_url=sqlite_url, audit_spool_path=where, audit_retry_deadline=0.3
    )
    assert service.spool_path == where
    execute(sqlite_url, "DROP TABLE audit_log")
    lost = record_varied(service, 5)
    assert service.flush(GENEROUS_S) is False
    assert_spool_holds(where, lost, "audit_log")
    wait_until(lambda: service.stats().spooled == 5, what="the spooled counter")


# -- the command line ----------------------------------------------------------------------


def replay_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``cleveragents-audit replay ARGS --json`` (the installed console script)."""
    script = Path(sys.executable).with_name("cleveragents-audit")
    assert script.exists(), f"{script} is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}
    return subprocess.run(
        [str(script), "replay", *args, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 3,
        check=False,
    )


def test_the_replay_command_re_ingests_a_spool_once(
    make_service: MakeService, database_url: str, tmp_path: Path
) -> None:
    """`cleveragents-audit replay SPOOL` stores the spooled entries; a second run adds none."""
    service = make_service(database_url=database_url, audit_retry_deadline=0.3)
    execute(database_url, "DROP TABLE audit_log")
    lost = record_varied(service, 60)
    assert service.flush(GENEROUS_S) is False
    spool = service.spool_path
    service.close()
    assert len(caller_lines(spool)) == 60
    spooled = len(spool_lines(spool))  # the 60, and the writer's own rows (writer.closed, ...)

    first = replay_command(str(spool), "--database-url", database_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["read"], report["inserted"], report["rejected"]) == (spooled, spooled, [])
    again = replay_command(str(spool), "--database-url", database_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["read"], json.loads(again.stdout)["inserted"]) == (0, 0)
    reader = make_service(database_url=database_url, audit_async=False)
    assert_stored_exactly(reader, lost)


def test_the_replay_command_reports_a_torn_line_and_exits_1(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """A torn last line: the command replays the rest, names the line, keeps it, exits 1."""
    service = make_service(database_url=sqlite_url, audit_retry_deadline=0.3)
    execute(sqlite_url, "DROP TABLE audit_log")
    lost = record_varied(service, 5)
    assert service.flush(GENEROUS_S) is False
    spool = service.spool_path
    service.close()
    assert len(caller_lines(spool)) == 5
    spooled = len(spool_lines(spool))  # the 5, and the writer's own rows (writer.closed, ...)
    with spool.open("ab") as handle:
        handle.write(b'{"event_id": "01a2')
    # No SPOOL argument: the spool beside the SQLite file is the default.
    done = replay_command("--database-url", sqlite_url, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["read"], report["inserted"]) == (spooled, spooled)
    assert [line["line_number"] for line in report["rejected"]] == [spooled + 1]
    assert report["rejects_file"] == f"{spool}.rejects"
    kept = [json.loads(line) for line in Path(f"{spool}.rejects").read_bytes().splitlines()]
    assert [(item["line_number"], item["text"]) for item in kept] == [
        (spooled + 1, '{"event_id": "01a2')
    ]
    reader = make_service(database_url=sqlite_url, audit_async=False)
    assert_stored_exactly(reader, lost)


# -- a process that ends while its writer is stuck ------------------------------------------

RECORD_AND_END = (
    "import sys\n"
    "from cleveragents import AuditService\n"
    "service = AuditService()\n"
    "for seq in range(int(sys.argv[1])):\n"
    "    service.record('tool.invoked', actor='child', details={'seq': seq})\n"
)


def test_entries_a_stuck_writer_holds_at_exit_are_spooled(sqlite_url: str, tmp_path: Path) -> None:
    """A process ends while the database is locked: what its writer could not commit is spooled."""
    n = 300
    make = AuditService(Settings(database_url=sqlite_url, audit_async=False))
    spool = make.spool_path
    make.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}
    env.update(CLEVERAGENTS_DATABASE_URL=sqlite_url, CLEVERAGENTS_AUDIT_CLOSE_TIMEOUT_S="1")
    with SQLiteWriteLock(sqlite_path(sqlite_url)):  # the child's writer waits in vain
        child = subprocess.run(
            [sys.executable, "-c", RECORD_AND_END, str(n)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=GENEROUS_S * 3,
            check=False,
        )
    assert child.returncode == 0, child.stderr
    assert "audit_exit_incomplete" in child.stdout + child.stderr
    lines = caller_lines(spool)
    assert sorted(line["details"]["seq"] for line in lines) == list(range(n))
    # The writer's own writer.opened, stuck in the same batch, is spooled with them, and
    # so is its closing account.
    kinds = [line["event_type"] for line in spool_lines(spool)]
    assert (kinds.count("writer.opened"), kinds.count("writer.closed")) == (1, 1)
    with AuditService(Settings(database_url=sqlite_url, audit_async=False)) as reader:
        report = reader.replay()
        assert report.inserted == n + 2
        assert [e.details["seq"] for e in reader.query(limit=1000)] == list(range(n))
        # Replayed, the child's trail is whole: opened, every entry, closed.
        verified = reader.verify()
        assert verified.intact, verified.to_dict()


def test_a_row_the_database_refuses_for_ever_does_not_block_the_replay(
    make_service: MakeService, database_url: str
) -> None:
    """A spooled row the database still refuses is kept aside, and the spool is emptied."""
    service = make_service(database_url=database_url, audit_batch_size=50)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    execute(database_url, *poison_trigger(database_url))
    poison = service.record("tool.invoked", actor="poison", details={"seq": 7})
    service.record("tool.invoked", actor="agent:ok", details={"seq": 8})
    assert service.flush(GENEROUS_S) is False
    assert service.stats().spooled == 1
    report = service.replay()  # the trigger is still there: the row is refused again
    assert (report.read, report.inserted) == (1, 0)
    [line] = report.rejected
    assert line.reason.startswith("refused by the database")
    assert poison.event_id in line.text
    assert service.spool_path.read_bytes() == b""
    assert poison.event_id in report.rejects_path.read_text()
    assert service.replay().read == 0
