"""ChainVerifier on rows built here: links, hashes, HMACs, the chain's end, checkpoints."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from cleveragents.domain.chain import GENESIS_HASH
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.verification import (
    Checkpoint,
    FindingKind,
    VerifyStatus,
)
from tests.domain.verification.support import (
    KEY,
    T0,
    V,
    W,
    chain,
    entry,
    kinds,
    only,
    run,
    seal,
    writer_session,
)

# -- intact --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY], ids=["unkeyed", "keyed"])
def test_an_intact_chain_of_two_writers_verifies(key: bytes | None) -> None:
    """Hashes, links, HMACs and both writers' accounting check out: status INTACT, exit 0."""
    rows = chain(
        writer_session(W, ["tool.invoked", "tool.completed"])
        + writer_session(V, ["session.started"]),
        key=key,
    )
    report = run(rows, hmac_key=key)
    assert report.status is VerifyStatus.INTACT
    assert report.exit_code == 0
    assert report.intact
    assert report.findings == ()
    assert dict(report.counts) == {}
    assert report.entries == len(rows) == 7
    assert (report.first_seq, report.last_seq) == (1, 7)
    assert report.head_hash == rows[-1].entry_hash
    assert report.writers == 2
    assert report.hmac_checked is (key is not None)
    assert report.checkpoints == 0
    assert report.error is None
    assert report.to_dict()["status"] == "intact"


def test_interleaved_writers_verify() -> None:
    """Two writers whose entries alternate in the chain are each accounted for."""
    a, b = writer_session(W, ["tool.invoked"] * 3), writer_session(V, ["tool.failed"] * 3)
    mixed = [row for pair in zip(a, b, strict=True) for row in pair]
    assert run(chain(mixed)).intact


def test_rows_without_writer_accounting_verify() -> None:
    """Hand-made rows (writer_id and writer_seq None) are chained like any other."""
    assert run(chain([entry(), entry(actor=None), entry()])).intact


def test_an_empty_chain_is_intact() -> None:
    """No rows and a head at 0: nothing to find."""
    report = run([], head_seq=0)
    assert report.status is VerifyStatus.INTACT
    assert (report.entries, report.first_seq, report.last_seq) == (0, None, None)


def test_a_chain_starting_after_a_purge_verifies() -> None:
    """start_seq and start_prev_hash: the kept chain begins where the purge declared."""
    prev = "ab" * 32
    rows = chain(writer_session(W, ["tool.invoked"]), start_seq=41, prev_hash=prev)
    assert run(rows, start_seq=41, start_prev_hash=prev).intact
    moved = run(rows, start_seq=41, start_prev_hash=GENESIS_HASH)
    assert only(moved, FindingKind.INSERTED).seq == 41


# -- alterations, deletions, insertions, reordering ----------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", new_event_id()),
        ("event_type", "permission.granted"),
        ("actor", "mallory"),
        ("actor", None),
        ("resource", "r"),
        ("details", '{"amount":1000000}'),
        ("correlation_id", "c"),
        ("created_at", T0 - timedelta(days=1)),
        ("created_at", T0 + timedelta(seconds=3, microseconds=1)),
        ("seq", 9),
    ],
)
def test_an_edited_field_is_altered_at_its_row(field: str, value: Any) -> None:
    """Changing any hashed field leaves one finding: ALTERED, naming that row."""
    rows = chain([entry() for _ in range(5)])
    rows[2] = replace(rows[2], **{field: value})
    report = run(rows)
    assert report.status is VerifyStatus.TAMPERED
    altered = [f for f in report.findings if f.kind is FindingKind.ALTERED]
    assert [(f.seq, f.id, f.event_id) for f in altered] == [
        (rows[2].seq, rows[2].id, rows[2].event_id)
    ]


def test_an_edited_writer_field_is_altered() -> None:
    """writer_id and writer_seq are hashed too (and the accounting notices as well)."""
    for field, value in (("writer_id", V), ("writer_seq", 7)):
        rows = chain(writer_session(W, ["tool.invoked"] * 3))
        rows[2] = replace(rows[2], **{field: value})
        report = run(rows)
        assert report.exit_code == 1
        assert FindingKind.ALTERED in kinds(report)
        assert [f.seq for f in report.findings if f.kind is FindingKind.ALTERED] == [3]


def test_a_forged_row_with_a_recomputed_hash_breaks_the_next_link() -> None:
    """The forged row itself checks out; the next row's prev_hash names it as inserted."""
    rows = chain([entry() for _ in range(5)])
    rows[2] = seal(replace(rows[2], actor="mallory"), None)
    finding = only(run(rows), FindingKind.INSERTED)
    assert (finding.seq, finding.id) == (4, 40)
    assert "prev_hash" in finding.message


def test_a_chain_recomputed_from_a_forged_row_needs_a_checkpoint() -> None:
    """Forged and the suffix relinked: nothing to see, unless a checkpoint was kept."""
    rows = chain([entry() for _ in range(5)])
    checkpoint = Checkpoint(5, rows[-1].entry_hash or "", 5, T0)
    forged = list(rows[:2])
    for row in rows[2:]:
        changed = replace(row, actor="mallory") if row.seq == 3 else row
        forged.append(seal(replace(changed, prev_hash=forged[-1].entry_hash), None))
    assert run(forged).intact
    finding = only(run(forged, checkpoints=[checkpoint]), FindingKind.ALTERED)
    assert finding.seq == 5
    assert "checkpoint" in finding.message


@pytest.mark.parametrize("bad", ["", "zz" * 32, "ab" * 31, "AB" * 33])
def test_a_prev_hash_that_is_not_a_digest_is_altered_and_inserted(bad: str) -> None:
    """A malformed prev_hash never crashes the verifier: the row is altered and unlinked."""
    rows = chain([entry() for _ in range(3)])
    rows[1] = replace(rows[1], prev_hash=bad)
    report = run(rows)
    assert sorted(kinds(report)) == sorted([FindingKind.INSERTED, FindingKind.ALTERED])
    assert {f.seq for f in report.findings} == {2}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_at", "not a time"),
        ("created_at", datetime(2026, 1, 1)),  # naive
        ("created_at", b"\x00" * 8),
        ("details", b"{}"),
        ("event_id", 7),
        ("event_type", None),
        ("actor", 5),
        ("resource", 1.5),
        ("writer_id", b"w"),
        ("writer_seq", "2"),
        ("prev_hash", b"\x00" * 32),
        ("entry_hash", 3),
        ("hmac", 4),
    ],
)
def test_a_value_of_the_wrong_type_is_altered_not_a_crash(field: str, value: Any) -> None:
    """SQLite keeps any value in any column: such a row is ALTERED, and the chain goes on."""
    rows = chain([entry() for _ in range(5)])
    rows[2] = replace(rows[2], **{field: value})
    report = run(rows)
    unlinked = [(FindingKind.INSERTED, 4)] if field == "entry_hash" else []
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.ALTERED, 3), *unlinked]
    assert report.findings[0].id == 30
    assert f"{field} is not" in report.findings[0].message


@pytest.mark.parametrize("value", ["3", 3.0, b"3"])
def test_a_seq_that_is_not_an_integer_is_altered(value: Any) -> None:
    """The row is named by id; its place in the chain is then a hole, at its seq."""
    rows = chain([entry() for _ in range(4)])
    rows[2] = replace(rows[2], seq=value)
    report = run(rows)
    assert [(f.kind, f.seq, f.id) for f in report.findings] == [
        (FindingKind.ALTERED, None, 30),
        (FindingKind.DELETED, 3, 40),
    ]
    assert "before id 40 (seq 4" in report.findings[1].message


def test_a_missing_entry_hash_is_altered() -> None:
    """A row stripped of its hash is altered, and the next one no longer links."""
    rows = chain([entry() for _ in range(3)])
    rows[1] = replace(rows[1], entry_hash=None)
    report = run(rows)
    assert [(f.kind, f.seq) for f in report.findings] == [
        (FindingKind.ALTERED, 2),
        (FindingKind.INSERTED, 3),
    ]


@pytest.mark.parametrize(("removed", "message"), [([2], "seq 3 is"), ([1, 2, 3], "seq 2..4 is")])
def test_deleted_entries_are_a_hole_in_seq(removed: list[int], message: str) -> None:
    """A hole in seq is DELETED at its first missing seq, naming the range and the next row."""
    rows = chain([entry() for _ in range(6)])
    kept = [row for index, row in enumerate(rows) if index not in removed]
    deleted = only(run(kept), FindingKind.DELETED)
    assert deleted.seq == removed[0] + 1
    assert f"before id {rows[removed[-1] + 1].id} " in deleted.message
    assert message in deleted.message
    assert f"{len(removed)} entr" in deleted.message


def test_deleting_a_writers_entry_is_also_a_writer_gap() -> None:
    """The seq hole decides (exit 1); the writer's hole is reported beside it."""
    rows = chain(writer_session(W, ["tool.invoked"] * 3))
    del rows[2]
    report = run(rows)
    assert sorted(kinds(report)) == sorted([FindingKind.DELETED, FindingKind.WRITER_GAP])
    assert report.exit_code == 1
    assert dict(report.counts) == {"deleted": 1, "writer_gap": 1}


def test_deleting_the_first_entry_is_found() -> None:
    """The chain must start at start_seq: a missing seq 1 is DELETED, at seq 1."""
    rows = chain([entry() for _ in range(3)])
    assert only(run(rows[1:]), FindingKind.DELETED).seq == 1


def test_a_repeated_seq_is_reordered() -> None:
    """The same seq again later in id order (a copy of an entry) is REORDERED there."""
    rows = chain([entry() for _ in range(3)])
    copy = replace(rows[1], id=25)
    report = run([rows[0], rows[1], copy, rows[2]])
    finding = only(report, FindingKind.REORDERED)
    assert (finding.seq, finding.id) == (2, 25)
    assert "seq 2 comes after seq 2" in finding.message


def test_seq_out_of_id_order_is_reordered() -> None:
    """Commit (id) order must be seq order: rows whose seqs were swapped are found."""
    rows = chain([entry() for _ in range(4)])
    swapped = [rows[0], replace(rows[2], id=20), replace(rows[1], id=30), rows[3]]
    report = run(swapped)
    assert [(f.kind, f.seq, f.id) for f in report.findings] == [
        (FindingKind.DELETED, 2, 20),
        (FindingKind.REORDERED, 2, 30),
        (FindingKind.INSERTED, 4, 40),
    ]


# -- keyed mode ----------------------------------------------------------------------------


def test_keyed_mode_wants_an_hmac_on_every_row() -> None:
    """A missing HMAC is ALTERED in keyed mode."""
    rows = chain([entry() for _ in range(3)], key=KEY)
    rows[1] = replace(rows[1], hmac=None)
    finding = only(run(rows, hmac_key=KEY), FindingKind.ALTERED)
    assert finding.seq == 2
    assert "no HMAC" in finding.message


@pytest.mark.parametrize("bad", ["", "\x80" * 64, "é", "zz" * 32, "ab" * 33])
def test_a_malformed_hmac_is_altered_not_a_crash(bad: str) -> None:
    """Any text in the hmac column (non-ASCII too) is a mismatch, never an exception."""
    rows = chain([entry() for _ in range(3)], key=KEY)
    rows[1] = replace(rows[1], hmac=bad)
    finding = only(run(rows, hmac_key=KEY), FindingKind.ALTERED)
    assert finding.seq == 2
    assert "HMAC does not match" in finding.message


def test_a_chain_recomputed_without_the_key_fails_every_hmac() -> None:
    """Hashes relinked by someone without the key: every HMAC mismatches."""
    rows = chain([entry() for _ in range(4)], key=b"not the key")
    report = run(rows, hmac_key=KEY)
    assert kinds(report) == [FindingKind.ALTERED] * 4
    assert all("HMAC" in f.message for f in report.findings)
    assert report.hmac_checked


def test_hmacs_without_a_key_cannot_be_verified() -> None:
    """Rows carry HMACs and no key was given: exit 4, saying how to give it."""
    report = run(chain([entry() for _ in range(3)], key=KEY))
    assert report.status is VerifyStatus.UNVERIFIABLE
    assert report.exit_code == 4
    assert report.error is not None
    assert "3 entries carry an HMAC" in report.error


# -- the end of the chain ------------------------------------------------------------------


def test_a_head_beyond_the_last_row_is_truncation() -> None:
    """The head row says more entries exist than were read: TRUNCATED after the last one."""
    rows = chain([entry() for _ in range(5)])
    finding = only(run(rows[:3], head_seq=5), FindingKind.TRUNCATED)
    assert finding.seq == 4
    assert "2 entries" in finding.message


def test_a_missing_head_row_is_altered() -> None:
    """No head row at all: ALTERED."""
    report = run(chain([entry()]), head_seq=None)
    assert only(report, FindingKind.ALTERED).message.startswith("the chain head row")


def test_rows_beyond_the_head_are_inserted() -> None:
    """Rows past the head row were appended outside a writer (or the head set back)."""
    finding = only(run(chain([entry() for _ in range(3)]), head_seq=1), FindingKind.INSERTED)
    assert finding.seq == 2
    assert "after the chain head (seq 1)" in finding.message


def test_rows_without_seq_are_inserted_by_id() -> None:
    """Rows that no writer appended (seq NULL) are INSERTED, named by id and event_id."""
    rows = chain([entry() for _ in range(2)])
    strays = [
        replace(rows[0], id=n, seq=None, event_id=f"e-{n}", prev_hash=None, entry_hash=None)
        for n in (15, 35)
    ]
    report = run([rows[0], strays[0], rows[1], strays[1]])
    assert [(f.kind, f.seq, f.id, f.event_id) for f in report.findings] == [
        (FindingKind.INSERTED, None, 15, "e-15"),
        (FindingKind.INSERTED, None, 35, "e-35"),
    ]
    assert report.counts["inserted"] == 2
    assert report.entries == 2


def test_rows_left_by_an_unfinished_purge_are_not_checked() -> None:
    """After a purge declared through seq 40, rows up to 40 still there come first, unchecked."""
    old = chain([entry() for _ in range(40)])
    kept = chain(writer_session(W, ["tool.invoked"]), start_seq=41, prev_hash=old[-1].entry_hash)
    kept = [replace(row, id=1000 + row.id) for row in kept]
    report = run(old[-3:] + kept, start_seq=41, start_prev_hash=old[-1].entry_hash or "")
    assert report.intact, report.findings
    assert (report.entries, report.first_seq) == (3, 41)


@pytest.mark.parametrize("seq", [0, -1, -(2**63)])
def test_a_row_before_the_first_with_a_seq_below_1_is_found(seq: int) -> None:
    """With nothing purged no row may precede seq 1: one put there (any seq < 1) is found."""
    rows = chain([entry() for _ in range(3)])
    forged = seal(replace(rows[0], id=1, seq=seq, event_id=new_event_id()), None)
    report = run([forged, *rows])
    assert report.status is VerifyStatus.TAMPERED, report.findings
    assert any(f.id == 1 for f in report.findings), report.findings


# -- checkpoints ---------------------------------------------------------------------------


def test_a_matching_checkpoint_passes() -> None:
    """A checkpoint at any seq whose hash matches adds nothing but its count."""
    rows = chain([entry() for _ in range(5)])
    checkpoints = [Checkpoint(r.seq, r.entry_hash or "", r.seq, T0) for r in rows[1:4]]
    report = run(rows, checkpoints=checkpoints)
    assert report.intact
    assert report.checkpoints == 3


@pytest.mark.parametrize("kept", [0, 1, 3, 4])
def test_truncation_below_a_checkpoint_is_found(kept: int) -> None:
    """Rows cut from the end and the head set back: the checkpoint still sees it."""
    rows = chain([entry() for _ in range(5)])
    checkpoint = Checkpoint(5, rows[-1].entry_hash or "", 5, T0)
    report = run(rows[:kept], head_seq=kept, checkpoints=[checkpoint])
    finding = only(report, FindingKind.TRUNCATED)
    assert finding.seq == 5
    assert f"the trail ends at {kept}" in finding.message


def test_a_checkpoint_with_another_hash_is_rewritten_history() -> None:
    """The entry at the checkpoint's seq has another hash: ALTERED there."""
    rows = chain([entry() for _ in range(5)])
    checkpoint = Checkpoint(3, "cd" * 32, 3, T0)
    finding = only(run(rows, checkpoints=[checkpoint]), FindingKind.ALTERED)
    assert (finding.seq, finding.id) == (3, 30)
