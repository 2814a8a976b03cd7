"""The writers' ledger through ChainVerifier: gaps, declarations, replays, closing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cleveragents.domain.verification import FindingKind
from tests.domain.verification.support import (
    CLOSED,
    DROPPED,
    OPENED,
    SPOOLED,
    V,
    W,
    chain,
    kinds,
    numbered,
    only,
    run,
    seal,
    writer_session,
)

# -- writer accounting ---------------------------------------------------------------------


def test_a_writer_without_writer_closed_is_unterminated() -> None:
    """Exit 2, named by its last row."""
    rows = chain(writer_session(W, ["tool.invoked"] * 2, closed=False))
    finding = only(run(rows), FindingKind.UNTERMINATED_WRITER)
    assert (finding.seq, finding.id, finding.writer_id) == (3, 30, W)
    assert "after writer_seq 3 at seq 3" in finding.message
    assert run(rows).exit_code == 2


def test_the_verifying_services_own_writer_is_exempt() -> None:
    """own_writer_id: the open writer of the verifying service is not unterminated."""
    rows = chain(
        writer_session(W, ["tool.invoked"], closed=False)
        + writer_session(V, ["tool.invoked"], closed=False)
    )
    assert run(chain(writer_session(W, [], closed=False)), own_writer_id=W).intact
    finding = only(run(rows, own_writer_id=W), FindingKind.UNTERMINATED_WRITER)
    assert finding.writer_id == V


def test_a_hole_in_writer_seq_is_a_writer_gap() -> None:
    """An accepted entry that never reached the trail: exit 2, with the missing numbers."""
    rows = chain(numbered(W, [(1, OPENED), (2, "tool.invoked"), (4, "tool.invoked"), (5, CLOSED)]))
    finding = only(run(rows), FindingKind.WRITER_GAP)
    assert finding.writer_id == W
    assert finding.seq == 4  # the writer's last row
    assert "1 writer_seq numbers" in finding.message
    assert "(3)" in finding.message
    assert run(rows).exit_code == 2


def test_several_holes_are_listed() -> None:
    """Holes 2..3 and 5: three numbers missing."""
    rows = chain(numbered(W, [(1, OPENED), (4, "tool.invoked"), (6, CLOSED)]))
    finding = only(run(rows), FindingKind.WRITER_GAP)
    assert "3 writer_seq numbers" in finding.message
    assert "(2..3, 5)" in finding.message


def spooled(first: int, last: int) -> dict[str, Any]:
    """The details of a ``writer.spooled`` declaration."""
    return {"writer_seqs": [[first, last]], "spool": "/tmp/spool.jsonl", "error": "down"}


def test_entries_declared_spooled_and_not_replayed_are_declared_drops() -> None:
    """A hole the writer declared spooled: exit 3, replay them."""
    rows = chain(
        numbered(
            W,
            [
                (1, OPENED),
                (2, "tool.invoked"),
                (5, SPOOLED, spooled(3, 4)),
                (6, "tool.invoked"),
                (7, CLOSED),
            ],
        )
    )
    report = run(rows)
    finding = only(report, FindingKind.SPOOLED)
    assert finding.writer_id == W
    assert "2 entries" in finding.message
    assert report.exit_code == 3


def test_a_partly_declared_hole_is_both_a_gap_and_spooled() -> None:
    """Declared numbers are spooled (3); the undeclared rest is a gap (2), which decides."""
    rows = chain(numbered(W, [(1, OPENED), (5, SPOOLED, spooled(3, 4)), (6, CLOSED)]))
    report = run(rows)
    assert sorted(kinds(report)) == sorted([FindingKind.SPOOLED, FindingKind.WRITER_GAP])
    assert report.exit_code == 2


@pytest.mark.parametrize("after_close", [False, True], ids=["before-close", "after-close"])
def test_a_declared_spooled_entry_replayed_late_is_intact(after_close: bool) -> None:
    """A replay appends the spooled entry later, out of order; the declaration covers it."""
    plan: list[tuple[int, str] | tuple[int, str, Any]] = [
        (1, OPENED),
        (2, "tool.invoked"),
        (4, SPOOLED, spooled(3, 3)),
        (5, "tool.invoked"),
    ]
    replayed = (3, "tool.invoked")
    plan += [(6, CLOSED), replayed] if after_close else [replayed, (6, CLOSED)]
    report = run(chain(numbered(W, plan)))
    assert report.intact, report.findings


def test_a_late_entry_that_was_not_declared_is_reordered() -> None:
    """writer_seq out of order with no declaration: the entry was moved, exit 1."""
    rows = chain(
        numbered(W, [(1, OPENED), (2, "tool.invoked"), (4, "tool.invoked"), (3, "tool.invoked")])
        + numbered(W, [(5, CLOSED)])
    )
    finding = only(run(rows), FindingKind.REORDERED)
    assert finding.seq == 4  # the row with writer_seq 3
    assert "writer_seq 3" in finding.message


def test_a_repeated_writer_seq_is_inserted() -> None:
    """The same writer_seq twice for a writer: INSERTED."""
    rows = chain(numbered(W, [(1, OPENED), (2, "tool.invoked"), (2, "tool.invoked"), (3, CLOSED)]))
    finding = only(run(rows), FindingKind.INSERTED)
    assert finding.seq == 3
    assert "appears twice" in finding.message


def test_an_entry_after_writer_closed_is_inserted() -> None:
    """A writer's new entry after its writer.closed was not appended by it."""
    rows = chain(numbered(W, [(1, OPENED), (2, CLOSED), (3, "tool.invoked")]))
    finding = only(run(rows), FindingKind.INSERTED)
    assert (finding.seq, finding.writer_id) == (3, W)


def test_declared_drops_are_summed() -> None:
    """writer.dropped counts add up: exit 3; malformed counts are not counted."""
    rows = chain(
        writer_session(
            W,
            [
                (DROPPED, {"count": 3}),
                (DROPPED, {"count": 4}),
                (DROPPED, {"count": True}),
                (DROPPED, {"count": -2}),
                (DROPPED, {"count": "9"}),
            ],
        )
    )
    report = run(rows)
    finding = only(report, FindingKind.DROPPED)
    assert "declared 7 entries" in finding.message
    assert finding.writer_id == W
    assert report.exit_code == 3


def test_malformed_declarations_do_not_crash_the_verifier() -> None:
    """Spooled ranges that are not pairs of ints, and details that are not objects, are ignored."""
    rows = chain(
        numbered(
            W,
            [
                (1, OPENED),
                (3, SPOOLED, {"writer_seqs": [[2], ["2", "2"], [2, 2.0], 7, None]}),
                (4, DROPPED, [1, 2]),
                (5, CLOSED),
            ],
        )
    )
    rows[2] = seal(replace(rows[2], details="not json"), None)
    rows[3] = seal(replace(rows[3], prev_hash=rows[2].entry_hash), None)
    report = run(rows)
    assert kinds(report) == [FindingKind.WRITER_GAP]


@pytest.mark.parametrize("writer_seqs", [5, True, 1.5, "2-3", {"2": 3}])
def test_spooled_ranges_that_are_not_a_list_do_not_crash_the_verifier(writer_seqs: Any) -> None:
    """A writer.spooled whose writer_seqs is not a list is ignored (it raised TypeError before)."""
    rows = chain(
        numbered(W, [(1, OPENED), (3, SPOOLED, {"writer_seqs": writer_seqs}), (4, CLOSED)])
    )
    report = run(rows)
    assert kinds(report) == [FindingKind.WRITER_GAP]


def test_a_writer_first_seen_after_a_purge_may_start_anywhere() -> None:
    """After a purge a writer's earlier entries are gone by design: no gap before its first."""
    prev = "12" * 32
    rows = chain(numbered(W, [(7, "tool.invoked"), (8, CLOSED)]), start_seq=30, prev_hash=prev)
    assert run(rows, start_seq=30, start_prev_hash=prev).intact
    not_purged = chain(numbered(W, [(7, "tool.invoked"), (8, CLOSED)]))
    assert only(run(not_purged), FindingKind.WRITER_GAP).writer_id == W
    assert run(not_purged, purged=True).intact
