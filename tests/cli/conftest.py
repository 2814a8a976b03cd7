"""Fixtures of the command-line tests: a trail with known entries, the runner, the script."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from typer.testing import CliRunner, Result

from cleveragents.cli.main import app, main
from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import open_database
from tests.schema_support import next_revision

__all__ = [
    "SCRIPT",
    "T0",
    "Exited",
    "Trail",
    "json_lines",
    "next_revision",
    "run_cli",
    "run_main",
    "script",
]

#: The installed console script, next to the interpreter running the tests.
SCRIPT = Path(sys.executable).with_name("cleveragents-audit")

#: Midnight UTC on a fixed day: the trail's entries are placed around it.
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def script() -> str:
    """The path of the installed ``cleveragents-audit`` console script."""
    found = SCRIPT if SCRIPT.exists() else shutil.which("cleveragents-audit")
    assert found, "the cleveragents-audit console script is not installed"
    return str(found)


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Result:
    """``cleveragents-audit ARGS`` through Typer's test runner (stdout and stderr apart)."""
    return CliRunner().invoke(app, list(args), env=env, input=stdin, catch_exceptions=False)


@dataclass(frozen=True)
class Exited:
    """How the console entry point ended: its exit status and what it wrote."""

    code: int
    stdout: str
    stderr: str


def run_main(*args: str, monkeypatch: pytest.MonkeyPatch) -> Exited:
    """``main()``, the console script's entry point, in this process with ``args`` as argv.

    Anything but ``SystemExit`` (a traceback) propagates and fails the test.
    """
    out, err = io.TextIOWrapper(io.BytesIO(), "utf-8"), io.TextIOWrapper(io.BytesIO(), "utf-8")
    monkeypatch.setattr(sys, "argv", ["cleveragents-audit", *args])
    saved = structlog.get_config()
    try:
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main()
    finally:
        structlog.configure(**saved)
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode())  # type: ignore[attr-defined]
    code = exited.value.code
    assert isinstance(code, int), f"exit status {code!r}"
    return Exited(code, texts[0], texts[1])


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object."""
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class Trail:
    """A database with :data:`ROWS` in it, in this order (ids 1..N)."""

    url: str
    rows: Sequence[EntryRow]


def _row(
    event_type: str,
    actor: str | None,
    resource: str | None,
    correlation_id: str | None,
    details: dict[str, Any],
    minutes: int,
) -> EntryRow:
    return EntryRow(
        new_event_id(),
        event_type,
        actor,
        resource,
        encode_details(details),
        correlation_id,
        T0 + timedelta(minutes=minutes, microseconds=minutes * 7 + 1),
        None,  # hand-made: no writer
        None,
    )


def make_rows() -> list[EntryRow]:
    """Twelve entries of two runs, an hour apart each, with unicode and nested details."""
    rows = []
    for run, base in (("run-a", 0), ("run-b", 600)):
        rows += [
            _row("session.started", "user:zoë", "session:1", run, {"client": "cli"}, base),
            _row(
                "agent.started",
                "agent:analyst",
                "session:1",
                run,
                {"goal": "Q3 — résumé"},
                base + 60,
            ),
            _row(
                "llm.request",
                "agent:analyst",
                "model:m",
                run,
                {"tokens": {"prompt": 812}},
                base + 120,
            ),
            _row(
                "tool.invoked",
                "agent:analyst",
                "tool:web.search",
                run,
                {"args": {"q": ["a", 1, None]}},
                base + 180,
            ),
            _row(
                "permission.denied",
                "agent:analyst",
                "tool:shell.run",
                run,
                {"rule": "no-rm"},
                base + 240,
            ),
            _row("session.ended", "user:zoë", "session:1", run, {"ok": True, "s": 1.5}, base + 300),
        ]
    return rows


def write_rows(url: str, rows: Sequence[EntryRow]) -> None:
    """Append ``rows`` to the chain as they are (times included), creating the database at head.

    Through the chain, as the library writes: the trail made verifies intact.
    """
    database = open_database(url)
    try:
        database.write_batch(list(rows))
    finally:
        database.dispose()


@pytest.fixture
def trail(database_url: str) -> Trail:
    """A SQLite file or PostgreSQL schema holding the twelve entries of :func:`make_rows`."""
    rows = make_rows()
    write_rows(database_url, rows)
    return Trail(database_url, rows)


@pytest.fixture
def sqlite_trail(sqlite_url: str) -> Trail:
    """:func:`trail` on a SQLite file only."""
    rows = make_rows()
    write_rows(sqlite_url, rows)
    return Trail(sqlite_url, rows)
