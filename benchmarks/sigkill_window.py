"""How many entries a SIGKILL (or a power cut) loses: the write-behind window, measured.

Not an asv benchmark (nothing here is named ``time_*`` or ``track_*``) but a script::

    .venv/bin/python benchmarks/sigkill_window.py                 # SQLite, 5 trials
    .venv/bin/python benchmarks/sigkill_window.py --trials 10 --rate 5000 --seconds 2
    .venv/bin/python benchmarks/sigkill_window.py --database-url postgresql+psycopg://...

Each trial starts a child process with an asynchronous ``AuditService`` (the
library's defaults) that records entries paced at ``--rate`` per second. After every
``record()`` that returns, the child stores how many have returned in an 8-byte
counter in a memory-mapped file, which outlives the process: that is the number
the application believed recorded. After ``--seconds`` the parent sends SIGKILL,
so no exit hook runs. It then reads the counter and counts the child's rows in the
database. ``lost = reported - stored``; the window is ``lost / rate``: how far
behind ``record()`` the commits were when the process died. The script also checks
that the stored entries are exactly the first ``stored`` ones recorded (the loss is
the tail, never a hole).

A power cut can lose the same window, plus whatever the storage acknowledged
without having it on disk (SQLite commits with ``synchronous=FULL`` in WAL mode,
so a committed entry has been fsynced).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

#: A realistic entry: a tool call with a ~200-byte details object.
DETAILS = {
    "tool": "web.search",
    "arguments": {"query": "quarterly revenue growth ACME Corp 2024", "max_results": 10},
    "status": "ok",
    "duration_ms": 412.7,
    "tokens": {"prompt": 1234, "completion": 256},
    "attempt": 1,
    "cached": False,
}
_COUNTER = struct.Struct("<q")


def child(database_url: str, actor: str, rate: float, counter_path: str) -> None:
    """Record paced entries for ever, publishing the count of returned record() calls."""
    from cleveragents import AuditService, Settings

    with open(counter_path, "r+b") as handle:
        counter = mmap.mmap(handle.fileno(), _COUNTER.size)
    service = AuditService(Settings(database_url=database_url, audit_async=True))
    interval = 1.0 / rate
    print("READY", flush=True)
    started = time.perf_counter()
    seq = 0
    while True:
        service.record(
            "tool.invoked",
            actor=actor,
            resource="tool:web.search",
            details={**DETAILS, "seq": seq},
            correlation_id="sigkill-window",
        )
        seq += 1
        _COUNTER.pack_into(counter, 0, seq)
        ahead = started + seq * interval - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)


def stored_seqs(database_url: str, actor: str) -> list[int]:
    """The ``seq`` of every stored entry of ``actor``, by ascending id."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT details FROM audit_log WHERE actor = :actor ORDER BY id"),
                {"actor": actor},
            )
            return [json.loads(details)["seq"] for (details,) in rows]
    finally:
        engine.dispose()


def trial(database_url: str | None, rate: float, seconds: float, workdir: Path) -> dict[str, float]:
    """Run one child, SIGKILL it after ``seconds``; what it reported against what is stored."""
    actor = f"sigkill-{uuid.uuid4().hex[:12]}"
    url = database_url or f"sqlite:///{workdir / (actor + '.db')}"
    counter_path = workdir / f"{actor}.counter"
    counter_path.write_bytes(b"\0" * _COUNTER.size)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", url, actor, str(rate), str(counter_path)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=workdir,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "READY":
        process.kill()
        raise SystemExit(f"the child did not start: exit status {process.wait()}")
    time.sleep(seconds)  # let it record at its pace for that long
    process.send_signal(signal.SIGKILL)
    process.wait()
    reported = _COUNTER.unpack(counter_path.read_bytes())[0]
    seqs = stored_seqs(url, actor)
    if seqs != list(range(len(seqs))):
        raise SystemExit(f"{actor}: the stored entries are not a prefix of those recorded")
    # A record() that returned just before the kill but had not stored the count yet
    # can make stored exceed reported by one.
    lost = max(0, reported - len(seqs))
    return {
        "reported": reported,
        "stored": len(seqs),
        "lost": lost,
        "window_ms": lost / rate * 1000,
        "rate": reported / seconds,
    }


def main() -> None:
    """Parse the arguments; run the trials (or be the child) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rate", type=float, default=5000.0, help="entries per second")
    parser.add_argument("--seconds", type=float, default=2.0, help="recording before the kill")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per trial")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, actor, rate, counter_path = args.child
        child(url, actor, float(rate), counter_path)
        return

    import sqlite3

    backend = "SQLite file (WAL)" if args.database_url is None else "PostgreSQL"
    print(
        f"SIGKILL after {args.seconds:g} s of records paced at {args.rate:g}/s, "
        f"{args.trials} trials, {backend}, SQLite {sqlite3.sqlite_version}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"{'trial':>5} {'reported':>9} {'stored':>9} {'lost':>6} {'window ms':>10} {'rate/s':>8}")
    results = []
    with tempfile.TemporaryDirectory(prefix="sigkill-window-") as tmp:
        for number in range(1, args.trials + 1):
            result = trial(args.database_url, args.rate, args.seconds, Path(tmp))
            results.append(result)
            print(
                f"{number:>5} {result['reported']:>9.0f} {result['stored']:>9.0f} "
                f"{result['lost']:>6.0f} {result['window_ms']:>10.1f} {result['rate']:>8.0f}"
            )
    lost = [r["lost"] for r in results]
    windows = [r["window_ms"] for r in results]
    print(
        f"lost: median {statistics.median(lost):.0f}, max {max(lost):.0f} entries; "
        f"window: median {statistics.median(windows):.1f} ms, max {max(windows):.1f} ms"
    )


if __name__ == "__main__":
    main()
