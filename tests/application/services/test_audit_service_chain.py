"""The hash chain with real writers: threads, processes, a SIGKILL, overflow, spool, purge, keys.

Every trail here is written by real services into a real SQLite file or PostgreSQL
schema, and checked two ways: by ``verify`` (the library's verdict) and by plain
SQL on the stored columns (``seq`` gapless from 1, one ``writer.opened`` and one
``writer.closed`` per writer), so that a verifier that says "intact" too easily
cannot pass on its own.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cleveragents import AuditQueueFullError, AuditService, Settings
from cleveragents.application import trail
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.verification import Checkpoint, FindingKind, VerifyStatus
from cleveragents.infrastructure.persistence.database import open_database
from tests.conftest import MakeService, libpq_conninfo
from tests.processes import child_env, finish, start_child, wait_for_line
from tests.support import GENEROUS_S, SQLiteWriteLock, sqlite_path, wait_until
from tests.trail_support import execute, fetch, verify_url

#: Finding kinds that mean someone changed the stored trail.
TAMPERING = {
    FindingKind.ALTERED.value,
    FindingKind.DELETED.value,
    FindingKind.INSERTED.value,
    FindingKind.REORDERED.value,
    FindingKind.TRUNCATED.value,
}


# -- helpers ---------------------------------------------------------------------------------


def assert_gapless(url: str) -> int:
    """``seq`` is 1..N with no gap and no repeat, the head row agrees, each writer_seq 1..n."""
    count, low, high, distinct = fetch(
        url, "SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM audit_log"
    )[0]
    assert (low, high, distinct) == (1, count, count), (count, low, high, distinct)
    assert fetch(url, "SELECT head_seq FROM audit_chain WHERE id = 1") == [(count,)]
    for writer_id, n, first, last in fetch(
        url,
        "SELECT writer_id, count(*), min(writer_seq), max(writer_seq) FROM audit_log"
        " WHERE writer_id IS NOT NULL GROUP BY writer_id",
    ):
        assert (first, last) == (1, n), f"writer {writer_id}: writer_seq {first}..{last} of {n}"
    return int(count)


def lifecycle(url: str) -> dict[str, Counter[str]]:
    """Per writer_id, how many writer.opened and writer.closed entries it has."""
    found: dict[str, Counter[str]] = {}
    for writer_id, event_type, n in fetch(
        url,
        "SELECT writer_id, event_type, count(*) FROM audit_log"
        " WHERE event_type IN ('writer.opened', 'writer.closed') GROUP BY writer_id, event_type",
    ):
        found.setdefault(writer_id, Counter())[event_type] = n
    return found


def one_pair_each(writer_ids: set[str]) -> dict[str, Counter[str]]:
    """The :func:`lifecycle` of writers that each opened and closed exactly once."""
    return {w: Counter({"writer.opened": 1, "writer.closed": 1}) for w in writer_ids}


def system_details(service: AuditService, kind: SystemEventType) -> list[dict[str, Any]]:
    """The details of the committed system entries of ``kind``, oldest first."""
    return [entry.details for entry in service.query(event_type=kind, limit=1000)]


def poison_trigger(url: str) -> list[str]:
    """DDL for a trigger that refuses rows whose actor is 'poison', on this backend."""
    if url.startswith("sqlite"):
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


def drop_poison_trigger(url: str) -> str:
    """DDL that removes :func:`poison_trigger`'s trigger."""
    return "DROP TRIGGER refuse_poison" + ("" if url.startswith("sqlite") else " ON audit_log")


class ChainLock:
    """Holds the chain's write lock from another connection, as a stalled writer would.

    SQLite: the file's write lock (``BEGIN IMMEDIATE``). PostgreSQL: the head row
    ``FOR UPDATE``. Every writer waits for it before it can append anything.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._sqlite: SQLiteWriteLock | None = None
        self._postgres: Any = None

    def acquire(self) -> None:
        """Take the lock."""
        if self._url.startswith("sqlite"):
            self._sqlite = SQLiteWriteLock(sqlite_path(self._url))
            self._sqlite.acquire()
            return
        import psycopg

        self._postgres = psycopg.connect(libpq_conninfo(self._url))
        self._postgres.execute("SELECT head_seq FROM audit_chain WHERE id = 1 FOR UPDATE")

    def close(self) -> None:
        """Give the lock back and close the connection; idempotent."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._postgres is not None:
            self._postgres.rollback()
            self._postgres.close()
            self._postgres = None


@pytest.fixture
def chain_lock(database_url: str) -> Iterator[ChainLock]:
    """A :class:`ChainLock` on ``database_url``, released when the test ends."""
    holder = ChainLock(database_url)
    yield holder
    holder.close()


# -- several writers at once -------------------------------------------------------------------


def test_threads_with_services_of_their_own_leave_one_gapless_intact_chain(
    make_service: MakeService, database_url: str
) -> None:
    """4 asynchronous and 2 synchronous services on 6 threads at once: gapless seq, intact."""
    per_async, per_sync = 1500, 150
    services = [make_service(database_url=database_url) for _ in range(4)]
    services += [make_service(database_url=database_url, audit_async=False) for _ in range(2)]
    start = threading.Barrier(len(services), timeout=GENEROUS_S)
    errors: list[BaseException] = []

    def write(number: int, service: AuditService) -> None:
        try:
            start.wait()
            for seq in range(per_async if service.is_async else per_sync):
                service.record("tool.invoked", actor=f"thread-{number}", details={"seq": seq})
            service.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(n, s), name=f"writer-{n}")
        for n, s in enumerate(services)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S * 3)
    assert not [t.name for t in threads if t.is_alive()], "a writing thread hung"
    assert errors == []

    callers = 4 * per_async + 2 * per_sync
    assert assert_gapless(database_url) == callers + 2 * len(services)
    assert lifecycle(database_url) == one_pair_each({s.writer_id for s in services})
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert (report.entries, report.first_seq, report.last_seq, report.writers) == (
        callers + 12,
        1,
        callers + 12,
        6,
    )
    # Each writer's own entries are in its order in the chain.
    for number in range(6):
        stored = fetch(
            database_url,
            "SELECT details FROM audit_log WHERE actor = :actor ORDER BY seq",
            actor=f"thread-{number}",
        )
        expected = per_async if number < 4 else per_sync
        assert [json.loads(d)["seq"] for (d,) in stored] == list(range(expected))


PROCESSES = 4
PER_PROCESS = 2000

# argv: number, entries. Opens its service, says READY with its writer_id, waits for GO.
PROCESS_WRITER = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService

    number, n = int(sys.argv[1]), int(sys.argv[2])
    service = AuditService()
    print(f"READY {service.writer_id}", flush=True)
    assert sys.stdin.readline().strip() == "GO"
    for seq in range(n):
        service.record("tool.invoked", actor=f"proc-{number}", details={"seq": seq})
    service.close()
    stats = service.stats()
    print(f"DONE {stats.written} {stats.failed}", flush=True)
    """
)


def test_four_processes_into_one_database_leave_one_gapless_intact_chain(
    database_url: str, tmp_path: Path
) -> None:
    """4 processes released at once into one database: gapless seq, a pair per writer, intact."""
    AuditService(Settings(database_url=database_url, audit_async=False)).close()
    children = [
        start_child(
            PROCESS_WRITER,
            [str(k), str(PER_PROCESS)],
            env=child_env(database_url),
            cwd=tmp_path,
            stdin=subprocess.PIPE,
        )
        for k in range(PROCESSES)
    ]
    writer_ids: set[str] = set()
    outputs: list[str] = []
    try:
        for child in children:
            writer_ids.add(wait_for_line(child, "READY").split()[1])
        for child in children:
            assert child.stdin is not None
            child.stdin.write("GO\n")
            child.stdin.flush()
    finally:
        for child in children:
            stdout, stderr = finish(child)
            assert child.returncode == 0, stderr
            assert "Traceback" not in stderr, stderr
            outputs.append(stdout)
    assert all(f"DONE {PER_PROCESS} 0" in out for out in outputs), outputs
    assert len(writer_ids) == PROCESSES

    total = PROCESSES * (PER_PROCESS + 2) + 2  # + the creating writer's pair
    assert assert_gapless(database_url) == total
    pairs = lifecycle(database_url)
    assert writer_ids < pairs.keys()
    assert pairs == one_pair_each(set(pairs))
    assert len(pairs) == PROCESSES + 1
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert (report.entries, report.writers) == (total, PROCESSES + 1)


# -- a writer killed with entries queued -----------------------------------------------------

# Records 10 entries and flushes them, says OPENED; on GO records N more (held up by the
# test's lock, so they stay queued), says QUEUED with the queue depth, and waits to be killed.
KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService

    n = int(sys.argv[1])
    service = AuditService()
    for seq in range(10):
        service.record("tool.invoked", actor="victim", details={"seq": seq})
    assert service.flush(60)
    print(f"OPENED {service.writer_id}", flush=True)
    assert sys.stdin.readline().strip() == "GO"
    for seq in range(10, 10 + n):
        service.record("tool.invoked", actor="victim", details={"seq": seq})
    print(f"QUEUED {service.stats().queue_depth}", flush=True)
    sys.stdin.readline()
    """
)


def test_a_writer_killed_with_entries_queued_is_unterminated_not_tampering(
    database_url: str, tmp_path: Path, chain_lock: ChainLock
) -> None:
    """SIGKILL with 2000 entries queued: loss suspected (exit 2) at the writer's last entry."""
    AuditService(Settings(database_url=database_url, audit_async=False)).close()
    child = start_child(
        KILLED_WRITER,
        ["2000"],
        env=child_env(database_url, CLEVERAGENTS_AUDIT_SPOOL_PATH=str(tmp_path / "spool.jsonl")),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
    )
    try:
        victim = wait_for_line(child, "OPENED").split()[1]
        chain_lock.acquire()  # the child's writer cannot append from here on
        assert child.stdin is not None
        child.stdin.write("GO\n")
        child.stdin.flush()
        depth = int(wait_for_line(child, "QUEUED").split()[1])
        assert depth > 0, "nothing was queued when the child was killed: nothing was tested"
        child.send_signal(signal.SIGKILL)
        child.wait(GENEROUS_S)
    finally:
        if child.poll() is None:
            child.kill()
        finish(child)
    chain_lock.close()
    assert child.returncode == -signal.SIGKILL

    # Stored: the creator's pair, the victim's writer.opened and its 10 flushed entries.
    assert assert_gapless(database_url) == 2 + 1 + 10
    assert fetch(database_url, "SELECT count(*) FROM audit_log WHERE actor = 'victim'") == [(10,)]
    last_seq = fetch(database_url, "SELECT max(seq) FROM audit_log WHERE writer_id = :w", w=victim)
    report = verify_url(database_url)
    assert report.status is VerifyStatus.LOSS_SUSPECTED
    assert report.exit_code == 2
    assert dict(report.counts) == {FindingKind.UNTERMINATED_WRITER.value: 1}
    assert not TAMPERING & report.counts.keys()
    (finding,) = report.findings
    assert (finding.kind, finding.writer_id, finding.seq) == (
        FindingKind.UNTERMINATED_WRITER,
        victim,
        last_seq[0][0],
    )
    assert not (tmp_path / "spool.jsonl").exists(), "a killed process cannot have spooled"


# -- declared drops: overflow refusals and spooled rows ----------------------------------------


def test_overflow_refusals_are_declared_by_writer_dropped(
    make_service: MakeService, sqlite_url: str, sqlite_lock: SQLiteWriteLock
) -> None:
    """7 records refused on overflow: one writer.dropped of 7; verify gives declared drops (3)."""
    service = make_service(database_url=sqlite_url, audit_overflow="raise", audit_queue_maxsize=5)
    assert service.flush(GENEROUS_S)
    sqlite_lock.acquire()
    service.record("tool.invoked", actor="taken")  # the writer takes it and waits for the lock
    wait_until(lambda: service.stats().queue_depth == 0, what="the writer to take the entry")
    for seq in range(5):
        service.record("tool.invoked", actor="queued", details={"seq": seq})
    refused = 0
    for seq in range(7):
        with pytest.raises(AuditQueueFullError):
            service.record("tool.invoked", actor="refused", details={"seq": seq})
        refused += 1
    sqlite_lock.release()
    assert service.flush(GENEROUS_S)  # returns once the writer's declaration is committed too
    assert service.stats().rejected == refused

    assert system_details(service, SystemEventType.WRITER_DROPPED) == [
        {"count": 7, "total": 7, "reason": "queue full (overflow policy)"}
    ]
    report = service.verify()
    assert report.status is VerifyStatus.DECLARED_DROPS, report.findings
    assert dict(report.counts) == {FindingKind.DROPPED.value: 1}
    (finding,) = report.findings
    assert finding.writer_id == service.writer_id
    assert "7 entries" in finding.message

    service.close()
    report = verify_url(sqlite_url)
    assert (report.status, report.exit_code) == (VerifyStatus.DECLARED_DROPS, 3)
    assert dict(report.counts) == {FindingKind.DROPPED.value: 1}
    assert fetch(sqlite_url, "SELECT count(*) FROM audit_log WHERE actor = 'refused'") == [(0,)]
    (closed,) = fetch(
        sqlite_url, "SELECT details FROM audit_log WHERE event_type = 'writer.closed'"
    )
    assert json.loads(closed[0])["dropped"] == 7
    assert assert_gapless(sqlite_url) == 1 + 6 + 1 + 1  # opened, 6 entries, dropped, closed


def test_rows_given_up_to_the_spool_are_declared_then_replayed_intact(
    make_service: MakeService, database_url: str
) -> None:
    """Rows a trigger refuses: writer.spooled, verify says spooled (3); after replay, intact."""
    service = make_service(database_url=database_url, audit_batch_size=100)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    execute(database_url, *poison_trigger(database_url))
    poisoned = {7, 33, 34, 80}
    for seq in range(100):
        service.record(
            "tool.invoked", actor="poison" if seq in poisoned else "agent", details={"seq": seq}
        )
    # Some rows could not be written; flush() returns once their declaration is committed.
    assert service.flush(GENEROUS_S) is False

    # One declaration per batch that lost rows; how the writer batched is its own affair.
    declared = system_details(service, SystemEventType.WRITER_SPOOLED)
    assert sum(d["count"] for d in declared) == len(poisoned)
    numbers = [
        n for d in declared for first, last in d["writer_seqs"] for n in range(first, last + 1)
    ]
    # writer_seq: 1 writer.opened, 2 session.started, then entry k has 3 + k.
    assert sorted(numbers) == sorted(3 + k for k in poisoned)
    report = service.verify()
    assert report.status is VerifyStatus.DECLARED_DROPS, report.findings
    assert dict(report.counts) == {FindingKind.SPOOLED.value: 1}
    assert report.findings[0].writer_id == service.writer_id

    execute(database_url, drop_poison_trigger(database_url))
    replayed = service.replay()
    assert (replayed.read, replayed.inserted) == (4, 4)
    report = service.verify()
    assert report.status is VerifyStatus.INTACT, report.findings
    service.close()
    assert verify_url(database_url).status is VerifyStatus.INTACT
    # writer.opened, session.started, 100 entries, the declarations, the replay's own
    # spool.replayed, writer.closed.
    assert assert_gapless(database_url) == 1 + 1 + 100 + len(declared) + 1 + 1
    assert service.stats().spooled == len(poisoned)


# -- retention ---------------------------------------------------------------------------------


def test_purge_removes_a_prefix_and_the_trail_still_verifies(
    make_service: MakeService, database_url: str
) -> None:
    """Purge what is older than a moment (a writer spans it), then everything: intact each time."""
    closed_early = make_service(database_url=database_url)
    spanning = make_service(database_url=database_url)
    for seq in range(20):
        closed_early.record("tool.invoked", actor="early", details={"seq": seq})
    for seq in range(5):
        spanning.record("tool.invoked", actor="spanning-before", details={"seq": seq})
    assert spanning.flush(GENEROUS_S)
    closed_early.close()
    ((before_cut,),) = fetch(database_url, "SELECT count(*) FROM audit_log")
    cut = datetime.now(UTC)
    wait_until(lambda: datetime.now(UTC) > cut, what="the clock to pass the cut")
    for seq in range(5):
        spanning.record("tool.invoked", actor="spanning-after", details={"seq": seq})
    spanning.close()

    ((through_hash,),) = fetch(
        database_url, "SELECT entry_hash FROM audit_log WHERE seq = :s", s=before_cut
    )
    database = open_database(database_url, create=False)
    try:
        done = trail.purge(database, cut)
        assert (done.through_seq, done.through_hash, done.deleted) == (
            before_cut,
            through_hash,
            before_cut,
        )
        again = trail.purge(database, cut)  # nothing is older any more
        assert (again.through_seq, again.deleted) == (None, 0)
    finally:
        database.dispose()

    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert report.first_seq == before_cut + 1
    low, high, count = fetch(database_url, "SELECT min(seq), max(seq), count(*) FROM audit_log")[0]
    assert (low, count) == (before_cut + 1, high - before_cut)
    assert fetch(database_url, "SELECT DISTINCT actor FROM audit_log WHERE actor LIKE 's%'") == [
        ("spanning-after",)
    ]
    with AuditService(Settings(database_url=database_url, audit_async=False)) as reader:
        (declaration,) = system_details(reader, SystemEventType.RETENTION_PURGED)
        assert (declaration["through_seq"], declaration["count"]) == (before_cut, before_cut)
        assert reader.count(actor="spanning-after") == 5

    # Purge everything, the first declaration included: still intact.
    ((head,),) = fetch(database_url, "SELECT max(seq) FROM audit_log")
    database = open_database(database_url, create=False)
    try:
        assert trail.purge(database, datetime.now(UTC)).through_seq == head
    finally:
        database.dispose()
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert fetch(database_url, "SELECT event_type FROM audit_log") == [("retention.purged",)]


# -- keyed mode --------------------------------------------------------------------------------


def test_keyed_trail_verifies_with_its_key_only(
    make_service: MakeService, database_url: str
) -> None:
    """HMAC mode: intact with the key; 4 without it; every entry altered under a wrong key."""
    key = "k3y-only-the-auditor-has"
    service = make_service(database_url=database_url, audit_hmac_key=key)
    for seq in range(10):
        service.record("tool.invoked", actor="agent", details={"seq": seq})
    assert service.flush(GENEROUS_S)
    assert service.verify().status is VerifyStatus.INTACT  # its own settings hold the key
    service.close()
    stored = fetch(database_url, "SELECT count(*), count(hmac) FROM audit_log")
    assert stored == [(12, 12)]

    report = verify_url(database_url, key=key.encode())
    assert (report.status, report.hmac_checked) == (VerifyStatus.INTACT, True)
    report = verify_url(database_url)
    assert (report.status, report.exit_code) == (VerifyStatus.UNVERIFIABLE, 4)
    assert report.error is not None
    assert "HMAC" in report.error
    report = verify_url(database_url, key=b"a guess")
    assert report.status is VerifyStatus.TAMPERED
    assert dict(report.counts) == {FindingKind.ALTERED.value: 12}


# -- fork --------------------------------------------------------------------------------------

# Records 5 entries, forks; the child records 5 of its own and closes; the parent waits and
# closes. Both say their writer_id.
FORKING = textwrap.dedent(
    """
    import os, sys
    from cleveragents import AuditService, Settings

    service = AuditService(Settings(audit_async=sys.argv[1] == "async"))
    for seq in range(5):
        service.record("tool.invoked", actor="parent", details={"seq": seq})
    pid = os.fork()
    if pid == 0:
        for seq in range(5):
            service.record("tool.invoked", actor="child", details={"seq": seq})
        service.close()
        print(f"CHILD {service.writer_id}", flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    service.close()
    print(f"PARENT {service.writer_id} {os.waitstatus_to_exitcode(status)}", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_a_forked_child_is_a_writer_of_its_own(
    database_url: str, tmp_path: Path, mode: str
) -> None:
    """After os.fork() the child writes under its own writer_id, opened and closed; intact."""
    process = start_child(FORKING, [mode], env=child_env(database_url), cwd=tmp_path)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()}
    child_id, (parent_id, child_status) = lines["CHILD"][0], lines["PARENT"]
    assert child_status == "0"
    assert child_id != parent_id

    by_actor = dict(
        fetch(
            database_url,
            "SELECT actor, min(writer_id) FROM audit_log WHERE actor IN ('parent', 'child')"
            " GROUP BY actor HAVING count(DISTINCT writer_id) = 1",
        )
    )
    assert by_actor == {"parent": parent_id, "child": child_id}
    assert lifecycle(database_url) == one_pair_each({parent_id, child_id})
    (opened,) = fetch(
        database_url,
        "SELECT details FROM audit_log WHERE event_type = 'writer.opened' AND writer_id = :w",
        w=child_id,
    )
    assert json.loads(opened[0])["parent_writer_id"] == parent_id
    assert assert_gapless(database_url) == 2 * (5 + 2)
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert report.writers == 2


# -- system entries in reads -------------------------------------------------------------------


def test_system_entries_are_left_out_of_reads_unless_asked(
    make_service: MakeService, database_url: str
) -> None:
    """count(), query() and get() leave writer.* out by default; include_system=True shows them."""
    first = make_service(database_url=database_url)
    entries = [first.record("tool.invoked", actor="agent", details={"n": n}) for n in range(3)]
    first.close()
    service = make_service(database_url=database_url, audit_async=False)

    assert service.count() == 3
    assert [e.event_id for e in service.query()] == [e.event_id for e in entries]
    # first's opened and closed, and this service's opened.
    assert service.count(include_system=True) == 6
    everything = service.query(include_system=True)
    assert [e.event_type.value for e in everything] == [
        "writer.opened",
        "tool.invoked",
        "tool.invoked",
        "tool.invoked",
        "writer.closed",
        "writer.opened",
    ]
    assert {e.actor for e in everything if e.event_type.value.startswith("writer.")} == {
        "cleveragents-audit"
    }
    opened = everything[0]
    assert opened.details["pid"] > 0
    assert service.get(opened.event_id) is None
    got = service.get(opened.event_id, include_system=True)
    assert got is not None
    assert got.event_id == opened.event_id
    assert service.get(entries[1].event_id) is not None
    # Naming a system event type asks for it.
    assert service.count(event_type="writer.opened") == 2
    assert [e.event_type for e in service.query(event_type=SystemEventType.WRITER_CLOSED)] == [
        SystemEventType.WRITER_CLOSED
    ]
    assert (first.stats().written, service.stats().written) == (3, 0)  # callers' entries only


# -- automatic checkpoints ---------------------------------------------------------------------


def test_automatic_checkpoints_are_accepted_by_verify_and_catch_a_truncation(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """Checkpoints every 10 entries land in a 0600 JSON Lines file; verify uses them."""
    path = tmp_path / "checkpoints.jsonl"
    service = make_service(
        database_url=sqlite_url,
        audit_checkpoint_path=path,
        audit_checkpoint_every=10,
        audit_batch_size=10,
    )
    for seq in range(45):
        service.record("tool.invoked", actor="agent", details={"seq": seq})
        if seq % 10 == 9:
            assert service.flush(GENEROUS_S)
    service.close()
    total = assert_gapless(sqlite_url)
    assert total == 47

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    points = [Checkpoint.from_json(json.loads(line)) for line in lines]
    assert len(points) >= 3, lines  # 47 entries, one per 10 to 19 of them, one at close
    seqs = [point.seq for point in points]
    assert seqs == sorted(seqs)
    assert seqs[-1] == total  # the one written at close, after writer.closed
    for point in points:
        assert point.count == point.seq
        assert fetch(
            sqlite_url, "SELECT entry_hash FROM audit_log WHERE seq = :s", s=point.seq
        ) == [(point.entry_hash,)]
    loaded = trail.load_checkpoints(path)
    report = verify_url(sqlite_url, checkpoints=loaded)
    assert report.status is VerifyStatus.INTACT, report.findings
    assert report.checkpoints == len(set(seqs))

    # Someone removes the last three entries and sets the head row back to match.
    (keep_hash,) = fetch(sqlite_url, "SELECT entry_hash FROM audit_log WHERE seq = :s", s=total - 3)
    execute(
        sqlite_url,
        "DELETE FROM audit_log WHERE seq > :s",
        "UPDATE audit_chain SET head_seq = :s, head_hash = :h WHERE id = 1",
        s=total - 3,
        h=keep_hash[0],
    )
    without = verify_url(sqlite_url)
    assert without.status is VerifyStatus.LOSS_SUSPECTED  # only the missing writer.closed shows
    report = verify_url(sqlite_url, checkpoints=loaded)
    assert report.status is VerifyStatus.TAMPERED
    truncated = [f for f in report.findings if f.kind is FindingKind.TRUNCATED]
    assert [f.seq for f in truncated][-1] == total


# -- the head row's hash, and PostgreSQL's JSONB copy ------------------------------------------


def test_the_last_entry_rewritten_with_its_hash_recomputed_is_caught_by_the_head(
    database_url: str,
) -> None:
    """A forged last entry whose entry_hash is recomputed still differs from the head row."""
    from cleveragents.domain.chain import canonical_header, entry_hash

    with AuditService(Settings(database_url=database_url)) as service:
        service.record("tool.invoked", actor="agent:a", details={"n": 1})
    (row,) = fetch(
        database_url,
        "SELECT seq, event_id, event_type, resource, details, correlation_id, created_at,"
        " writer_id, writer_seq, prev_hash FROM audit_log ORDER BY id DESC LIMIT 1",
    )
    seq, event_id, event_type, resource, details, correlation_id, created_at = row[:7]
    writer_id, writer_seq, prev_hash = row[7:]
    if isinstance(created_at, str):  # SQLite keeps naive UTC text
        created_at = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
    forged = entry_hash(
        prev_hash,
        canonical_header(
            seq,
            event_id,
            event_type,
            "someone else",
            resource,
            details,
            correlation_id,
            created_at,
            writer_id,
            writer_seq,
        ),
    )
    execute(
        database_url,
        "UPDATE audit_log SET actor = 'someone else', entry_hash = :forged WHERE seq = :seq",
        forged=forged,
        seq=seq,
    )
    report = verify_url(database_url)
    assert report.status is VerifyStatus.TAMPERED
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.ALTERED, seq)]


@pytest.mark.postgres
def test_an_edited_jsonb_copy_of_details_is_reported(postgres_url: str) -> None:
    """details_json is not the hashed source, but a copy that disagrees with it is altered."""
    with AuditService(Settings(database_url=postgres_url)) as service:
        for n in range(5):
            service.record("tool.invoked", details={"n": n, "cost": 412.7, "big": 10**16})
    assert verify_url(postgres_url).intact
    execute(postgres_url, "UPDATE audit_log SET details_json = '{\"n\": 99}' WHERE seq = 3")
    report = verify_url(postgres_url)
    assert report.status is VerifyStatus.TAMPERED
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.ALTERED, 3)]
