"""Running cleveragents-audit: in-process through Typer's runner, or as a real process."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from audit_support import in_scenario_dir, sqlite_url
from behave import given, then, when
from behave.runner import Context
from typer.testing import CliRunner

import cleveragents
from cleveragents import AuditService, Settings
from cleveragents.cli.main import app
from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.infrastructure.persistence.database import open_database

#: Most seconds a step waits for a process or a line (a hang fails the scenario instead).
WAIT_S = 20.0
T0 = datetime(2026, 3, 1, tzinfo=UTC)

WRITER = textwrap.dedent(
    """
    import sys
    from cleveragents import AuditService, Settings

    with AuditService(Settings(database_url=sys.argv[1])) as service:
        for seq in range(int(sys.argv[2])):
            service.record("tool.invoked", actor="other-process", details={"seq": seq})
    """
)


def _script() -> str:
    return str(Path(sys.executable).with_name("cleveragents-audit"))


def _rows() -> list[tuple[Any, ...]]:
    rows = []
    for run, base in (("run-a", 0), ("run-b", 600)):
        for minutes, kind, actor, resource in (
            (0, "session.started", "user:zoë", "session:1"),
            (60, "agent.started", "agent:analyst", "session:1"),
            (120, "llm.request", "agent:analyst", "model:m"),
            (180, "tool.invoked", "agent:analyst", "tool:web.search"),
            (240, "permission.denied", "agent:analyst", "tool:shell.run"),
            (300, "session.ended", "user:zoë", "session:1"),
        ):
            rows.append(
                (
                    new_event_id(),
                    kind,
                    actor,
                    resource,
                    encode_details({"minute": base + minutes, "note": "é ✓"}),
                    run,
                    T0 + timedelta(minutes=base + minutes),
                    None,  # writer_id and writer_seq: made by hand, not by a writer
                    None,
                )
            )
    return rows


@given("an audit trail with two agent runs")
def given_trail(context: Context) -> None:
    context.trail_path = context.tmp / "trail.db"
    context.trail_url = sqlite_url(context.trail_path)
    database = open_database(context.trail_url)
    try:
        context.trail_rows = _rows()
        database.write_batch(context.trail_rows)
    finally:
        database.dispose()
    os.environ["CLEVERAGENTS_DATABASE_URL"] = context.trail_url  # after_scenario restores it


@given("{count:d} more entries recorded an hour ago")
def given_recent(context: Context, count: int) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        (
            new_event_id(),
            "tool.invoked",
            "agent:late",
            None,
            encode_details({"n": n}),
            None,
            hour_ago + timedelta(seconds=n),
            None,  # writer_id and writer_seq: made by hand, not by a writer
            None,
        )
        for n in range(count)
    ]
    database = open_database(context.trail_url)
    try:
        database.write_batch(rows)
    finally:
        database.dispose()


@then('it prints "cleveragents-audit" and the version of the package')
def then_version(context: Context) -> None:
    assert context.result.stdout == f"cleveragents-audit {cleveragents.__version__}\n"
    assert cleveragents.__version__ == version("cleveragents-audit")


@then(
    "the dry run says {count:d} entries from seq {first:d} to seq {last:d} would go, "
    "{young:d} of them younger than the minimum age"
)
def then_dry_run(context: Context, count: int, first: int, last: int, young: int) -> None:
    report = json.loads(context.result.stdout)
    assert report["dry_run"] is True, report
    found = (report["count"], report["first_seq"], report["through_seq"])
    assert found == (count, first, last), report
    assert report["younger_than_min_age"] == young, report


@then("the trail still holds {count:d} entries")
def then_trail_holds(context: Context, count: int) -> None:
    with sqlite3.connect(context.trail_path) as connection:
        (stored,) = connection.execute("SELECT count(*) FROM audit_log").fetchone()
    assert stored == count, stored


@given('a database "{name}" whose audit_log was made before migrations, with {count:d} entries')
def given_legacy(context: Context, name: str, count: int) -> None:
    connection = sqlite3.connect(context.tmp / name)
    context.connections.append(connection)
    connection.executescript(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY, event_id VARCHAR(36) NOT NULL UNIQUE,
            event_type VARCHAR NOT NULL, actor VARCHAR, resource VARCHAR,
            details TEXT NOT NULL, correlation_id VARCHAR, created_at DATETIME NOT NULL);
        CREATE INDEX ix_audit_log_actor ON audit_log (actor);
        """
    )
    for n in range(count):
        connection.execute(
            "INSERT INTO audit_log (event_id, event_type, actor, details, created_at)"
            " VALUES (?, 'tool.invoked', 'agent:old', ?, '2025-12-31 23:59:59.000000')",
            (new_event_id(), json.dumps({"n": n})),
        )
    connection.commit()


@when('I run "cleveragents-audit {arguments}"')
def when_run(context: Context, arguments: str) -> None:
    args = shlex.split(in_scenario_dir(context, arguments))
    context.result = CliRunner().invoke(app, args, catch_exceptions=False)


@then("it exits with status {status:d}")
def then_status(context: Context, status: int) -> None:
    result = context.result
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)


@then("stdout is empty")
def then_stdout_empty(context: Context) -> None:
    assert context.result.stdout == "", context.result.stdout


@then('stderr is one line that names "{text:Text}"')
def then_stderr_names(context: Context, text: str) -> None:
    stderr = context.result.stderr
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert in_scenario_dir(context, text) in stderr, stderr
    assert "Traceback" not in stderr


def _printed(context: Context) -> list[dict[str, Any]]:
    assert context.result.exit_code == 0, context.result.stderr
    return [json.loads(line) for line in context.result.stdout.splitlines()]


@then("it prints the entries {first:d} and {second:d} as JSON, each with every field")
def then_two_entries(context: Context, first: int, second: int) -> None:
    entries = _printed(context)
    assert [e["id"] for e in entries] == [first, second], entries
    fields = ["id", "event_id", "event_type", "actor", "resource", "correlation_id"]
    for entry in entries:
        assert list(entry) == [*fields, "created_at", "details"], list(entry)
        row = context.trail_rows[entry["id"] - 1]
        assert entry["event_id"] == row[0]
        assert datetime.fromisoformat(entry["created_at"]) == row[6]
        assert entry["details"] == json.loads(row[4])


@then('every entry printed is by "{actor}" and of type "{event_type}"')
def then_all_by(context: Context, actor: str, event_type: str) -> None:
    for entry in _printed(context):
        assert (entry["actor"], entry["event_type"]) == (actor, event_type), entry


@then("it prints the entries {first:d} to {last:d} as JSON")
def then_range(context: Context, first: int, last: int) -> None:
    assert [e["id"] for e in _printed(context)] == list(range(first, last + 1))


@then("it prints {count:d} lines of {fields:d} tab-separated fields")
def then_plain(context: Context, count: int, fields: int) -> None:
    lines = context.result.stdout.splitlines()
    assert len(lines) == count, lines
    assert all(len(line.split("\t")) == fields for line in lines), lines


@then('"{name}" holds the {count:d} entries with the same event ids, times and details')
def then_moved(context: Context, name: str, count: int) -> None:
    with AuditService(Settings(database_url=sqlite_url(context.tmp / name))) as service:
        entries = service.query(limit=1000)
    assert len(entries) == count
    for entry, row in zip(entries, context.trail_rows, strict=True):
        assert (entry.event_id, entry.created_at) == (row[0], row[6])
        assert entry.details == json.loads(row[4])
        assert (entry.actor, entry.resource, entry.correlation_id) == (row[2], row[3], row[5])


@then("it reports {new:d} new entries of {read:d} read")
def then_import_report(context: Context, new: int, read: int) -> None:
    report = json.loads(context.result.stdout)
    assert (report["imported"], report["read"]) == (new, read), report


@then('the report counts {rows:d} rows of {total:d}, {a:d} by "{first}" and {b:d} by "{second}"')
def then_stats(
    context: Context, rows: int, total: int, a: int, first: str, b: int, second: str
) -> None:
    report = json.loads(context.result.stdout)
    assert (report["rows"], report["rows_in_trail"]) == (rows, total), report
    assert report["by_actor"] == [{"actor": first, "count": a}, {"actor": second, "count": b}]


@then('the report counts {count:d} "{event_type}" entry')
def then_stats_type(context: Context, count: int, event_type: str) -> None:
    assert json.loads(context.result.stdout)["by_event_type"][event_type] == count


# -- tail -f as a real process -------------------------------------------------------------


def _environment() -> dict[str, str]:
    return dict(os.environ)


@given('"cleveragents-audit {arguments}" is running')
def given_running(context: Context, arguments: str) -> None:
    process = subprocess.Popen(
        [_script(), *shlex.split(arguments), "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
        cwd=context.tmp,
    )
    context.exit_stack.callback(_stop, process)
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    context.process, context.lines = process, lines
    assert json.loads(_next_line(context))["id"] == 12  # it has started and printed the newest


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(WAIT_S)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _next_line(context: Context) -> bytes:
    try:
        return context.lines.get(timeout=WAIT_S)  # type: ignore[no-any-return]
    except queue.Empty:
        raise AssertionError(f"tail printed nothing within {WAIT_S} s") from None


@when("another process records {count:d} entries")
def when_other_process(context: Context, count: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, context.trail_url, str(count)],
        env=_environment(),
        cwd=context.tmp,
        capture_output=True,
        text=True,
        timeout=WAIT_S * 3,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    context.other_count = count


@then("tail prints those {count:d} entries, in the order they were recorded")
def then_tail_prints(context: Context, count: int) -> None:
    entries = [json.loads(_next_line(context)) for _ in range(count)]
    assert [e["details"]["seq"] for e in entries] == list(range(count))
    assert {e["actor"] for e in entries} == {"other-process"}


@when("I press Ctrl-C")
def when_ctrl_c(context: Context) -> None:
    context.process.send_signal(signal.SIGINT)
    context.status = context.process.wait(WAIT_S)


@then("tail exits with status 0, with nothing on stderr")
def then_tail_done(context: Context) -> None:
    assert context.status == 0, context.status
    assert context.process.stderr.read() == b""
