"""The verdict of ``verify``: findings, their kinds and exit codes, the report, checkpoints.

What a report says, with seq, id and kind:

========================  =========================================  ==========
kind                      meaning                                    exit code
========================  =========================================  ==========
``altered``               entry hash or HMAC does not match          1
``deleted``               a hole in ``seq``                          1
``inserted``              a row outside the chain, a broken link     1
                          (``prev_hash``), a repeated writer_seq
``reordered``             ids or a writer's writer_seq out of order  1
``truncated``             entries missing at the end (head row,      1
                          checkpoint)
``unterminated_writer``   a writer without ``writer.closed``         2
``writer_gap``            a hole in a writer's writer_seq            2
``spooled``               entries a writer declared spooled, not     3
                          replayed yet
``dropped``               entries a writer declared refused          3
========================  =========================================  ==========

The exit code of a report is that of its worst finding (1 before 2 before 3);
4 means the trail could not be verified at all, or a checkpoint cannot be checked
against it (see :mod:`cleveragents.domain.verification.verifier`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

import orjson

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_FINDINGS",
    "Checkpoint",
    "Finding",
    "FindingKind",
    "VerifyReport",
    "VerifyStatus",
    "is_tampering",
    "worst_status",
]

#: The ``format`` field of a checkpoint document.
CHECKPOINT_FORMAT = "cleveragents-audit-checkpoint/1"
#: Findings kept in a report; beyond that only counted (``VerifyReport.counts``).
MAX_FINDINGS = 1_000


class FindingKind(StrEnum):
    """What a finding says about the trail."""

    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    UNTERMINATED_WRITER = "unterminated_writer"
    WRITER_GAP = "writer_gap"
    SPOOLED = "spooled"
    DROPPED = "dropped"


class VerifyStatus(IntEnum):
    """The verdict, and the command line's exit code."""

    INTACT = 0
    TAMPERED = 1
    LOSS_SUSPECTED = 2
    DECLARED_DROPS = 3
    UNVERIFIABLE = 4


_SEVERITY: dict[FindingKind, VerifyStatus] = {
    FindingKind.ALTERED: VerifyStatus.TAMPERED,
    FindingKind.DELETED: VerifyStatus.TAMPERED,
    FindingKind.INSERTED: VerifyStatus.TAMPERED,
    FindingKind.REORDERED: VerifyStatus.TAMPERED,
    FindingKind.TRUNCATED: VerifyStatus.TAMPERED,
    FindingKind.UNTERMINATED_WRITER: VerifyStatus.LOSS_SUSPECTED,
    FindingKind.WRITER_GAP: VerifyStatus.LOSS_SUSPECTED,
    FindingKind.SPOOLED: VerifyStatus.DECLARED_DROPS,
    FindingKind.DROPPED: VerifyStatus.DECLARED_DROPS,
}
_RANK = {
    VerifyStatus.TAMPERED: 3,
    VerifyStatus.LOSS_SUSPECTED: 2,
    VerifyStatus.DECLARED_DROPS: 1,
}


def worst_status(kinds: Iterable[str]) -> VerifyStatus:
    """The verdict of findings of these kinds (their values): the worst one's, or INTACT."""
    worst = VerifyStatus.INTACT
    for kind in kinds:
        status = _SEVERITY[FindingKind(kind)]
        if _RANK[status] > _RANK.get(worst, 0):
            worst = status
    return worst


def is_tampering(kinds: Iterable[str]) -> bool:
    """True when a finding of one of these kinds (their values) is tampering."""
    return any(_SEVERITY[FindingKind(kind)] is VerifyStatus.TAMPERED for kind in kinds)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong (or declared) in the trail, located by seq, id and event_id.

    For ``deleted``, ``seq`` is the first missing seq, and ``id`` and ``event_id``
    name the entry after the hole.
    """

    kind: FindingKind
    message: str
    seq: int | None = None
    id: int | None = None
    event_id: str | None = None
    writer_id: str | None = None

    @property
    def status(self) -> VerifyStatus:
        """The verdict this finding alone would give."""
        return _SEVERITY[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "kind": self.kind.value,
            "seq": self.seq,
            "id": self.id,
            "event_id": self.event_id,
            "writer_id": self.writer_id,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain head at one moment: keep it away from the database to detect truncation."""

    seq: int
    entry_hash: str
    count: int
    time: datetime

    def to_json(self) -> bytes:
        """The checkpoint document, one line of JSON."""
        return orjson.dumps(
            {
                "format": CHECKPOINT_FORMAT,
                "seq": self.seq,
                "entry_hash": self.entry_hash,
                "count": self.count,
                "time": self.time.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Checkpoint:
        """Read a checkpoint document.

        Raises:
            ValueError: it is not a checkpoint of this format.
        """
        if document.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a checkpoint (format {document.get('format')!r})")
        seq, hashed, count = document.get("seq"), document.get("entry_hash"), document.get("count")
        if type(seq) is not int or seq < 0:
            raise ValueError(f"checkpoint seq {seq!r} is not a non-negative integer")
        if not isinstance(hashed, str) or len(hashed) != 64:
            raise ValueError(f"checkpoint entry_hash {hashed!r} is not a SHA-256 hex digest")
        if type(count) is not int or count < 0:
            raise ValueError(f"checkpoint count {count!r} is not a non-negative integer")
        try:
            moment = datetime.fromisoformat(str(document.get("time")))
        except ValueError:
            raise ValueError(f"checkpoint time {document.get('time')!r} is not ISO 8601") from None
        return cls(seq, hashed, count, moment)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :meth:`AuditService.verify` and ``cleveragents-audit verify`` found."""

    status: VerifyStatus
    findings: tuple[Finding, ...]
    counts: Mapping[str, int]  # findings per kind, all of them (``findings`` is capped)
    entries: int  # rows checked
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    writers: int
    hmac_checked: bool
    checkpoints: int
    error: str | None = None

    @property
    def intact(self) -> bool:
        """True when nothing at all was found."""
        return self.status is VerifyStatus.INTACT

    @property
    def exit_code(self) -> int:
        """0 intact, 1 tampered, 2 loss suspected, 3 only declared drops, 4 not verified."""
        return int(self.status)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "status": self.status.name.lower(),
            "exit_code": self.exit_code,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "writers": self.writers,
            "hmac_checked": self.hmac_checked,
            "checkpoints": self.checkpoints,
            "counts": dict(self.counts),
            "findings": [finding.to_dict() for finding in self.findings],
            "error": self.error,
        }

    @classmethod
    def unverifiable(cls, error: str) -> VerifyReport:
        """The report when the trail could not be read or the inputs are unusable."""
        return cls(VerifyStatus.UNVERIFIABLE, (), {}, 0, None, None, None, 0, False, 0, error)
