"""The report: each kind's verdict, exit codes, the cap on findings, checkpoint documents."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from cleveragents.domain.verification import (
    Checkpoint,
    Finding,
    FindingKind,
    VerifyReport,
    VerifyStatus,
)
from cleveragents.domain.verification.report import MAX_FINDINGS
from tests.domain.verification.support import (
    DROPPED,
    T0,
    W,
    chain,
    entry,
    kinds,
    run,
    writer_session,
)

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
