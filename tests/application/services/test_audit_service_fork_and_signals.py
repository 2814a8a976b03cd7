"""SIGTERM and SIGINT after install_signal_handlers(), and os.fork(), in child processes.

Each scenario runs in a fresh ``python -c`` process, so the pytest process never
forks and never gets a handler installed. What the child stored is read back from
the database with a plain engine; what the child says it recorded comes from its
stdout.
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

from cleveragents import AuditService, Settings
from tests.processes import (
    child_env,
    duplicates,
    finish,
    start_child,
    stored_rows,
    wait_for_line,
)
from tests.support import SQLiteWriteLock, sqlite_path

# Records N entries at once (the queue holds them all), says so, and waits for a signal.
RECORD_THEN_WAIT = textwrap.dedent(
    """
    import signal, sys
    from cleveragents import AuditService, install_signal_handlers

    install_signal_handlers()
    n = int(sys.argv[1])
    service = AuditService()
    for seq in range(n):
        service.record("tool.invoked", actor="child", details={"seq": seq})
    print(f"READY {n} {service.stats().queue_depth}", flush=True)
    while True:
        signal.pause()
    """
)

# Records without pause, printing how many record() calls have returned every 250.
RECORD_UNTIL_KILLED = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService, install_signal_handlers

    install_signal_handlers()
    service = AuditService()
    for seq in range(2_000_000):
        service.record("tool.invoked", actor="child", details={"seq": seq})
        if (seq + 1) % 250 == 0:
            print(f"RECORDED {seq + 1}", flush=True)
    """
)


def stored_seqs(database_url: str, actor: str) -> list[int]:
    """The ``seq`` of ``actor``'s stored entries, by ascending id."""
    return [
        json.loads(details)["seq"] for _, who, details in stored_rows(database_url) if who == actor
    ]


def assert_trail_intact(database_url: str) -> None:
    """The chain verifies clean: every writer, forked ones too, opened and closed, no gap."""
    with AuditService(Settings(database_url=database_url, audit_async=False)) as reader:
        report = reader.verify()
    assert report.findings == (), report.findings
    assert report.exit_code == 0


def test_sigterm_with_20000_entries_queued_loses_none_and_exits_143(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGTERM reaches a child with 20,000 entries queued: it drains them all, exit status 143."""
    n = 20_000
    AuditService(Settings(database_url=sqlite_url, audit_async=False)).close()
    lock = SQLiteWriteLock(sqlite_path(sqlite_url))
    lock.acquire()  # the child's writer cannot commit: everything it records stays queued
    child = start_child(
        RECORD_THEN_WAIT,
        [str(n)],
        env=child_env(sqlite_url, CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE="50000"),
        cwd=tmp_path,
    )
    try:
        ready = wait_for_line(child, "READY").split()
        assert int(ready[1]) == n
        assert int(ready[2]) >= n - Settings().audit_batch_size, "entries were not queued"
        child.send_signal(signal.SIGTERM)
    finally:
        lock.close()
        _, stderr = finish(child)
    assert child.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert stored_seqs(sqlite_url, "child") == list(range(n))
    assert_trail_intact(sqlite_url)


def test_sigterm_while_recording_keeps_every_entry_reported_recorded(
    database_url: str, tmp_path: Path
) -> None:
    """SIGTERM in the middle of a stream of record() calls: every reported entry is stored."""
    child = start_child(RECORD_UNTIL_KILLED, [], env=child_env(database_url), cwd=tmp_path)
    try:
        wait_for_line(child, "RECORDED 10000")
        child.send_signal(signal.SIGTERM)
    finally:
        stdout, stderr = finish(child)
    reported = max(
        [10_000]
        + [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("RECORDED")]
    )
    assert child.returncode == 143, stderr
    assert "Traceback" not in stderr
    seqs = stored_seqs(database_url, "child")
    # Nothing reported is missing, nothing is stored twice, and nothing is out of order.
    assert len(seqs) >= reported
    assert seqs == list(range(len(seqs)))
    assert len(seqs) < 2_000_000, "the child was never interrupted"
    assert_trail_intact(database_url)


def test_sigint_drains_the_queue_and_ends_as_a_keyboard_interrupt(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SIGINT raises KeyboardInterrupt in the child; the exit hook still drains everything."""
    n = 5000
    AuditService(Settings(database_url=sqlite_url, audit_async=False)).close()
    lock = SQLiteWriteLock(sqlite_path(sqlite_url))
    lock.acquire()
    child = start_child(RECORD_THEN_WAIT, [str(n)], env=child_env(sqlite_url), cwd=tmp_path)
    try:
        wait_for_line(child, "READY")
        child.send_signal(signal.SIGINT)
    finally:
        lock.close()
        _, stderr = finish(child)
    assert child.returncode == -signal.SIGINT, stderr  # Python re-raises SIGINT on the way out
    assert "KeyboardInterrupt" in stderr
    assert stored_seqs(sqlite_url, "child") == list(range(n))
    assert_trail_intact(sqlite_url)


# Records N entries, forks while many are still queued. The child records N, flushes and
# reports its counters, records N more and ends without close() (the exit hook drains them).
# The parent records N more, waits for the child, closes and reports its own counters.
FORK = textwrap.dedent(
    """
    import os, sys
    from cleveragents import AuditService

    n = int(sys.argv[1])
    service = AuditService()
    for seq in range(n):
        service.record("tool.invoked", actor="parent-before", details={"seq": seq})
    depth = service.stats().queue_depth
    pid = os.fork()
    if pid == 0:
        for seq in range(n):
            service.record("tool.invoked", actor="child", details={"seq": seq})
        flushed = service.flush(60)
        stats = service.stats()
        print(f"CHILD {int(flushed)} {stats.enqueued} {stats.written} {stats.failed}", flush=True)
        for seq in range(n):
            service.record("tool.invoked", actor="child-late", details={"seq": seq})
        sys.exit(0)
    for seq in range(n):
        service.record("tool.invoked", actor="parent-after", details={"seq": seq})
    _, status = os.waitpid(pid, 0)
    service.close()
    stats = service.stats()
    print(f"PARENT {depth} {os.waitstatus_to_exitcode(status)} {stats.written} {stats.failed}")
    """
)


def test_a_forked_child_persists_its_records_once_and_the_parents_too(
    database_url: str, tmp_path: Path
) -> None:
    """After os.fork() both processes' entries are stored once; the child leaves the parent's."""
    n = 5000
    process = start_child(
        FORK,
        [str(n)],
        env=child_env(database_url, CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE="50000"),
        cwd=tmp_path,
    )
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()}
    flushed, child_enqueued, child_written, child_failed = (int(v) for v in lines["CHILD"])
    depth_at_fork, child_status, parent_written, parent_failed = (int(v) for v in lines["PARENT"])
    assert depth_at_fork > 0, "the parent's queue was empty at the fork: nothing was tested"
    assert child_status == 0
    # A fresh queue and writer in the child: it wrote its own n entries, not the parent's backlog.
    assert (flushed, child_enqueued, child_written, child_failed) == (1, n, n, 0)
    assert (parent_written, parent_failed) == (2 * n, 0)
    rows = stored_rows(database_url)
    assert len(rows) == 4 * n
    assert duplicates([row[0] for row in rows]) == {}
    for actor in ("parent-before", "child", "child-late", "parent-after"):
        assert stored_seqs(database_url, actor) == list(range(n)), actor
    # The child persisted no spool: nothing it held failed.
    assert not (tmp_path / "cleveragents_audit.spool.jsonl").exists()
    if database_url.startswith("sqlite"):
        spool = Path(f"{sqlite_path(database_url)}.spool.jsonl")
        assert not spool.exists() or spool.stat().st_size == 0
    assert_trail_intact(database_url)


# The parent forks, then closes its service (on SQLite: its last connection, which
# checkpoints the WAL) while the child is still using the database; the child goes on.
FORK_PARENT_CLOSES_FIRST = textwrap.dedent(
    """
    import os, sys
    from cleveragents import AuditService

    n = int(sys.argv[1])
    service = AuditService()
    for seq in range(n):
        service.record("tool.invoked", actor="parent", details={"seq": seq})
    assert service.flush(60)
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for seq in range(n):
            service.record("tool.invoked", actor="child-early", details={"seq": seq})
        assert service.flush(60)
        os.write(to_parent_w, b"1")
        os.read(to_child_r, 1)  # the parent has closed its service
        for seq in range(n):
            service.record("tool.invoked", actor="child-late", details={"seq": seq})
        flushed = service.flush(60)
        stats = service.stats()
        print(f"CHILD {int(flushed)} {stats.written} {stats.failed}", flush=True)
        sys.exit(0)
    os.read(to_parent_r, 1)  # the child has written through connections of its own
    service.close()
    os.write(to_child_w, b"1")
    _, status = os.waitpid(pid, 0)
    print(f"PARENT {os.waitstatus_to_exitcode(status)}", flush=True)
    """
)


def test_a_forked_child_loses_nothing_when_the_parent_closes_first(
    database_url: str, tmp_path: Path
) -> None:
    """The parent closes while its forked child still writes: the child's later entries persist."""
    n = 2000
    process = start_child(
        FORK_PARENT_CLOSES_FIRST, [str(n)], env=child_env(database_url), cwd=tmp_path
    )
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()}
    assert [int(v) for v in lines["CHILD"]] == [1, 2 * n, 0]
    assert lines["PARENT"] == ["0"]
    for actor in ("parent", "child-early", "child-late"):
        assert stored_seqs(database_url, actor) == list(range(n)), actor
    assert len(stored_rows(database_url)) == 3 * n
    assert_trail_intact(database_url)


# multiprocessing's fork children end with os._exit(), which skips atexit hooks. One child
# records through the service it inherited, another through a service of its own; neither
# calls close().
MULTIPROCESSING_FORK = textwrap.dedent(
    """
    import multiprocessing, sys
    from cleveragents import AuditService

    def inherited(n):
        for seq in range(n):
            SERVICE.record("tool.invoked", actor="inherited", details={"seq": seq})

    def own(n):
        service = AuditService()
        for seq in range(n):
            service.record("tool.invoked", actor="own", details={"seq": seq})

    if __name__ == "__main__":
        n = int(sys.argv[1])
        SERVICE = AuditService()
        context = multiprocessing.get_context("fork")
        codes = []
        for target in (inherited, own):
            process = context.Process(target=target, args=(n,))
            process.start()
            process.join()
            codes.append(process.exitcode)
        SERVICE.close()
        print("EXIT", *codes, flush=True)
    """
)


def test_multiprocessing_fork_children_persist_their_records_without_close(
    database_url: str, tmp_path: Path
) -> None:
    """multiprocessing fork children that never call close() still persist what they recorded."""
    n = 3000
    process = start_child(
        MULTIPROCESSING_FORK,
        [str(n)],
        env=child_env(database_url, CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE="50000"),
        cwd=tmp_path,
    )
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "EXIT 0 0" in stdout, stdout
    for actor in ("inherited", "own"):
        assert stored_seqs(database_url, actor) == list(range(n)), actor
    assert_trail_intact(database_url)
