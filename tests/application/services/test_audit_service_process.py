"""A process that ends without close() still persists everything it recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cleveragents import AuditService, Settings
from tests.support import GENEROUS_S, SQLiteWriteLock, call_bounded, sqlite_path

N = 5000

# Records N entries and ends without close(): by falling off the end, or by sys.exit(0).
CHILD = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService

    n, how = int(sys.argv[1]), sys.argv[2]
    service = AuditService()  # the URL comes from CLEVERAGENTS_DATABASE_URL
    assert service.is_async
    for seq in range(n):
        service.record("tool.invoked", actor="child", details={"seq": seq})
    print(f"QUEUED {service.stats().queue_depth}", flush=True)
    if how == "exit":
        sys.exit(0)
    """
)


def child_env(database_url: str) -> dict[str, str]:
    """The child's environment: our own, with the audit database chosen by env var."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}
    env["CLEVERAGENTS_DATABASE_URL"] = database_url
    return env


def assert_all_persisted(database_url: str) -> None:
    """Every one of the child's N entries is committed, in the order it recorded them."""
    with AuditService(Settings(database_url=database_url, audit_async=False)) as reader:
        assert reader.count(actor="child") == N
        seqs = []
        after_id = None
        while page := reader.query(actor="child", after_id=after_id, limit=2000):
            seqs.extend(entry.details["seq"] for entry in page)
            after_id = page[-1].id
        assert seqs == list(range(N))


def test_child_that_never_closes_persists_everything(database_url: str, tmp_path: Path) -> None:
    """A child process records N entries and ends without close(): the parent finds all N."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(N), "end"],
        env=child_env(database_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 6,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert_all_persisted(database_url)


def test_child_calling_sys_exit_with_entries_queued_persists_everything(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A child calling sys.exit(0) with thousands of entries queued loses none of them."""
    # Create the database, then hold its write lock so the child's writer cannot drain its queue.
    AuditService(Settings(database_url=sqlite_url, audit_async=False)).close()
    lock = SQLiteWriteLock(sqlite_path(sqlite_url))
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(N), "exit"],
        env=child_env(sqlite_url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = call_bounded(child.stdout.readline, timeout=GENEROUS_S * 3, what="the child")
        while line and not line.startswith("QUEUED"):
            line = call_bounded(child.stdout.readline, timeout=GENEROUS_S, what="the child")
        assert line.startswith("QUEUED"), "the child ended before recording"
        queued = int(line.split()[1])
        # The writer holds one batch; everything else is still queued when sys.exit(0) runs.
        assert queued >= N - Settings().audit_batch_size
    finally:
        lock.close()
        _, stderr = child.communicate(timeout=GENEROUS_S * 3)
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert_all_persisted(sqlite_url)
