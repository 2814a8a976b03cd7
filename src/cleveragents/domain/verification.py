"""Verifying the chain: findings, the report, checkpoints, and the verifier itself.

:class:`ChainVerifier` is fed the stored rows in ``id`` order, which is commit
order and must be ``seq`` order (by ``persistence/verify.py``, which pages
through the database). It keeps the previous row and, per writer, its next
expected ``writer_seq``, holes, declarations and last row: memory grows with the
number of writers, not of entries. What it reports, with seq, id and kind:

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
against it: it does not match, it is older than a re-chaining import this trail
declares (``trail.imported``), and its hash is nowhere in this chain, so it is
taken for a checkpoint of the chain the entries were imported from (unless the
trail shows tampering anyway, which is then reported as such).
"""

from __future__ import annotations

import hmac as _hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

import orjson

from cleveragents.domain.chain import GENESIS_HASH, canonical_header, entry_hash, entry_hmac
from cleveragents.domain.details import jsonb_can_hold
from cleveragents.domain.event_types import SystemEventType

__all__ = [
    "CHECKPOINT_FORMAT",
    "ChainVerifier",
    "Checkpoint",
    "Finding",
    "FindingKind",
    "StoredRow",
    "VerifyReport",
    "VerifyStatus",
]

#: The ``format`` field of a checkpoint document.
CHECKPOINT_FORMAT = "cleveragents-audit-checkpoint/1"
#: Findings kept in a report; beyond that only counted (``VerifyReport.counts``).
MAX_FINDINGS = 1_000
#: The other reading of a checkpoint that does not match, on a trail that declares a
#: re-chaining import (the hashes cannot tell them apart).
_OTHER_CHAIN = (
    ", or the checkpoint belongs to another chain (this trail holds entries imported"
    " without export --chain, which are new links: their source's checkpoints do not apply)"
)
#: Imports and checkpoints named in full in the could-not-verify message.
_NAMED = 3


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


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored row, as the verifier needs it."""

    id: int
    seq: int | None
    event_id: str
    event_type: str
    actor: str | None
    resource: str | None
    details: str
    correlation_id: str | None
    created_at: datetime
    writer_id: str | None
    writer_seq: int | None
    prev_hash: str | None
    entry_hash: str | None
    hmac: str | None
    details_json: str | None = None  # PostgreSQL's JSONB copy of details, as text


class _Place(NamedTuple):
    """Where a row is, without its contents."""

    id: int
    seq: int | None
    event_id: str
    writer_id: str | None
    writer_seq: int | None


@dataclass(slots=True)
class _Writer:
    next_seq: int  # the writer_seq expected next
    first_chain_seq: int
    missing: list[list[int]] = field(default_factory=list)  # [first, last] holes
    declared: list[list[int]] = field(default_factory=list)  # writer.spooled ranges
    late: list[tuple[int, StoredRow]] = field(default_factory=list)  # filled holes
    # Rows after writer.closed, and writer_seqs seen twice: fine only if a replay
    # (spool.replayed) declares them; judged at the end, when every declaration is known.
    suspects: list[tuple[str, int, StoredRow]] = field(default_factory=list)
    opened: bool = False
    closed_at: int | None = None  # writer_seq of writer.closed
    dropped: int = 0
    last_row: StoredRow | _Place | None = None


@dataclass(slots=True)
class _Import:
    """What the ``trail.imported`` declarations of one import say, together."""

    first_seq: int
    last_seq: int
    count: int
    source: str
    started: datetime  # the first declaration's created_at

    def describe(self) -> str:
        return (
            f"seq {self.first_seq}..{self.last_seq}: {self.count:,} entries from"
            f" {self.source}, at {self.started.isoformat()}"
        )


def _in(ranges: Iterable[list[int]], number: int) -> bool:
    return any(first <= number <= last for first, last in ranges)


def _remove(ranges: list[list[int]], number: int) -> None:
    for index, (first, last) in enumerate(ranges):
        if first <= number <= last:
            pieces = [[first, number - 1], [number + 1, last]]
            ranges[index : index + 1] = [p for p in pieces if p[0] <= p[1]]
            return


def _subtract(holes: list[list[int]], declared: list[list[int]]) -> tuple[int, int]:
    """(numbers in ``holes`` covered by ``declared``, numbers not covered)."""
    covered = uncovered = 0
    for first, last in holes:
        inside = 0
        for d_first, d_last in declared:
            low, high = max(first, d_first), min(last, d_last)
            if low <= high:
                inside += high - low + 1
        covered += inside
        uncovered += last - first + 1 - inside
    return covered, uncovered


class ChainVerifier:
    """Checks rows fed in ``id`` (commit) order; :meth:`finish` gives the report.

    ``start_seq``/``start_prev_hash``: where the chain is expected to begin (1 and
    GENESIS, or just after the newest ``retention.purged`` declaration).
    ``own_writer_id``: a writer still open in the verifying service itself, not
    reported as unterminated. ``jsonb_copies``: the trail is on PostgreSQL, where
    every writer's row has ``details_json``.
    """

    def __init__(
        self,
        *,
        start_seq: int = 1,
        start_prev_hash: str = GENESIS_HASH,
        hmac_key: bytes | None = None,
        checkpoints: Iterable[Checkpoint] = (),
        own_writer_id: str | None = None,
        purged: bool = False,
        jsonb_copies: bool = False,
    ) -> None:
        self._expected_seq = start_seq
        self._expected_prev = start_prev_hash
        self._key = hmac_key
        self._checkpoints = {cp.seq: cp for cp in checkpoints}
        self._checkpoint_hashes = {cp.entry_hash for cp in self._checkpoints.values()}
        self._hashes_found: set[str] = set()  # checkpoint hashes some entry has
        # Checkpoints whose seq holds another hash: judged at the end, once every
        # trail.imported declaration is known.
        self._mismatched: list[tuple[Checkpoint, _Place]] = []
        self._imports: dict[str, _Import] = {}  # import_id -> its declarations, together
        self._own = own_writer_id
        self._jsonb = jsonb_copies  # PostgreSQL: writers fill details_json on every row
        self._purged = purged or start_seq > 1
        self._start_seq = start_seq
        self._writers: dict[str, _Writer] = {}
        self._findings: list[Finding] = []
        self._counts: dict[str, int] = {}
        self._entries = 0
        self._first_seq: int | None = None
        self._last_seq: int | None = None
        self._head_hash: str | None = None
        self._unkeyed_macs = 0
        # writer_id -> writer_seq ranges that replays (spool.replayed) declare re-appended.
        self._replayed: dict[str, list[list[int]]] = {}

    # -- findings --------------------------------------------------------------------

    def report(
        self,
        kind: FindingKind,
        message: str,
        row: StoredRow | _Place | None = None,
        *,
        seq: int | None = None,
        writer_id: str | None = None,
    ) -> None:
        """Add a finding (kept up to MAX_FINDINGS; always counted)."""
        self._add(
            Finding(
                kind,
                message,
                seq=seq if seq is not None or row is None else row.seq,
                id=row.id if row is not None else None,
                event_id=row.event_id if row is not None else None,
                writer_id=row.writer_id if row is not None else writer_id,
            )
        )

    def _add(self, finding: Finding) -> None:
        self._counts[finding.kind.value] = self._counts.get(finding.kind.value, 0) + 1
        if len(self._findings) < MAX_FINDINGS:
            self._findings.append(finding)

    # -- rows ------------------------------------------------------------------------

    def feed(self, row: StoredRow) -> None:
        """Check one row; rows come in ascending ``id`` (which is commit order)."""
        if row.seq is None:
            self.report(
                FindingKind.INSERTED,
                "a row without seq: it was never appended by a writer",
                row,
            )
            return
        problem = _malformed(row)
        if problem is not None:
            self._feed_malformed(row, problem)
            return
        if self._purged and 0 < row.seq < self._start_seq == self._expected_seq:
            return  # left by a purge that did not finish: declared removed, not checked
        self._entries += 1
        if self._first_seq is None:
            self._first_seq = row.seq
        self._check_link(row)
        self._check_hash(row)
        checkpoint = self._checkpoints.get(row.seq)
        if checkpoint is not None and checkpoint.entry_hash != row.entry_hash:
            place = _Place(row.id, row.seq, row.event_id, row.writer_id, row.writer_seq)
            self._mismatched.append((checkpoint, place))
        if row.entry_hash in self._checkpoint_hashes:
            self._hashes_found.add(row.entry_hash)
        if row.writer_id is not None and row.writer_seq is not None:
            self._account(row)
        elif row.event_type == SystemEventType.SPOOL_REPLAYED:
            self._note_replay(row)
        elif row.event_type == SystemEventType.TRAIL_IMPORTED:
            self._note_import(row)
        self._expected_seq = max(self._expected_seq, row.seq + 1)
        self._expected_prev = row.entry_hash or ""
        self._last_seq = row.seq
        self._head_hash = row.entry_hash

    def _feed_malformed(self, row: StoredRow, problem: str) -> None:
        """A row with a value no writer stores (SQLite keeps any type in any column)."""
        seq = row.seq if type(row.seq) is int else None
        self._add(
            Finding(
                FindingKind.ALTERED,
                f"{problem}: the entry was changed",
                seq=seq,
                id=row.id,
                event_id=row.event_id if type(row.event_id) is str else None,
                writer_id=row.writer_id if type(row.writer_id) is str else None,
            )
        )
        if seq is not None:  # it holds its place in the chain: the rows after it link to it
            self._entries += 1
            self._expected_seq = max(self._expected_seq, seq + 1)
            self._expected_prev = row.entry_hash if type(row.entry_hash) is str else ""
            self._last_seq = seq

    def _check_link(self, row: StoredRow) -> None:
        assert row.seq is not None
        if row.seq > self._expected_seq:
            missing = row.seq - self._expected_seq
            span = f"{self._expected_seq}" + (f"..{row.seq - 1}" if missing > 1 else "")
            # Located by the (first) missing seq, and by the row after the hole (id, event).
            self.report(
                FindingKind.DELETED,
                f"{missing} entr{'y' if missing == 1 else 'ies'} deleted: seq {span} is"
                f" missing before id {row.id} (seq {row.seq})",
                row,
                seq=self._expected_seq,
            )
        elif row.seq < self._expected_seq:
            self.report(
                FindingKind.REORDERED,
                f"seq {row.seq} comes after seq {self._expected_seq - 1} in commit (id) order:"
                " entries were moved, or this seq was changed",
                row,
            )
        elif row.prev_hash != self._expected_prev:
            self.report(
                FindingKind.INSERTED,
                "prev_hash does not match the entry before it: an entry was inserted or"
                " moved here, or the one before was rewritten with a new hash",
                row,
            )

    def _check_hash(self, row: StoredRow) -> None:
        assert row.seq is not None
        header = canonical_header(
            seq=row.seq,
            event_id=row.event_id,
            event_type=row.event_type,
            actor=row.actor,
            resource=row.resource,
            details=row.details,
            correlation_id=row.correlation_id,
            created_at=row.created_at,
            writer_id=row.writer_id,
            writer_seq=row.writer_seq,
        )
        prev = row.prev_hash if row.prev_hash is not None and _is_hex64(row.prev_hash) else None
        if prev is None or row.entry_hash != entry_hash(prev, header):
            self.report(
                FindingKind.ALTERED,
                "the stored fields do not match the entry hash: the entry was changed",
                row,
            )
            return
        if (
            self._jsonb
            and row.details_json is None
            and row.writer_id is not None
            and jsonb_can_hold(row.details)
        ):
            self.report(
                FindingKind.ALTERED,
                "details_json (PostgreSQL's JSONB copy, used by queries) was emptied",
                row,
            )
        elif row.details_json is not None and not _same_json(row.details, row.details_json):
            self.report(
                FindingKind.ALTERED,
                "details_json (PostgreSQL's JSONB copy, used by queries) differs from the"
                " hashed details: it was changed",
                row,
            )
        if self._key is None:
            if row.hmac is not None:
                self._unkeyed_macs += 1
            return
        if row.hmac is None:
            self.report(FindingKind.ALTERED, "the entry has no HMAC (keyed mode)", row)
        elif not (  # compare_digest raises on non-ASCII text: only a digest is compared
            _is_hex64(row.hmac)
            and _hmac.compare_digest(row.hmac, entry_hmac(self._key, row.entry_hash))
        ):
            self.report(
                FindingKind.ALTERED,
                "the HMAC does not match: the entry was rewritten without the key",
                row,
            )

    def _account(self, row: StoredRow) -> None:
        writer_id, number = row.writer_id, row.writer_seq
        assert writer_id is not None
        assert number is not None
        assert row.seq is not None
        writer = self._writers.get(writer_id)
        if writer is None:
            # A writer seen first after a purge may have begun before the purged prefix.
            start = number if self._purged else 1
            writer = self._writers[writer_id] = _Writer(start, row.seq)
        if writer.closed_at is not None and not _in(writer.missing, number):
            # (A hole filled after writer.closed is a replay, checked as late at the end.)
            writer.suspects.append(("an entry of a writer after its writer.closed", number, row))
        if number == writer.next_seq:
            writer.next_seq += 1
        elif number > writer.next_seq:
            writer.missing.append([writer.next_seq, number - 1])
            writer.next_seq = number + 1
        elif _in(writer.missing, number):
            _remove(writer.missing, number)
            writer.late.append((number, row))  # a replay, if declared (checked at the end)
        else:
            writer.suspects.append(
                (f"writer_seq {number} appears twice for this writer", number, row)
            )
        writer.last_row = row
        kind = row.event_type
        if kind == SystemEventType.WRITER_OPENED:
            writer.opened = True
        elif kind == SystemEventType.WRITER_CLOSED:
            writer.closed_at = number
            # A closed writer keeps only where it ended, not its last row's contents:
            # a trail of many short-lived writers then costs little memory each.
            writer.last_row = _Place(row.id, row.seq, row.event_id, writer_id, number)
        elif kind in (SystemEventType.WRITER_DROPPED, SystemEventType.WRITER_SPOOLED):
            details = _details(row.details)
            if kind == SystemEventType.WRITER_DROPPED:
                count = details.get("count")
                writer.dropped += count if type(count) is int and count > 0 else 0
            else:
                for pair in details.get("writer_seqs") or ():
                    if (
                        isinstance(pair, list)
                        and len(pair) == 2
                        and all(type(n) is int for n in pair)
                    ):
                        writer.declared.append([pair[0], pair[1]])

    def _note_replay(self, row: StoredRow) -> None:
        writers = _details(row.details).get("writers")
        if not isinstance(writers, dict):
            return
        for writer_id, ranges in writers.items():
            for pair in ranges if isinstance(ranges, list) else ():
                if isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair):
                    self._replayed.setdefault(writer_id, []).append([pair[0], pair[1]])

    def _note_import(self, row: StoredRow) -> None:
        assert row.seq is not None
        details = _details(row.details)
        key = details.get("import_id")
        first, last, count, source = (
            details.get(name) for name in ("first_seq", "last_seq", "count", "source")
        )
        first = first if type(first) is int else row.seq
        last = last if type(last) is int else row.seq
        count = count if type(count) is int and count > 0 else 0
        known = self._imports.get(key if isinstance(key, str) else row.event_id)
        if known is None:
            self._imports[key if isinstance(key, str) else row.event_id] = _Import(
                first, last, count, source if isinstance(source, str) else "?", row.created_at
            )
            return
        known.first_seq = min(known.first_seq, first)
        known.last_seq = max(known.last_seq, last)
        known.count += count
        known.started = min(known.started, row.created_at)

    # -- the end ---------------------------------------------------------------------

    def finish(self, *, head_seq: int | None, head_hash: str | None = None) -> VerifyReport:
        """Close the checks: the end of the chain, checkpoints, writers; the report.

        ``head_seq`` and ``head_hash``: the head row, read in the same snapshot as the
        last id of the rows fed (None: the head row is missing).
        """
        last = self._expected_seq - 1
        if head_seq == last and head_hash is not None and head_hash != self._head_hash:
            self.report(
                FindingKind.ALTERED,
                "the chain head's hash is not the last entry's: the last entry was rewritten"
                " with a new hash (or the head row was changed)",
                seq=last,
            )
        if head_seq is None:
            self.report(
                FindingKind.ALTERED,
                "the chain head row (audit_chain id 1) is missing or unreadable",
            )
        elif head_seq > last:
            self.report(
                FindingKind.TRUNCATED,
                f"the chain head says seq {head_seq}, the trail ends at {last}:"
                f" {head_seq - last} entries were removed from the end",
                seq=last + 1,
            )
        elif head_seq < last:
            self.report(
                FindingKind.INSERTED,
                f"entries after the chain head (seq {head_seq}): appended outside a writer,"
                " or the head row was set back",
                seq=head_seq + 1,
            )
        for writer_id, writer in self._writers.items():
            self._finish_writer(writer_id, writer)
        foreign = self._finish_checkpoints(last)
        if self._unkeyed_macs:
            return VerifyReport.unverifiable(
                f"{self._unkeyed_macs} entries carry an HMAC and no key was given: the chain"
                " cannot be verified without it (--key-env VAR, or CLEVERAGENTS_AUDIT_HMAC_KEY)"
            )
        worst = VerifyStatus.INTACT
        for finding_kind, _ in self._counts.items():
            status = _SEVERITY[FindingKind(finding_kind)]
            if _RANK[status] > _RANK.get(worst, 0):
                worst = status
        return VerifyReport(
            status=VerifyStatus.UNVERIFIABLE if foreign else worst,
            findings=tuple(self._findings),
            counts=dict(self._counts),
            entries=self._entries,
            first_seq=self._first_seq,
            last_seq=self._last_seq,
            head_hash=self._head_hash,
            writers=len(self._writers),
            hmac_checked=self._key is not None,
            checkpoints=len(self._checkpoints),
            error=self._foreign_message(foreign) if foreign else None,
        )

    def _finish_checkpoints(self, last: int) -> list[Checkpoint]:
        """Report the checkpoints that do not match; those of another chain are returned.

        A checkpoint is taken for one of the chain a re-chaining import brought entries
        from when it is older than that import and its hash is nowhere in this chain:
        then, unless the trail shows tampering anyway, the report says it could not be
        checked (exit 4). Any other one that does not match is tampering.
        """
        unmatched: list[tuple[Checkpoint, _Place | None]] = [*self._mismatched]
        unmatched += [(cp, None) for cp in self._checkpoints.values() if cp.seq > last]
        foreign = [cp for cp, _ in unmatched if self._of_another_chain(cp)]
        tampered = any(
            _SEVERITY[FindingKind(kind)] is VerifyStatus.TAMPERED for kind in self._counts
        )
        clause = _OTHER_CHAIN if self._imports else ""
        for checkpoint, place in sorted(unmatched, key=lambda pair: pair[0].seq):
            if checkpoint in foreign and not tampered:
                continue
            moment = checkpoint.time.isoformat()
            if place is not None:
                self.report(
                    FindingKind.ALTERED,
                    f"the entry hash differs from the checkpoint of {moment}:"
                    f" history up to it was rewritten{clause}",
                    place,
                )
            else:
                self.report(
                    FindingKind.TRUNCATED,
                    f"the checkpoint of {moment} is at seq {checkpoint.seq}, the trail ends"
                    f" at {last}: entries after {last} were removed{clause}",
                    seq=checkpoint.seq,
                )
        return [] if tampered else foreign

    def _of_another_chain(self, checkpoint: Checkpoint) -> bool:
        return checkpoint.entry_hash not in self._hashes_found and any(
            checkpoint.time < declared.started for declared in self._imports.values()
        )

    def _foreign_message(self, checkpoints: list[Checkpoint]) -> str:
        imports = sorted(self._imports.values(), key=lambda declared: declared.first_seq)
        named = "; ".join(declared.describe() for declared in imports[:_NAMED])
        more = f"; and {len(imports) - _NAMED} more imports" if len(imports) > _NAMED else ""
        points = ", ".join(
            f"{cp.time.isoformat()} (seq {cp.seq})"
            for cp in sorted(checkpoints, key=lambda cp: cp.seq)[:_NAMED]
        )
        if len(checkpoints) > _NAMED:
            points += f" and {len(checkpoints) - _NAMED} more"
        return (
            f"this trail holds entries imported from another chain ({named}{more}): the"
            f" checkpoint{'s' if len(checkpoints) > 1 else ''} of {points}, taken before the"
            " import and matching no entry here, belong"
            f"{'' if len(checkpoints) > 1 else 's'} to the source chain and cannot be checked"
            " against this one. Checkpoints of this trail are those taken after the import"
            " (cleveragents-audit checkpoint); to keep a source checkpoint verifiable, move"
            " the trail with export --chain"
        )

    def _finish_writer(self, writer_id: str, writer: _Writer) -> None:
        replayed = self._replayed.get(writer_id, [])
        for message, number, row in writer.suspects:
            if not _in(replayed, number):
                self.report(FindingKind.INSERTED, message, row)
        for number, row in writer.late:
            if not _in(writer.declared, number) and not _in(replayed, number):
                self.report(
                    FindingKind.REORDERED,
                    f"writer_seq {number} comes after later entries of its writer and was not"
                    " declared spooled: entries were moved",
                    row,
                )
        covered, uncovered = _subtract(writer.missing, writer.declared)
        last = writer.last_row
        if uncovered:
            holes = ", ".join(
                f"{first}" if first == end else f"{first}..{end}"
                for first, end in writer.missing[:5]
            )
            self.report(
                FindingKind.WRITER_GAP,
                f"{uncovered} writer_seq numbers of this writer are missing ({holes}):"
                " entries it accepted never reached the trail",
                seq=last.seq if last else None,
                writer_id=writer_id,
            )
        if covered:
            self.report(
                FindingKind.SPOOLED,
                f"{covered} entries this writer declared spooled are not in the trail:"
                " replay the spool (cleveragents-audit replay)",
                seq=last.seq if last else None,
                writer_id=writer_id,
            )
        if writer.dropped:
            self.report(
                FindingKind.DROPPED,
                f"this writer declared {writer.dropped} entries refused on overflow",
                seq=last.seq if last else None,
                writer_id=writer_id,
            )
        if writer.closed_at is None and writer_id != self._own and last is not None:
            self.report(
                FindingKind.UNTERMINATED_WRITER,
                f"no writer.closed: the writer stopped (or is still running) after writer_seq"
                f" {last.writer_seq} at seq {last.seq}; entries it accepted after that may be"
                " lost",
                last,
            )


_TEXT_FIELDS = ("event_id", "event_type", "details")
_OPTIONAL_TEXT_FIELDS = (
    "actor",
    "resource",
    "correlation_id",
    "writer_id",
    "prev_hash",
    "entry_hash",
    "hmac",
)


def _malformed(row: StoredRow) -> str | None:
    """What in ``row`` is not of its column's type (a blob, a number, text that is no time)."""
    for name in _TEXT_FIELDS:
        if type(getattr(row, name)) is not str:
            return f"{name} is not text"
    for name in _OPTIONAL_TEXT_FIELDS:
        value = getattr(row, name)
        if value is not None and type(value) is not str:
            return f"{name} is not text"
    for name in ("seq", "writer_seq"):
        value = getattr(row, name)
        if value is not None and type(value) is not int:
            return f"{name} is not an integer"
    moment = row.created_at
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        return "created_at is not a time"
    return None


def _details(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _same_json(text: str, copy: str) -> bool:
    """True when two JSON texts hold the same value (numbers compared exactly, as JSONB does).

    Fast path: the copy, re-encoded canonically, is the text itself. Else (JSONB writes
    1e16 as 10000000000000000, say) both are parsed with exact decimals and compared.
    """
    try:
        if orjson.dumps(orjson.loads(copy), option=orjson.OPT_SORT_KEYS) == text.encode():
            return True
    except (orjson.JSONDecodeError, TypeError):
        pass
    try:
        return bool(
            json.loads(text, parse_float=Decimal, parse_int=Decimal)
            == json.loads(copy, parse_float=Decimal, parse_int=Decimal)
        )
    except ValueError:
        return False


def _is_hex64(text: str) -> bool:
    if len(text) != 64:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
