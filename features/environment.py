"""Behave hooks: every scenario runs in its own temporary directory and environment.

``before_scenario`` gives each scenario a fresh temp dir (also the working
directory, so the default ``cleveragents_audit.db`` and a ``.env`` file land
there), and a clean slate of ``CLEVERAGENTS_*`` environment variables.

``after_scenario`` ALWAYS undoes everything the scenario set up, in an order that
cannot hang: first the SQLite write locks held by other connections are released
(a service whose writer waits for such a lock could not close otherwise), then
every service the scenario opened is closed, then the writer threads it started
are waited for, then sessions, engines and raw connections are closed, and the
working directory, the environment and the temp dir are restored. Every step is
attempted even when an earlier one fails; the first failure is raised at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

from behave.model import Scenario
from behave.runner import Context

ENV_PREFIX = "CLEVERAGENTS_"
WRITER_THREAD_NAME = "cleveragents-audit-writer"
#: Most seconds after_scenario waits for a writer thread the scenario started to end.
WRITER_JOIN_TIMEOUT_S = 15.0


def writer_threads() -> set[threading.Thread]:
    """The audit writer threads running now."""
    return {t for t in threading.enumerate() if t.name == WRITER_THREAD_NAME and t.is_alive()}


def before_scenario(context: Context, scenario: Scenario) -> None:
    context.tmp = Path(tempfile.mkdtemp(prefix="cleveragents-behave-"))
    context.old_cwd = os.getcwd()
    os.chdir(context.tmp)
    context.saved_env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    for name in context.saved_env:
        del os.environ[name]
    context.writers_before = writer_threads()
    # What the scenario opens; after_scenario closes all of it.
    context.locks = []  # sqlite3 connections holding a write lock
    context.services = []  # AuditService instances
    context.sessions = []  # SQLAlchemy sessions handed to services
    context.engines = []  # SQLAlchemy engines behind those sessions
    context.connections = []  # other raw sqlite3 connections
    context.exit_stack = contextlib.ExitStack()  # log capture and the like


def after_scenario(context: Context, scenario: Scenario) -> None:
    errors: list[BaseException] = []

    def attempt(action: Any, *args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except BaseException as exc:
            errors.append(exc)

    for lock in context.locks:
        attempt(_release, lock)
    context.locks.clear()
    for service in reversed(context.services):
        attempt(service.close)
    context.services.clear()
    attempt(_join_writers, context.writers_before)
    for session in context.sessions:
        attempt(session.close)
    for engine in context.engines:
        attempt(engine.dispose)
    for connection in context.connections:
        attempt(connection.close)
    attempt(context.exit_stack.close)
    attempt(os.chdir, context.old_cwd)
    attempt(_restore_env, context.saved_env)
    attempt(shutil.rmtree, context.tmp, ignore_errors=True)
    if errors:
        raise errors[0]


def _release(lock: sqlite3.Connection) -> None:
    try:
        if lock.in_transaction:
            lock.rollback()
    finally:
        lock.close()


def _join_writers(before: set[threading.Thread]) -> None:
    """Wait for the writer threads this scenario started; fail if one is left running."""
    left = []
    for thread in writer_threads() - before:
        thread.join(WRITER_JOIN_TIMEOUT_S)
        if thread.is_alive():
            left.append(thread)
    if left:
        raise AssertionError(f"{len(left)} audit writer thread(s) still running after cleanup")


def _restore_env(saved: dict[str, str]) -> None:
    for name in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[name]
    os.environ.update(saved)
