"""Every subcommand once as a real process of the installed console script; tail -f live."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import Trail, json_lines, make_rows, script, write_rows
from tests.support import GENEROUS_S


def env() -> dict[str, str]:
    """Our environment without CLEVERAGENTS_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``cleveragents-audit ARGS`` as a process; bounded."""
    return subprocess.run(
        [script(), *args],
        capture_output=True,
        text=True,
        env=env(),
        cwd=cwd,
        timeout=GENEROUS_S * 3,
        check=False,
    )


def test_demo(tmp_path: Path) -> None:
    """demo records a run through the bus and prints it back, with the timings."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    done = run("demo", "--runs", "2", "--database-url", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "The last agent run, as recorded" in done.stdout
    assert "async record() costs the emitter" in done.stdout
    assert "A LangChain run, audited by AuditCallbackHandler" in done.stdout
    counted = run("stats", "--database-url", url, "--json", cwd=tmp_path)
    # 2 runs, async and sync; then the LangChain run's 8 entries
    assert orjson.loads(counted.stdout)["rows"] == 2 * 2 * 23 + 8


def test_query_and_tail(sqlite_trail: Trail, tmp_path: Path) -> None:
    """query --json and tail --json print parseable entries."""
    done = run(
        "query", "--database-url", sqlite_trail.url, "--json", "-t", "llm.request", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert [e["id"] for e in json_lines(done.stdout)] == [3, 9]
    done = run("tail", "--database-url", sqlite_trail.url, "--json", "-n", "2", cwd=tmp_path)
    assert [e["id"] for e in json_lines(done.stdout)] == [11, 12]


def test_export_and_import(sqlite_trail: Trail, tmp_path: Path) -> None:
    """export -o then import into a new database, as processes."""
    out = tmp_path / "trail.jsonl"
    done = run("export", "--database-url", sqlite_trail.url, "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    done = run("import", str(out), "--database-url", target, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["imported"] == 12


def test_stats_and_db(sqlite_trail: Trail, tmp_path: Path) -> None:
    """stats --json, db current --json and db upgrade as processes."""
    done = run("stats", "--database-url", sqlite_trail.url, "--json", cwd=tmp_path)
    assert orjson.loads(done.stdout)["by_event_type"]["tool.invoked"] == 2
    done = run("db", "current", "--database-url", sqlite_trail.url, "--json", cwd=tmp_path)
    assert orjson.loads(done.stdout)["status"] == "head"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = run("db", "upgrade", "--database-url", fresh, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["from_status"] == "empty"


def test_a_user_error_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    """A bad event type from the real script: status 2, one line on stderr, stdout empty."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    done = run("query", "--database-url", url, "--type", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: --type: unknown event type 'nope'")
    assert done.stderr.count("\n") == 1


def test_a_closed_pipe_ends_the_export_quietly(sqlite_url: str, tmp_path: Path) -> None:
    """`export | head -1`: the reader goes away; no traceback, no hang."""
    write_rows(sqlite_url, [row for _ in range(2_000) for row in make_rows()])  # 24,000 rows
    process = subprocess.Popen(
        [script(), "export", "--database-url", sqlite_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=tmp_path,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()
    assert orjson.loads(first)["id"] == 1
    process.stdout.close()
    process.wait(GENEROUS_S)
    assert b"Traceback" not in process.stderr.read()
    process.stderr.close()


# -- tail -f against another process -------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService, Settings

    url, n = sys.argv[1], int(sys.argv[2])
    with AuditService(Settings(database_url=url)) as service:  # async: the writer thread commits
        for seq in range(n):
            details = {"seq": seq, "token": "t"}
            service.record("tool.invoked", actor="other-process", details=details)
    """
)


@pytest.fixture
def follower(
    trail: Trail, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], queue.Queue[bytes]]]:
    """``tail -f --json`` running on the trail, its stdout lines arriving on a queue."""
    process = subprocess.Popen(
        [
            script(),
            "tail",
            "-f",
            "--json",
            "-n",
            "1",
            "--interval",
            "0.05",
            "--database-url",
            trail.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=tmp_path,
    )
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(GENEROUS_S)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def next_entry(lines: queue.Queue[bytes]) -> dict[str, object]:
    """The next line tail printed, parsed; fails the test after a generous wait."""
    try:
        return orjson.loads(lines.get(timeout=GENEROUS_S))  # type: ignore[no-any-return]
    except queue.Empty:
        pytest.fail(f"tail -f printed nothing within {GENEROUS_S} s")


def test_tail_follow_sees_what_another_process_commits(
    trail: Trail, tmp_path: Path, follower: tuple[subprocess.Popen[bytes], queue.Queue[bytes]]
) -> None:
    """While tail -f runs, a second process records 200 entries: tail prints each once, in order.

    Then Ctrl-C (SIGINT) ends it with status 0 and nothing on stderr.
    """
    process, lines = follower
    assert next_entry(lines)["id"] == 12  # the newest entry: tail is running
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, trail.url, "200"],
        env=env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 3,
        check=False,
    )
    assert writer.returncode == 0, writer.stderr
    seen = [next_entry(lines) for _ in range(200)]
    assert [e["details"]["seq"] for e in seen] == list(range(200))  # type: ignore[index]
    assert [e["id"] for e in seen] == list(range(14, 214))  # 13: its writer.opened
    assert {e["actor"] for e in seen} == {"other-process"}
    assert seen[0]["details"]["token"] == "[REDACTED]"  # type: ignore[index]
    process.send_signal(signal.SIGINT)
    assert process.wait(GENEROUS_S) == 0
    assert process.stderr is not None
    assert process.stderr.read() == b""
    assert lines.empty()
