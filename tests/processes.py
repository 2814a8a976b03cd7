"""Helpers for tests that run other Python processes and check what they left in the database.

The children are plain ``python -c SCRIPT`` processes in the test's directory, with
the audit database named by ``CLEVERAGENTS_DATABASE_URL``. What they stored is read
back with a plain SQLAlchemy engine, not through the service under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES
from tests.support import GENEROUS_S, call_bounded


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """Our environment without CLEVERAGENTS_* variables, plus the child's database URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}
    env["CLEVERAGENTS_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_child(
    script: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: int | None = None,
) -> subprocess.Popen[str]:
    """Start ``python -c script args...`` with text pipes for stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=dict(env),
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(stream: IO[str] | None, *, timeout: float = GENEROUS_S, what: str = "") -> str:
    """The next line of a child's output, failing the test instead of hanging."""
    assert stream is not None
    return call_bounded(stream.readline, timeout=timeout, what=what or "a line from the child")


def wait_for_line(
    child: subprocess.Popen[str], prefix: str, *, timeout: float = GENEROUS_S * 3
) -> str:
    """Skip the child's stdout lines until one starts with ``prefix``; fail if it ends first."""
    while True:
        line = read_line(child.stdout, timeout=timeout, what=f"{prefix!r} from the child")
        if not line:
            _, stderr = child.communicate(timeout=GENEROUS_S)
            raise AssertionError(f"the child ended before printing {prefix!r}:\n{stderr}")
        if line.startswith(prefix):
            return line.strip()


def finish(child: subprocess.Popen[str], *, timeout: float = GENEROUS_S * 3) -> tuple[str, str]:
    """Wait for the child to end (killing it if it overruns); its remaining stdout and stderr."""
    try:
        return child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        _, err = child.communicate()
        raise AssertionError(f"the child overran {timeout} s and was killed:\n{err}") from None


# The system event types as an SQL list of literals (fixed names, no quoting needed).
_SYSTEM_TYPES_SQL = ", ".join(f"'{name}'" for name in sorted(SYSTEM_EVENT_TYPES))


def stored_rows(
    database_url: str, *, include_system: bool = False
) -> list[tuple[str, str | None, str]]:
    """``(event_id, actor, details)`` of the caller's rows in ``audit_log``, by ascending id.

    The library's own rows (``writer.opened``, ``writer.closed``, ...) only with ``include_system``.
    """
    where = "" if include_system else f" WHERE event_type NOT IN ({_SYSTEM_TYPES_SQL})"
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            result = connection.execute(
                text(f"SELECT event_id, actor, details FROM audit_log{where} ORDER BY id")
            )
            return [(row[0], row[1], row[2]) for row in result]
    finally:
        engine.dispose()


def duplicates(values: Sequence[str]) -> dict[str, int]:
    """The values that occur more than once, with their counts."""
    return {value: n for value, n in Counter(values).items() if n > 1}
