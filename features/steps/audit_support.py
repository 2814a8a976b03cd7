"""Helpers shared by the step modules (no steps here).

Behave puts ``features/steps`` on ``sys.path`` while it loads the step modules,
so they import this module as ``audit_support``. State lives on the behave
``context``, never here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import parse
from behave import register_type
from behave.runner import Context

from cleveragents import AuditLogEntry, AuditService, Settings
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES


@parse.with_pattern(r'[^"]*')
def _quoted_text(text: str) -> str:
    return text


#: ``"{name:Text}"`` in a step pattern: the text between two double quotes, never past them.
register_type(Text=_quoted_text)

#: Upper bound for every flush() a step makes: a bug fails the scenario instead of hanging it.
FLUSH_TIMEOUT_S = 10.0
#: The event type of the numbered entries that "I record N entries" makes.
NUMBERED_EVENT_TYPE = "tool.invoked"
#: The name the library gives its writer threads (environment.py has the same constant).
WRITER_THREAD_NAME = "cleveragents-audit-writer"


def writer_threads() -> set[threading.Thread]:
    """The audit writer threads running now."""
    return {t for t in threading.enumerate() if t.name == WRITER_THREAD_NAME and t.is_alive()}


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file at ``path``."""
    return f"sqlite:///{path}"


def in_scenario_dir(context: Context, text: str) -> str:
    """Replace the ``{scenario_dir}`` placeholder of a feature file by the scenario's temp dir."""
    return text.replace("{scenario_dir}", str(context.tmp))


def python_value(text: str) -> Any:
    """Evaluate a Python expression from a feature file: literals, ``nan``, ``inf``."""
    names = {"nan": float("nan"), "inf": float("inf"), "datetime": datetime}
    return eval(text, {"__builtins__": {}}, names)


def remember_service(context: Context, service: AuditService, db_path: Path | None) -> None:
    """Make ``service`` the scenario's current service; after_scenario closes it."""
    context.services.append(service)
    context.service = service
    context.db_path = db_path
    context.recorded = []


def open_service(context: Context, db_name: str, **settings: Any) -> AuditService:
    """Open an audit service on the SQLite file ``db_name`` in the scenario's directory."""
    db_path = context.tmp / db_name
    service = AuditService(Settings(database_url=sqlite_url(db_path), **settings))
    remember_service(context, service, db_path)
    return service


def record_numbered(context: Context, count: int, **fields: Any) -> None:
    """Record ``count`` entries whose details carry their position in ``context.recorded``."""
    for _ in range(count):
        seq = len(context.recorded)
        entry = context.service.record(
            NUMBERED_EVENT_TYPE, actor="agent:tester", details={"seq": seq}, **fields
        )
        context.recorded.append(entry)


def flush(service: AuditService, timeout: float = FLUSH_TIMEOUT_S) -> bool:
    """``service.flush(timeout)``; a flush that overruns its timeout by far is a bug."""
    started = time.monotonic()
    done = service.flush(timeout)
    took = time.monotonic() - started
    assert took < timeout + 5.0, f"flush({timeout}) took {took:.1f} s"
    return done


@contextlib.contextmanager
def open_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to an existing database file, closed afterwards."""
    assert path.exists(), f"there is no database file {path}"
    connection = sqlite3.connect(path, timeout=10.0)
    connection.row_factory = sqlite3.Row
    try:
        yield connection
    finally:
        connection.close()


def stored_rows(path: Path, *, include_system: bool = False) -> list[sqlite3.Row]:
    """The caller's rows of ``audit_log`` in the file at ``path``, read without the service, by id.

    The library's own rows (``writer.opened``, ``writer.closed``, ...) only with ``include_system``.
    """
    with open_sqlite(path) as connection:
        rows = connection.execute("SELECT * FROM audit_log ORDER BY id").fetchall()
    if include_system:
        return rows
    return [row for row in rows if row["event_type"] not in SYSTEM_EVENT_TYPES]


def is_system_line(line: Mapping[str, Any]) -> bool:
    """True for a spool line that holds one of the writer's own rows (``writer.spooled``, ...)."""
    return line["event_type"] in SYSTEM_EVENT_TYPES


def all_entries(service: AuditService, **filters: Any) -> list[AuditLogEntry]:
    """Every committed entry the service can read, paging by id."""
    entries: list[AuditLogEntry] = []
    after_id: int | None = None
    while True:
        page = service.query(**filters, after_id=after_id, limit=500)
        entries.extend(page)
        if len(page) < 500:
            return entries
        after_id = page[-1].id


def same_json(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """Equal as JSON values, where 1 and 1.0 and True differ."""
    return _typed(left) == _typed(right)


def _typed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)
