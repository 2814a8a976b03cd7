"""Several processes writing one audit database at once: nothing lost, nothing doubled.

Four ``python -c`` children each record 5000 entries into the same SQLite file (WAL,
busy timeout) or the same PostgreSQL schema. They are released together through
their stdin, so their writers really contend. Each child writes the event ids that
``record()`` returned to a file; the test compares them with what is stored.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections import defaultdict
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

PROCESSES = 4
PER_PROCESS = 5000

# argv: number, entries, ids file, and whether to open the service before or after "GO".
CHILD = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService

    number, n, ids_path, when = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

    def wait_for_go():
        print("READY", flush=True)
        assert sys.stdin.readline().strip() == "GO"

    if when == "open-then-wait":
        service = AuditService()
        wait_for_go()
    else:
        wait_for_go()
        service = AuditService()
    ids = [
        service.record(
            "tool.invoked", actor=f"proc-{number}", details={"proc": number, "seq": seq}
        ).event_id
        for seq in range(n)
    ]
    service.close()
    stats = service.stats()
    with open(ids_path, "w") as handle:
        handle.write("\\n".join(ids))
    print(f"DONE {stats.written} {stats.failed} {stats.retried}", flush=True)
    """
)


def run_together(database_url: str, tmp_path: Path, when: str) -> list[list[int]]:
    """Start the children, release them at once, and return each one's DONE counters."""
    children = [
        start_child(
            CHILD,
            [str(k), str(PER_PROCESS), str(tmp_path / f"ids-{k}.txt"), when],
            env=child_env(database_url),
            cwd=tmp_path,
            stdin=subprocess.PIPE,
        )
        for k in range(PROCESSES)
    ]
    results = []
    try:
        for child in children:
            wait_for_line(child, "READY")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("GO\n")
            child.stdin.flush()
    finally:
        for child in children:
            stdout, stderr = finish(child)
            assert child.returncode == 0, stderr
            assert "Traceback" not in stderr, stderr
            done = [line for line in stdout.splitlines() if line.startswith("DONE")]
            assert done, stdout
            results.append([int(value) for value in done[0].split()[1:]])
    return results


def assert_everything_stored_once(database_url: str, tmp_path: Path) -> None:
    """20,000 rows, unique event ids, exactly the ids returned, each process's order kept."""
    rows = stored_rows(database_url)
    event_ids = [event_id for event_id, _, _ in rows]
    assert len(rows) == PROCESSES * PER_PROCESS
    assert duplicates(event_ids) == {}
    returned = {k: (tmp_path / f"ids-{k}.txt").read_text().split("\n") for k in range(PROCESSES)}
    assert set(event_ids) == {event_id for ids in returned.values() for event_id in ids}
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, actor, details in rows:
        assert actor is not None
        seqs[actor].append(json.loads(details)["seq"])
    assert sorted(seqs) == [f"proc-{k}" for k in range(PROCESSES)]
    for actor, order in seqs.items():
        assert order == list(range(PER_PROCESS)), f"{actor} out of order"


def test_four_processes_times_5000_records_into_one_database(
    database_url: str, tmp_path: Path
) -> None:
    """4 processes x 5000 records at once into one SQLite file or PostgreSQL database."""
    AuditService(Settings(database_url=database_url, audit_async=False)).close()
    results = run_together(database_url, tmp_path, "open-then-wait")
    assert [written for written, _, _ in results] == [PER_PROCESS] * PROCESSES
    assert [failed for _, failed, _ in results] == [0] * PROCESSES
    assert_everything_stored_once(database_url, tmp_path)


def test_four_processes_opening_a_fresh_database_at_the_same_moment(
    database_url: str, tmp_path: Path
) -> None:
    """4 processes open a database nobody has created yet at once: all start, none loses."""
    results = run_together(database_url, tmp_path, "wait-then-open")
    assert [failed for _, failed, _ in results] == [0] * PROCESSES
    assert_everything_stored_once(database_url, tmp_path)
