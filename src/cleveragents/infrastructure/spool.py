"""The dead-letter spool: a JSON Lines file of entries the database would not take.

Each line is one entry with the error that kept it out (written and read by
:mod:`cleveragents.infrastructure.row_codec`)::

    {"event_id": "...", "event_type": "tool.invoked", "actor": ..., "resource": ...,
     "details": {...}, "correlation_id": ..., "created_at": "2026-11-29T17:25:37.426385+00:00",
     "error": "OperationalError: database or disk is full", "spooled_at": "..."}

Appends are fsynced before the writer counts the entries as spooled, and take an
exclusive ``flock`` so that a replay running in another process never truncates a
line it has not read. The file (and its rejects file) is created with mode 0600:
it holds audit data.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cleveragents.domain.replay import RejectedLine
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.row_codec import SPOOL_RULES, decode_entry, spool_line

__all__ = ["DEFAULT_SPOOL_NAME", "Spool", "SpoolContents", "spool_path_for"]

#: The spool's name in the working directory when there is no SQLite file to put it beside.
DEFAULT_SPOOL_NAME = "cleveragents_audit.spool.jsonl"

_PRIVATE = 0o600


def spool_path_for(configured: Path | None, sqlite_path: Path | None) -> Path:
    """Where a service's spool is: as configured, beside its SQLite file, or in the cwd."""
    if configured is not None:
        return configured.absolute()
    if sqlite_path is not None:
        return sqlite_path.with_name(sqlite_path.name + ".spool.jsonl")
    return Path.cwd() / DEFAULT_SPOOL_NAME


@dataclass(frozen=True, slots=True)
class SpoolContents:
    """What a spool holds: the valid entries, and the lines that are not."""

    rows: list[EntryRow]
    rejected: list[RejectedLine]
    #: For each of ``rows``: its line number and text, to reject it if the database refuses it.
    sources: list[tuple[int, str]] = field(default_factory=list)


class Spool:
    """Appends entries to, and reads them back from, one JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejects_path = path.with_name(path.name + ".rejects")

    def append(self, rows: Sequence[EntryRow], error: str) -> list[tuple[EntryRow, str]]:
        """Append ``rows`` with the ``error`` that kept them out, and fsync.

        One row that cannot be encoded never keeps the others out: it is left out and
        returned with the reason; the others are appended.

        Raises:
            OSError: the file cannot be written (nothing is counted as spooled then).
        """
        spooled_at = datetime.now(UTC).isoformat()
        lines: list[bytes] = []
        unencodable: list[tuple[EntryRow, str]] = []
        for row in rows:
            try:
                lines.append(spool_line(row, error, spooled_at))
            except Exception as exc:
                unencodable.append((row, f"{type(exc).__name__}: {exc}"))
        if lines:
            with self._locked(os.O_WRONLY | os.O_APPEND | os.O_CREAT) as fd:
                _write_all(fd, b"".join(lines))
                os.fsync(fd)
        return unencodable

    @contextmanager
    def draining(self) -> Iterator[SpoolContents]:
        """Read the spool under its lock; on a clean exit, truncate it.

        The caller re-ingests ``rows`` inside the block; the spool is truncated only
        after the block returns, so a failure inside leaves every line in place.
        Lines that are not valid entries are appended to the rejects file, with
        their line numbers, before the truncation.
        """
        if not self.path.exists():
            yield SpoolContents([], [])
            return
        with self._locked(os.O_RDWR) as fd:
            with os.fdopen(os.dup(fd), "rb") as reader:
                contents = _parse(reader.read())
            yield contents
            if contents.rejected:
                self._keep_aside(contents.rejected)
            os.ftruncate(fd, 0)
            os.fsync(fd)

    def _keep_aside(self, rejected: list[RejectedLine]) -> None:
        stamp = datetime.now(UTC).isoformat()
        payload = b"".join(
            orjson.dumps(
                {
                    "spool": str(self.path),
                    "line_number": r.line_number,
                    "reason": r.reason,
                    "text": r.text,
                    "rejected_at": stamp,
                }
            )
            + b"\n"
            for r in rejected
        )
        fd = os.open(self.rejects_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _PRIVATE)
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def _locked(self, flags: int) -> Iterator[int]:
        fd = os.open(self.path, flags, _PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock


def _parse(data: bytes) -> SpoolContents:
    rows: list[EntryRow] = []
    rejected: list[RejectedLine] = []
    sources: list[tuple[int, str]] = []
    lines = data.split(b"\n")
    torn = not data.endswith(b"\n") and data != b""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        if torn and number == len(lines):
            rejected.append(RejectedLine(number, "torn last line (no newline)", text))
            continue
        try:
            rows.append(decode_entry(raw, SPOOL_RULES))
            sources.append((number, text))
        except (ValueError, TypeError) as exc:  # RowError, or a bug's: never a crash
            rejected.append(RejectedLine(number, str(exc) or type(exc).__name__, text))
    return SpoolContents(rows, rejected, sources)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
