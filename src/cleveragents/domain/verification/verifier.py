"""The verifier: links, hashes, HMACs and checkpoints of the chain, fed row by row.

:class:`ChainVerifier` is fed the stored rows in ``id`` order, which is commit
order and must be ``seq`` order (by ``persistence/verify.py``, which pages
through the database). It keeps the previous row; the writers' numbering is
accounted for by its :class:`~cleveragents.domain.verification.ledger.WriterLedger`.
Memory grows with the number of writers, not of entries. The findings and exit
codes are described in :mod:`cleveragents.domain.verification.report`.

A checkpoint that does not match gives exit code 4 (could not verify) rather than
1 when it is older than a re-chaining import this trail declares
(``trail.imported``) and its hash is nowhere in this chain: it is then taken for a
checkpoint of the chain the entries were imported from (unless the trail shows
tampering anyway, which is then reported as such).
"""

from __future__ import annotations

import hmac as _hmac
from collections.abc import Iterable

from cleveragents.domain.chain import GENESIS_HASH, entry_hash, entry_hmac, header_of
from cleveragents.domain.details import jsonb_can_hold
from cleveragents.domain.verification.ledger import WriterLedger
from cleveragents.domain.verification.report import (
    MAX_FINDINGS,
    Checkpoint,
    Finding,
    FindingKind,
    VerifyReport,
    VerifyStatus,
    is_tampering,
    worst_status,
)
from cleveragents.domain.verification.stored import (
    Place,
    StoredRow,
    is_hex64,
    malformed,
    same_json,
)

__all__ = ["ChainVerifier"]

#: The other reading of a checkpoint that does not match, on a trail that declares a
#: re-chaining import (the hashes cannot tell them apart).
_OTHER_CHAIN = (
    ", or the checkpoint belongs to another chain (this trail holds entries imported"
    " without export --chain, which are new links: their source's checkpoints do not apply)"
)
#: Imports and checkpoints named in full in the could-not-verify message.
_NAMED = 3


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
        self._mismatched: list[tuple[Checkpoint, Place]] = []
        self._jsonb = jsonb_copies  # PostgreSQL: writers fill details_json on every row
        self._purged = purged or start_seq > 1
        self._start_seq = start_seq
        self._ledger = WriterLedger(self.report, purged=self._purged, own_writer_id=own_writer_id)
        self._findings: list[Finding] = []
        self._counts: dict[str, int] = {}
        self._entries = 0
        self._first_seq: int | None = None
        self._last_seq: int | None = None
        self._head_hash: str | None = None
        self._unkeyed_macs = 0

    # -- findings --------------------------------------------------------------------

    def report(
        self,
        kind: FindingKind,
        message: str,
        row: StoredRow | Place | None = None,
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
        problem = malformed(row)
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
            self._mismatched.append((checkpoint, Place.of(row)))
        if row.entry_hash in self._checkpoint_hashes:
            self._hashes_found.add(row.entry_hash)
        self._ledger.feed(row)
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
        header = header_of(row.seq, row)
        prev = row.prev_hash if row.prev_hash is not None and is_hex64(row.prev_hash) else None
        if prev is None or row.entry_hash != entry_hash(prev, header):
            self.report(
                FindingKind.ALTERED,
                "the stored fields do not match the entry hash: the entry was changed",
                row,
            )
            return
        # Each applies only on PostgreSQL, or with an HMAC: no call for a plain SQLite row.
        if self._jsonb or row.details_json is not None:
            self._check_copy(row)
        if self._key is not None or row.hmac is not None:
            self._check_hmac(row)

    def _check_copy(self, row: StoredRow) -> None:
        """PostgreSQL's JSONB copy of details: present where it can be, and the same value."""
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
        elif row.details_json is not None and not same_json(row.details, row.details_json):
            self.report(
                FindingKind.ALTERED,
                "details_json (PostgreSQL's JSONB copy, used by queries) differs from the"
                " hashed details: it was changed",
                row,
            )

    def _check_hmac(self, row: StoredRow) -> None:
        assert row.entry_hash is not None  # its hash matched
        if self._key is None:
            if row.hmac is not None:
                self._unkeyed_macs += 1
            return
        if row.hmac is None:
            self.report(FindingKind.ALTERED, "the entry has no HMAC (keyed mode)", row)
        elif not (  # compare_digest raises on non-ASCII text: only a digest is compared
            is_hex64(row.hmac)
            and _hmac.compare_digest(row.hmac, entry_hmac(self._key, row.entry_hash))
        ):
            self.report(
                FindingKind.ALTERED,
                "the HMAC does not match: the entry was rewritten without the key",
                row,
            )

    def finish(self, *, head_seq: int | None, head_hash: str | None = None) -> VerifyReport:
        """Close the checks: the end of the chain, checkpoints, writers; the report.

        ``head_seq`` and ``head_hash``: the head row, read in the same snapshot as the
        last id of the rows fed (None: the head row is missing).
        """
        last = self._expected_seq - 1
        self._check_head(last, head_seq, head_hash)
        self._ledger.finish()
        foreign = self._finish_checkpoints(last)
        if self._unkeyed_macs:
            return VerifyReport.unverifiable(
                f"{self._unkeyed_macs} entries carry an HMAC and no key was given: the chain"
                " cannot be verified without it (--key-env VAR, or CLEVERAGENTS_AUDIT_HMAC_KEY)"
            )
        return VerifyReport(
            status=VerifyStatus.UNVERIFIABLE if foreign else worst_status(self._counts),
            findings=tuple(self._findings),
            counts=dict(self._counts),
            entries=self._entries,
            first_seq=self._first_seq,
            last_seq=self._last_seq,
            head_hash=self._head_hash,
            writers=self._ledger.writers,
            hmac_checked=self._key is not None,
            checkpoints=len(self._checkpoints),
            error=self._foreign_message(foreign) if foreign else None,
        )

    def _check_head(self, last: int, head_seq: int | None, head_hash: str | None) -> None:
        """The head row against the trail's last entry (seq ``last``)."""
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

    def _finish_checkpoints(self, last: int) -> list[Checkpoint]:
        """Report the checkpoints that do not match; those of another chain are returned.

        A checkpoint is taken for one of the chain a re-chaining import brought entries
        from when it is older than that import and its hash is nowhere in this chain:
        then, unless the trail shows tampering anyway, the report says it could not be
        checked (exit 4). Any other one that does not match is tampering.
        """
        unmatched: list[tuple[Checkpoint, Place | None]] = [*self._mismatched]
        unmatched += [(cp, None) for cp in self._checkpoints.values() if cp.seq > last]
        foreign = [cp for cp, _ in unmatched if self._of_another_chain(cp)]
        tampered = is_tampering(self._counts)
        clause = _OTHER_CHAIN if self._ledger.imported else ""
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
        return checkpoint.entry_hash not in self._hashes_found and self._ledger.imported_after(
            checkpoint.time
        )

    def _foreign_message(self, checkpoints: list[Checkpoint]) -> str:
        imports = self._ledger.describe_imports(_NAMED)
        points = ", ".join(
            f"{cp.time.isoformat()} (seq {cp.seq})"
            for cp in sorted(checkpoints, key=lambda cp: cp.seq)[:_NAMED]
        )
        if len(checkpoints) > _NAMED:
            points += f" and {len(checkpoints) - _NAMED} more"
        return (
            f"this trail holds entries imported from another chain ({imports}): the"
            f" checkpoint{'s' if len(checkpoints) > 1 else ''} of {points}, taken before the"
            " import and matching no entry here, belong"
            f"{'' if len(checkpoints) > 1 else 's'} to the source chain and cannot be checked"
            " against this one. Checkpoints of this trail are those taken after the import"
            " (cleveragents-audit checkpoint); to keep a source checkpoint verifiable, move"
            " the trail with export --chain"
        )
