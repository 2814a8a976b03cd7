"""Helpers shared by the tests: a real SQLite write lock, bounded waits, JSON comparison."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pytest
from sqlalchemy.engine import make_url

T = TypeVar("T")

#: The most a test waits for something that should happen in milliseconds.
GENEROUS_S = 20.0


def sqlite_path(url: str) -> Path:
    """The file behind a ``sqlite:///PATH`` URL."""
    database = make_url(url).database
    assert database, f"{url!r} names no SQLite file"
    return Path(database)


class SQLiteWriteLock:
    """Holds a SQLite file's write lock from a separate connection, as another process would.

    While it is held, the audit writer's INSERT cannot commit: it waits for its
    busy timeout and then gets ``database is locked``, which it retries. Readers
    are not blocked (the audit database runs in WAL mode).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self.held = False

    def acquire(self) -> None:
        """Take the write lock (``BEGIN IMMEDIATE``)."""
        if self._connection is None:
            # A busy timeout of its own, so taking the lock waits out a commit under way.
            self._connection = sqlite3.connect(
                self._path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        self._connection.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        """Give the write lock back; idempotent."""
        if self.held and self._connection is not None:
            self._connection.execute("ROLLBACK")
            self.held = False

    def close(self) -> None:
        """Release and close the connection."""
        self.release()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = GENEROUS_S, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` is true, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)


def call_bounded(function: Callable[[], T], *, timeout: float = GENEROUS_S, what: str = "") -> T:
    """Run ``function`` on a helper thread; fail the test (instead of hanging) after ``timeout``.

    Returns what ``function`` returned and re-raises what it raised.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="bounded-call", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(
            f"{what or getattr(function, '__name__', 'call')} hung for more than {timeout} s"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def assert_same_json(actual: object, expected: object, path: str = "details") -> None:
    """Assert two JSON values are equal *and* of the same types (1 != 1.0 != True here)."""
    assert type(actual) is type(expected), f"{path}: {actual!r} is not of the type of {expected!r}"
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert actual.keys() == expected.keys(), f"{path}: keys differ"
        for key, value in expected.items():
            assert_same_json(actual[key], value, f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(actual, list)
        assert len(actual) == len(expected), f"{path}: lengths differ"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(left, right, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert isinstance(actual, float)
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
        assert math.copysign(1.0, actual) == math.copysign(1.0, expected), f"{path}: sign lost"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
