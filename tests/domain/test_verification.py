"""ChainVerifier on rows built here: finding kinds, exit codes, the cap, checkpoints, writers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from cleveragents.domain.chain import GENESIS_HASH, canonical_header, entry_hash, entry_hmac
from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.verification import (
    MAX_FINDINGS,
    ChainVerifier,
    Checkpoint,
    Finding,
    FindingKind,
    StoredRow,
    VerifyReport,
    VerifyStatus,
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


# -- severities and exit codes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FindingKind.ALTERED, VerifyStatus.TAMPERED),
        (FindingKind.DELETED, VerifyStatus.TAMPERED),
        (FindingKind.INSERTED, VerifyStatus.TAMPERED),
        (FindingKind.REORDERED, VerifyStatus.TAMPERED),
        (FindingKind.TRUNCATED, VerifyStatus.TAMPERED),
        (FindingKind.UNTERMINATED_WRITER, VerifyStatus.LOSS_SUSPECTED),
        (FindingKind.WRITER_GAP, VerifyStatus.LOSS_SUSPECTED),
        (FindingKind.SPOOLED, VerifyStatus.DECLARED_DROPS),
        (FindingKind.DROPPED, VerifyStatus.DECLARED_DROPS),
    ],
)
def test_each_kind_has_its_documented_verdict(kind: FindingKind, status: VerifyStatus) -> None:
    """Altered..truncated are exit 1, loss suspected 2, declared drops 3."""
    finding = Finding(kind, "m", seq=3, id=30, event_id="e", writer_id="w")
    assert finding.status is status
    assert finding.to_dict() == {
        "kind": kind.value,
        "seq": 3,
        "id": 30,
        "event_id": "e",
        "writer_id": "w",
        "message": "m",
    }


def test_the_exit_codes() -> None:
    """0 intact, 1 tampered, 2 loss suspected, 3 only declared drops, 4 unverifiable."""
    assert [int(status) for status in VerifyStatus] == [0, 1, 2, 3, 4]
    unverifiable = VerifyReport.unverifiable("cannot read it")
    assert unverifiable.exit_code == 4
    assert not unverifiable.intact
    assert unverifiable.to_dict()["error"] == "cannot read it"
    assert unverifiable.to_dict()["status"] == "unverifiable"


def test_the_worst_finding_decides_the_status() -> None:
    """A declared drop plus an unterminated writer is 2; adding an alteration makes it 1."""
    entries = writer_session(W, [(DROPPED, {"count": 2})], closed=False)
    report = run(chain(entries))
    assert sorted(kinds(report)) == sorted([FindingKind.DROPPED, FindingKind.UNTERMINATED_WRITER])
    assert report.exit_code == 2
    rows = chain(entries)
    rows[0] = replace(rows[0], actor="mallory")
    assert run(rows).exit_code == 1


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


def test_checkpoint_documents_round_trip() -> None:
    """to_json and from_json agree; anything else is refused."""
    checkpoint = Checkpoint(7, "ef" * 32, 7, T0)
    assert Checkpoint.from_json(orjson.loads(checkpoint.to_json())) == checkpoint
    for broken in (
        {"format": "other"},
        {**orjson.loads(checkpoint.to_json()), "seq": -1},
        {**orjson.loads(checkpoint.to_json()), "seq": True},
        {**orjson.loads(checkpoint.to_json()), "entry_hash": "short"},
        {**orjson.loads(checkpoint.to_json()), "count": 1.0},
        {**orjson.loads(checkpoint.to_json()), "time": "yesterday"},
    ):
        with pytest.raises(ValueError, match="checkpoint"):
            Checkpoint.from_json(broken)


# -- the cap on findings -------------------------------------------------------------------


def test_findings_are_capped_and_counted_beyond_the_cap() -> None:
    """At most MAX_FINDINGS are kept; counts has them all, and the status stays right."""
    rows = [replace(row, actor="x") for row in chain([entry() for _ in range(MAX_FINDINGS + 5)])]
    outside = [replace(rows[0], id=100_000 + n, seq=None) for n in range(3)]
    report = run(rows + outside, head_seq=len(rows) + 2)
    assert len(report.findings) == MAX_FINDINGS
    assert all(f.kind is FindingKind.ALTERED for f in report.findings)
    assert dict(report.counts) == {"altered": MAX_FINDINGS + 5, "inserted": 3, "truncated": 1}
    assert report.status is VerifyStatus.TAMPERED


def test_a_writer_finding_beyond_the_cap_still_sets_the_status() -> None:
    """A loss found after the cap is counted and decides the status."""
    entries = [entry() for _ in range(MAX_FINDINGS)] + writer_session(W, [], closed=False)
    rows = chain(entries)
    rows[:MAX_FINDINGS] = [replace(row, actor="x") for row in rows[:MAX_FINDINGS]]
    report = run(rows)
    assert len(report.findings) == MAX_FINDINGS
    assert report.counts["unterminated_writer"] == 1
    assert report.status is VerifyStatus.TAMPERED  # altered outranks it


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


def test_a_writer_first_seen_after_a_purge_may_start_anywhere() -> None:
    """After a purge a writer's earlier entries are gone by design: no gap before its first."""
    prev = "12" * 32
    rows = chain(numbered(W, [(7, "tool.invoked"), (8, CLOSED)]), start_seq=30, prev_hash=prev)
    assert run(rows, start_seq=30, start_prev_hash=prev).intact
    not_purged = chain(numbered(W, [(7, "tool.invoked"), (8, CLOSED)]))
    assert only(run(not_purged), FindingKind.WRITER_GAP).writer_id == W
    assert run(not_purged, purged=True).intact
