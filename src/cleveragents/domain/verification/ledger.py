"""The writers' ledger: per-writer accounting of ``writer_seq``, declarations, replays, imports.

Fed every row of the chain in order (by the verifier), it keeps per writer its next
expected ``writer_seq``, holes, declarations and last row: memory grows with the
number of writers, not of entries. At the end it reports what the writers'
numbering shows: holes (declared spooled or not), declared drops, rows moved or
repeated, writers that never closed. It also gathers the ``trail.imported``
declarations, which the verifier needs to judge checkpoints of another chain.
The details of every system entry are read through
:mod:`cleveragents.domain.system_entries`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.system_entries import (
    DroppedDetails,
    ImportedDetails,
    ReplayedDetails,
    SpooledDetails,
)
from cleveragents.domain.verification.report import FindingKind
from cleveragents.domain.verification.stored import Place, StoredRow

__all__ = ["Reporter", "WriterLedger"]

#: The writer's own entries the ledger reads (``writer.opened`` says nothing it needs).
_WRITER_KINDS = frozenset(
    kind.value
    for kind in (
        SystemEventType.WRITER_CLOSED,
        SystemEventType.WRITER_DROPPED,
        SystemEventType.WRITER_SPOOLED,
    )
)


class Reporter(Protocol):
    """Where the ledger's findings go: the verifier's ``report``."""

    def __call__(
        self,
        kind: FindingKind,
        message: str,
        row: StoredRow | Place | None = None,
        *,
        seq: int | None = None,
        writer_id: str | None = None,
    ) -> None:
        """Add a finding."""


# -- range arithmetic on [first, last] runs (both included) ------------------------------


def _in(ranges: Iterable[list[int]], number: int) -> bool:
    """True when ``number`` is in one of ``ranges``."""
    return any(first <= number <= last for first, last in ranges)


def _remove(ranges: list[list[int]], number: int) -> None:
    """Take ``number`` out of ``ranges`` (splitting its run in two), in place."""
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


@dataclass(slots=True)
class _Writer:
    """What the ledger keeps of one writer while the rows are fed."""

    next_seq: int  # the writer_seq expected next
    missing: list[list[int]] = field(default_factory=list)  # [first, last] holes
    declared: list[list[int]] = field(default_factory=list)  # writer.spooled ranges
    late: list[tuple[int, StoredRow]] = field(default_factory=list)  # filled holes
    # Rows after writer.closed, and writer_seqs seen twice: fine only if a replay
    # (spool.replayed) declares them; judged at the end, when every declaration is known.
    suspects: list[tuple[str, int, StoredRow]] = field(default_factory=list)
    closed_at: int | None = None  # writer_seq of writer.closed
    dropped: int = 0
    last_row: StoredRow | Place | None = None

    def take(self, number: int, row: StoredRow) -> None:
        """Place ``row``, this writer's ``writer_seq`` ``number``, in its numbering."""
        if self.closed_at is not None and not _in(self.missing, number):
            # (A hole filled after writer.closed is a replay, checked as late at the end.)
            self.suspects.append(("an entry of a writer after its writer.closed", number, row))
        if number == self.next_seq:
            self.next_seq += 1
        elif number > self.next_seq:
            self.missing.append([self.next_seq, number - 1])
            self.next_seq = number + 1
        elif _in(self.missing, number):
            _remove(self.missing, number)
            self.late.append((number, row))  # a replay, if declared (checked at the end)
        else:
            self.suspects.append(
                (f"writer_seq {number} appears twice for this writer", number, row)
            )
        self.last_row = row

    def note(self, number: int, row: StoredRow) -> None:
        """Read one of the writer's own entries (one of :data:`_WRITER_KINDS`)."""
        kind = row.event_type
        if kind == SystemEventType.WRITER_CLOSED:
            self.closed_at = number
            # A closed writer keeps only where it ended, not its last row's contents:
            # a trail of many short-lived writers then costs little memory each.
            self.last_row = Place.of(row)
        elif kind == SystemEventType.WRITER_DROPPED:
            self.dropped += DroppedDetails.parse(row.details).count
        elif kind == SystemEventType.WRITER_SPOOLED:
            spooled = SpooledDetails.parse(row.details).writer_seqs
            self.declared.extend([first, last] for first, last in spooled)


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


class WriterLedger:
    """Accounts for every writer's rows, fed in chain order; :meth:`finish` reports.

    ``purged``: the chain's beginning was purged (a writer seen first may have begun
    before it). ``own_writer_id``: a writer still open in the verifying service
    itself, not reported as unterminated.
    """

    def __init__(self, report: Reporter, *, purged: bool, own_writer_id: str | None) -> None:
        self._report = report
        self._purged = purged
        self._own = own_writer_id
        self._writers: dict[str, _Writer] = {}
        # writer_id -> writer_seq ranges that replays (spool.replayed) declare re-appended.
        self._replayed: dict[str, list[list[int]]] = {}
        self._imports: dict[str, _Import] = {}  # import_id -> its declarations, together

    @property
    def writers(self) -> int:
        """How many writers the rows fed name."""
        return len(self._writers)

    @property
    def imported(self) -> bool:
        """True when the trail declares a re-chaining import (``trail.imported``)."""
        return bool(self._imports)

    def feed(self, row: StoredRow) -> None:
        """Account for one row of the chain (with a ``seq``, well formed)."""
        writer_id, number = row.writer_id, row.writer_seq
        if writer_id is not None and number is not None:
            writer = self._writers.get(writer_id)
            if writer is None:
                writer = self._first_seen(writer_id, number)
            writer.take(number, row)
            if row.event_type in _WRITER_KINDS:
                writer.note(number, row)
        elif row.event_type == SystemEventType.SPOOL_REPLAYED:
            self._note_replay(row)
        elif row.event_type == SystemEventType.TRAIL_IMPORTED:
            self._note_import(row)

    def _first_seen(self, writer_id: str, number: int) -> _Writer:
        # A writer seen first after a purge may have begun before the purged prefix.
        writer = self._writers[writer_id] = _Writer(number if self._purged else 1)
        return writer

    def _note_replay(self, row: StoredRow) -> None:
        for writer_id, ranges in ReplayedDetails.parse(row.details).writers.items():
            for first, last in ranges:
                self._replayed.setdefault(writer_id, []).append([first, last])

    def _note_import(self, row: StoredRow) -> None:
        assert row.seq is not None
        declared = ImportedDetails.parse(row.details)
        first = declared.first_seq if declared.first_seq is not None else row.seq
        last = declared.last_seq if declared.last_seq is not None else row.seq
        key = declared.import_id if declared.import_id is not None else row.event_id
        known = self._imports.get(key)
        if known is None:
            source = declared.source if declared.source is not None else "?"
            self._imports[key] = _Import(first, last, declared.count, source, row.created_at)
            return
        known.first_seq = min(known.first_seq, first)
        known.last_seq = max(known.last_seq, last)
        known.count += declared.count
        known.started = min(known.started, row.created_at)

    # -- imports ---------------------------------------------------------------------

    def imported_after(self, moment: datetime) -> bool:
        """True when an import declared in the trail began after ``moment``."""
        return any(moment < declared.started for declared in self._imports.values())

    def describe_imports(self, named: int) -> str:
        """The imports, oldest seq first: the first ``named`` in full, the rest counted."""
        imports = sorted(self._imports.values(), key=lambda declared: declared.first_seq)
        text = "; ".join(declared.describe() for declared in imports[:named])
        return text + (f"; and {len(imports) - named} more imports" if len(imports) > named else "")

    # -- the end ---------------------------------------------------------------------

    def finish(self) -> None:
        """Report what each writer's numbering shows, now that every declaration is known."""
        for writer_id, writer in self._writers.items():
            self._judge_order(writer_id, writer)
            self._judge_holes(writer_id, writer)

    def _judge_order(self, writer_id: str, writer: _Writer) -> None:
        """Rows after writer.closed, repeated or late: fine only when declared."""
        replayed = self._replayed.get(writer_id, [])
        for message, number, row in writer.suspects:
            if not _in(replayed, number):
                self._report(FindingKind.INSERTED, message, row)
        for number, row in writer.late:
            if not _in(writer.declared, number) and not _in(replayed, number):
                self._report(
                    FindingKind.REORDERED,
                    f"writer_seq {number} comes after later entries of its writer and was not"
                    " declared spooled: entries were moved",
                    row,
                )

    def _judge_holes(self, writer_id: str, writer: _Writer) -> None:
        """Holes (declared spooled or not), declared drops, and a missing writer.closed."""
        covered, uncovered = _subtract(writer.missing, writer.declared)
        last = writer.last_row
        seq = last.seq if last else None
        if uncovered:
            holes = ", ".join(
                f"{first}" if first == end else f"{first}..{end}"
                for first, end in writer.missing[:5]
            )
            self._report(
                FindingKind.WRITER_GAP,
                f"{uncovered} writer_seq numbers of this writer are missing ({holes}):"
                " entries it accepted never reached the trail",
                seq=seq,
                writer_id=writer_id,
            )
        if covered:
            self._report(
                FindingKind.SPOOLED,
                f"{covered} entries this writer declared spooled are not in the trail:"
                " replay the spool (cleveragents-audit replay)",
                seq=seq,
                writer_id=writer_id,
            )
        if writer.dropped:
            self._report(
                FindingKind.DROPPED,
                f"this writer declared {writer.dropped} entries refused on overflow",
                seq=seq,
                writer_id=writer_id,
            )
        if writer.closed_at is None and writer_id != self._own and last is not None:
            self._report(
                FindingKind.UNTERMINATED_WRITER,
                f"no writer.closed: the writer stopped (or is still running) after writer_seq"
                f" {last.writer_seq} at seq {last.seq}; entries it accepted after that may be"
                " lost",
                last,
            )
