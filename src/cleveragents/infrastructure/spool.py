"""The dead-letter spool: a JSON Lines file of entries the database would not take.

Each line is one entry with the error that kept it out::

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
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cleveragents.domain.details import encode_details, load_json_exact
from cleveragents.domain.event_types import SystemEventType, coerce_stored_event_type
from cleveragents.domain.limits import check_text
from cleveragents.domain.replay import RejectedLine
from cleveragents.domain.rows import EntryRow

__all__ = ["DEFAULT_SPOOL_NAME", "Spool", "SpoolContents"]

#: The spool's name in the working directory when there is no SQLite file to put it beside.
DEFAULT_SPOOL_NAME = "cleveragents_audit.spool.jsonl"

_PRIVATE = 0o600
_TEXT_FIELDS = ("actor", "resource", "correlation_id")
# A run of 19 digits may be an integer beyond 64 bits, which orjson would read as a float.


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
                lines.append(_encode_line(row, error, spooled_at))
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


def _encode_line(row: EntryRow, error: str, spooled_at: str) -> bytes:
    event_id, event_type, actor, resource, details, correlation_id, created_at = row[:7]
    line = {
        "event_id": event_id,
        "event_type": event_type,
        "actor": actor,
        "resource": resource,
        "details": orjson.Fragment(details),
        "correlation_id": correlation_id,
        "created_at": created_at.isoformat(),
        "writer_id": row[7],
        "writer_seq": row[8],
        "error": error,
        "spooled_at": spooled_at,
    }
    try:
        return orjson.dumps(line) + b"\n"
    except TypeError:
        # Text that is not valid UTF-8 (a lone surrogate, which record() refuses): kept
        # as an ASCII escape, so that the entry is not lost; a replay reports the line.
        line["details"] = json.loads(details)
        return json.dumps(line, ensure_ascii=True).encode("ascii") + b"\n"


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
            rows.append(_decode_line(raw))
            sources.append((number, text))
        except KeyError as exc:
            rejected.append(RejectedLine(number, f"missing field {exc}", text))
        except (ValueError, TypeError) as exc:
            rejected.append(RejectedLine(number, str(exc) or type(exc).__name__, text))
    return SpoolContents(rows, rejected, sources)


def _decode_line(raw: bytes) -> EntryRow:
    item = load_json_exact(raw)
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    event_id = item["event_id"]
    if not isinstance(event_id, str) or len(event_id) != 36:
        raise ValueError(f"bad event_id {event_id!r}")
    event_type = coerce_stored_event_type(item["event_type"]).value
    if event_type in NOT_REPLAYED:
        raise ValueError(f"{event_type} is written by the command itself, never replayed")
    texts = [item.get(name) for name in _TEXT_FIELDS]
    for name, value in zip(_TEXT_FIELDS, texts, strict=True):
        check_text(name, value)  # the limits of record(): both backends can store it
    created_at = datetime.fromisoformat(item["created_at"])
    if created_at.tzinfo is None:
        raise ValueError("created_at has no time zone")
    details = encode_details(item.get("details"))
    actor, resource, correlation_id = texts
    writer_id, writer_seq = item.get("writer_id"), item.get("writer_seq")  # older lines: none
    if writer_id is not None and not isinstance(writer_id, str):
        raise TypeError("writer_id must be a string or null")
    if writer_seq is not None and (type(writer_seq) is not int or writer_seq < 1):
        raise TypeError("writer_seq must be a positive integer or null")
    return EntryRow(
        event_id,
        event_type,
        actor,
        resource,
        details,
        correlation_id,
        created_at,
        writer_id,
        writer_seq,
    )


#: System entries a spool or an import never brings in: a purge's, a replay's or an
#: import's own declaration is made where it happens, and one from elsewhere could hide
#: a deletion (or excuse a checkpoint that does not match).
NOT_REPLAYED = frozenset(
    {
        SystemEventType.RETENTION_PURGED.value,
        SystemEventType.SPOOL_REPLAYED.value,
        SystemEventType.TRAIL_IMPORTED.value,
    }
)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
