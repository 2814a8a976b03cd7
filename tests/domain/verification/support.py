"""Rows for the verifier tests: entries, chains sealed as a writer seals them, a run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cleveragents.domain.chain import GENESIS_HASH, entry_hash, entry_hmac, header_of
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.verification import (
    ChainVerifier,
    Finding,
    FindingKind,
    StoredRow,
    VerifyReport,
)

KEY = b"the auditors' key"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

OPENED = SystemEventType.WRITER_OPENED.value
CLOSED = SystemEventType.WRITER_CLOSED.value
DROPPED = SystemEventType.WRITER_DROPPED.value
SPOOLED = SystemEventType.WRITER_SPOOLED.value


# -- building rows -------------------------------------------------------------------------


def entry(
    event_type: str = "tool.invoked",
    *,
    writer: str | None = None,
    number: int | None = None,
    details: Any = None,
    actor: str | None = "alice",
) -> dict[str, Any]:
    """The caller-visible fields of one entry (seq and hashes come from :func:`chain`)."""
    return {
        "event_id": new_event_id(),
        "event_type": event_type,
        "actor": actor,
        "resource": None,
        "details": orjson.dumps(details if details is not None else {}).decode(),
        "correlation_id": None,
        "writer_id": writer,
        "writer_seq": number,
    }


def chain(
    entries: Iterable[dict[str, Any]],
    *,
    key: bytes | None = None,
    start_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
) -> list[StoredRow]:
    """Link ``entries`` as the writer does: seq, prev_hash, entry_hash, HMAC; id = 10 * seq."""
    rows: list[StoredRow] = []
    for seq, fields in enumerate(entries, start=start_seq):
        row = StoredRow(
            id=10 * seq,
            seq=seq,
            created_at=T0 + timedelta(seconds=seq),
            prev_hash=prev_hash,
            entry_hash=None,
            hmac=None,
            **fields,
        )
        row = seal(row, key)
        rows.append(row)
        prev_hash = row.entry_hash or ""
    return rows


def seal(row: StoredRow, key: bytes | None) -> StoredRow:
    """``row`` with its entry hash (and HMAC) recomputed from its fields and prev_hash."""
    assert row.prev_hash is not None
    header = header_of(row.seq, row)
    hashed = entry_hash(row.prev_hash, header)
    return replace(row, entry_hash=hashed, hmac=None if key is None else entry_hmac(key, hashed))


def writer_session(
    writer: str, kinds: Sequence[str | tuple[str, Any]], *, closed: bool = True
) -> list[dict[str, Any]]:
    """A writer's entries, writer_seq 1, 2, ...: opened, ``kinds``, closed."""
    entries = [entry(OPENED, writer=writer, number=1)]
    for kind in kinds:
        event_type, details = kind if isinstance(kind, tuple) else (kind, None)
        entries.append(entry(event_type, writer=writer, number=len(entries) + 1, details=details))
    if closed:
        entries.append(entry(CLOSED, writer=writer, number=len(entries) + 1))
    return entries


def numbered(writer: str, plan: Sequence[tuple[int, str] | tuple[int, str, Any]]) -> list[dict]:
    """A writer's entries with explicit writer_seq: (number, event_type[, details])."""
    return [
        entry(step[1], writer=writer, number=step[0], details=step[2] if len(step) > 2 else None)
        for step in plan
    ]


def run(
    rows: Sequence[StoredRow], *, head_seq: int | str | None = "last", **options: Any
) -> VerifyReport:
    """Feed ``rows`` in the order given (id order) and finish (head at the highest seq)."""
    verifier = ChainVerifier(**options)
    for row in rows:
        verifier.feed(row)
    if head_seq == "last":
        head_seq = max((row.seq for row in rows if type(row.seq) is int), default=0)
    assert not isinstance(head_seq, str)
    return verifier.finish(head_seq=head_seq)


def kinds(report: VerifyReport) -> list[FindingKind]:
    """The kinds of the report's findings, in order."""
    return [finding.kind for finding in report.findings]


def only(report: VerifyReport, kind: FindingKind) -> Finding:
    """The one finding of the report, which must be of ``kind``."""
    assert kinds(report) == [kind], report.findings
    return report.findings[0]


W = new_event_id()
V = new_event_id()
