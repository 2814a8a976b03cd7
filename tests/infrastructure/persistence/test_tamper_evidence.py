"""Tamper evidence against real SQLite files: every edit, deletion, insertion and swap shows.

Each test writes one trail with real services (two writers, one of them taking a
checkpoint after every entry), closes them, and then, per hypothesis example,
copies the file, tampers with the copy through the raw ``sqlite3`` module as an
attacker with write access would, and verifies the copy from outside any service
(``application.trail.verify``) or through a fresh service.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cleveragents import AuditService, Settings
from cleveragents.application import trail as trail_ops
from cleveragents.domain.chain import GENESIS_HASH, canonical_header, entry_hash, entry_hmac
from cleveragents.domain.details import encode_details
from cleveragents.domain.event_types import SYSTEM_EVENT_TYPES
from cleveragents.domain.rows import CHAIN_FIELDS, ROW_FIELDS
from cleveragents.domain.verification import (
    Checkpoint,
    FindingKind,
    VerifyReport,
    VerifyStatus,
)
from cleveragents.infrastructure.persistence.database import open_database
from tests.strategies import json_details

KEY = "tamper-evidence test key"
KEY_BYTES = KEY.encode("utf-8")

#: The fields of an entry (everything but id, seq and the chain's hashes).
CONTENT = ROW_FIELDS
#: Every column of audit_log but details_json (NULL on SQLite, not part of the chain).
COLUMNS = ("id", *ROW_FIELDS, *CHAIN_FIELDS)

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    # One trail per test function, copied per example.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# -- the trail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trail:
    """A closed trail on disk, as written: its rows by id and the checkpoints taken."""

    path: Path
    key: bytes | None
    rows: list[dict[str, Any]]
    checkpoints: list[Checkpoint]  # after each entry of the second writer, then the final one

    @property
    def final(self) -> Checkpoint:
        """The checkpoint of the head after the last writer closed."""
        return self.checkpoints[-1]

    def __repr__(self) -> str:
        return f"Trail({'keyed' if self.key else 'unkeyed'}, {len(self.rows)} rows)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis prints fixtures of failing examples this way

    def by_seq(self, seq: int) -> dict[str, Any]:
        """The row with this seq."""
        return next(row for row in self.rows if row["seq"] == seq)


def build_trail(folder: Path, *, keyed: bool) -> Trail:
    """Two writers, one after the other: async (4 entries), then sync (4, checkpointed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trail.db"
    options: dict[str, Any] = {"database_url": f"sqlite:///{path}"}
    if keyed:
        options["audit_hmac_key"] = KEY
    with AuditService(Settings(**options)) as first:
        first.record("session.started", actor="alice", correlation_id="c-1")
        first.record("tool.invoked", actor="alice", resource="shell", details={"cmd": "ls -l"})
        first.record("tool.completed", actor="alice", resource="shell", details={"rc": 0})
        first.record("llm.request", actor=None, details={"tokens": 2**70, "prompt": "héllo ✓"})
    checkpoints: list[Checkpoint] = []
    with AuditService(Settings(audit_async=False, **options)) as second:
        kinds = ("permission.granted", "config.changed", "agent.failed", "session.ended")
        for n, kind in enumerate(kinds):
            second.record(
                kind,
                actor=f"bob-{n}",
                resource=f"res-{n}" if n % 2 else None,
                details={"n": n, "nested": {"list": [n, None, True]}},
            )
            checkpoints.append(second.checkpoint())
    database = open_database(f"sqlite:///{path}", create=False)
    try:
        checkpoints.append(trail_ops.current_checkpoint(database))
    finally:
        database.dispose()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    built = Trail(path, KEY_BYTES if keyed else None, read_rows(path), checkpoints)
    assert [row["seq"] for row in built.rows] == list(range(1, 13))
    assert [row["id"] for row in built.rows] == list(range(1, 13))
    assert built.final.seq == 12
    return built


@pytest.fixture
def unkeyed(tmp_path: Path) -> Trail:
    """A closed unkeyed trail of 12 entries."""
    return build_trail(tmp_path / "unkeyed", keyed=False)


@pytest.fixture
def keyed(tmp_path: Path) -> Trail:
    """A closed keyed trail of 12 entries (every row has an HMAC)."""
    return build_trail(tmp_path / "keyed", keyed=True)


@pytest.fixture(params=[False, True], ids=["unkeyed", "keyed"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Trail:
    """An unkeyed, then a keyed, closed trail of 12 entries."""
    keyed = bool(request.param)
    return build_trail(tmp_path / ("keyed" if keyed else "unkeyed"), keyed=keyed)


# -- tampering and verifying ---------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of audit_log by id, raw."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY id").fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@dataclass
class Copy:
    """A copy of a trail's file, to tamper with through raw SQL."""

    path: Path

    def sql(self, *statements: tuple[str, tuple[Any, ...]] | str) -> None:
        """Run ``statements`` (text, or (text, params)) in one transaction."""
        with closing(sqlite3.connect(self.path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            for statement in statements:
                text, params = (statement, ()) if isinstance(statement, str) else statement
                db.execute(text, params)
            db.execute("COMMIT")

    def set(self, row_id: int, **values: Any) -> None:
        """UPDATE the row with this id."""
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.sql((f"UPDATE audit_log SET {assignments} WHERE id = ?", (*values.values(), row_id)))

    def insert(self, row: dict[str, Any]) -> int:
        """INSERT ``row`` (columns by name); the id it got."""
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self.sql((f"INSERT INTO audit_log ({names}) VALUES ({marks})", tuple(row.values())))
        with closing(sqlite3.connect(self.path)) as db:
            found = db.execute(
                "SELECT id FROM audit_log WHERE event_id = ?", (row["event_id"],)
            ).fetchone()
        return int(found[0])

    def set_head(self, seq: int, hashed: str) -> None:
        """Set the chain head row, as a careful attacker would after cutting the end."""
        self.sql(("UPDATE audit_chain SET head_seq = ?, head_hash = ? WHERE id = 1", (seq, hashed)))

    def verify(
        self, key: bytes | None, checkpoints: list[Checkpoint] | None = None
    ) -> VerifyReport:
        """Verify the copy from outside any service."""
        database = open_database(f"sqlite:///{self.path}", create=False, hmac_key=key)
        try:
            return trail_ops.verify(database, hmac_key=key, checkpoints=checkpoints or [])
        finally:
            database.dispose()

    def verify_with_service(self, key: bytes | None) -> VerifyReport:
        """Verify the copy through a fresh synchronous service (its own writer is exempt)."""
        options: dict[str, Any] = {"database_url": f"sqlite:///{self.path}", "audit_async": False}
        if key is not None:
            options["audit_hmac_key"] = key.decode("utf-8")
        with AuditService(Settings(**options)) as service:
            return service.verify()

    def remove(self) -> None:
        """Delete the copy and its SQLite side files."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def copies(tmp_path: Path) -> Callable[[Trail], Copy]:
    """Make a fresh copy of a trail's file (one per example)."""

    def copy(trail: Trail) -> Copy:
        target = tmp_path / f"copy-{uuid.uuid4().hex}.db"
        shutil.copy(trail.path, target)
        return Copy(target)

    return copy


@pytest.fixture
def tamper(copies: Callable[[Trail], Copy]) -> Iterator[Callable[[Trail], Copy]]:
    """Like ``copies``, removing each copy after the example that made it."""
    made: list[Copy] = []

    def make(trail: Trail) -> Copy:
        while made:  # the previous example's copy
            made.pop().remove()
        fresh = copies(trail)
        made.append(fresh)
        return fresh

    yield make
    for fresh in made:
        fresh.remove()


def seal(row: dict[str, Any], prev_hash: str, key: bytes | None) -> dict[str, Any]:
    """``row`` relinked after ``prev_hash`` with its hash (and HMAC under ``key``) recomputed."""
    header = canonical_header(
        seq=row["seq"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        actor=row["actor"],
        resource=row["resource"],
        details=row["details"],
        correlation_id=row["correlation_id"],
        created_at=datetime.fromisoformat(row["created_at"]).replace(tzinfo=UTC),
        writer_id=row["writer_id"],
        writer_seq=row["writer_seq"],
    )
    hashed = entry_hash(prev_hash, header)
    return {
        **row,
        "prev_hash": prev_hash,
        "entry_hash": hashed,
        "hmac": None if key is None else entry_hmac(key, hashed),
    }


def described(report: VerifyReport) -> str:
    """The findings, one per line, for assertion messages."""
    lines = [f"{report.status.name} {dict(report.counts)} {report.error or ''}"]
    lines += [f"  {f.kind.value} seq={f.seq} id={f.id}: {f.message}" for f in report.findings]
    return "\n".join(lines)


def assert_located(
    report: VerifyReport,
    *,
    ids: Collection[int | None] = (),
    seqs: Collection[int | None] = (),
) -> None:
    """The trail is TAMPERED and a finding names one of ``ids`` or ``seqs``."""
    assert report.status is VerifyStatus.TAMPERED, described(report)
    assert report.exit_code == 1
    assert any(
        (f.id is not None and f.id in ids) or (f.seq is not None and f.seq in seqs)
        for f in report.findings
    ), f"no finding names id {ids} or seq {seqs}:\n{described(report)}"


# -- strategies ----------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
sqlite_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda moment: moment.isoformat(" ", "microseconds")
)

#: A new value for each column, of the kind the column holds.
NEW_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": int64,
    "event_id": st.uuids().map(str) | any_text,
    "event_type": any_text | st.sampled_from(sorted(SYSTEM_EVENT_TYPES)),
    "actor": st.none() | any_text,
    "resource": st.none() | any_text,
    "details": json_details.map(encode_details) | any_text,
    "correlation_id": st.none() | any_text,
    "created_at": sqlite_times,
    "seq": st.none() | int64 | st.integers(min_value=-2, max_value=15),
    "prev_hash": st.none() | hex64 | any_text | st.just(GENESIS_HASH),
    "entry_hash": st.none() | hex64 | any_text,
    "hmac": st.none() | hex64 | any_text,
    "writer_id": st.none() | st.uuids().map(str) | any_text,
    "writer_seq": st.none() | int64 | st.integers(min_value=0, max_value=8),
}


# -- an untouched trail --------------------------------------------------------------------


# Text record() takes for actor, resource and correlation_id: no lone surrogate, no NUL.
entry_text = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
entries = st.lists(
    st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(["tool.invoked", "llm.response", "session.started"]),
            "actor": st.none() | st.text(entry_text, max_size=20),
            "resource": st.none() | st.text(entry_text, max_size=10),
            "details": json_details,
            "correlation_id": st.none() | st.text(entry_text, max_size=10),
        }
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(
    writers=st.lists(st.tuples(entries, st.booleans()), min_size=1, max_size=3), keyed=st.booleans()
)
def test_an_untouched_trail_always_verifies(
    writers: list[tuple[list[dict[str, Any]], bool]], keyed: bool
) -> None:
    """Whatever was recorded, by however many writers, the untouched trail is INTACT."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.db"
        options: dict[str, Any] = {"database_url": f"sqlite:///{path}"}
        if keyed:
            options["audit_hmac_key"] = KEY
        for recorded, audit_async in writers:
            with AuditService(Settings(audit_async=audit_async, **options)) as service:
                for fields in recorded:
                    service.record(**fields)
        copy = Copy(path)
        key = KEY_BYTES if keyed else None
        database = open_database(f"sqlite:///{path}", create=False)
        try:
            final = trail_ops.current_checkpoint(database)
        finally:
            database.dispose()
        report = copy.verify(key, [final])
        assert report.status is VerifyStatus.INTACT, described(report)
        expected = sum(len(recorded) + 2 for recorded, _ in writers)
        assert (report.entries, report.last_seq, report.writers) == (
            expected,
            expected,
            len(writers),
        )
        assert report.hmac_checked is keyed
        assert copy.verify_with_service(key).status is VerifyStatus.INTACT


def test_a_built_trail_verifies_with_every_checkpoint(
    either: Trail, copies: Callable[[Trail], Copy]
) -> None:
    """The fixture's own trail: intact, against all its checkpoints, and through a service."""
    copy = copies(either)
    report = copy.verify(either.key, either.checkpoints)
    assert report.intact, described(report)
    assert report.checkpoints == 5
    assert copy.verify_with_service(either.key).intact


# -- single edits of any column ------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_any_single_edit_of_any_column_is_detected_and_located(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Any one stored value changed, in any row: TAMPERED, naming the row or the next one."""
    columns = [c for c in COLUMNS if either.key is not None or c != "hmac"]
    column = data.draw(st.sampled_from(columns), label="column")
    row = data.draw(st.sampled_from(either.rows), label="row")
    value = data.draw(NEW_VALUES[column], label="value")
    assume(value != row[column])
    if column in ("id", "event_id"):  # unique columns: an edit cannot collide
        assume(value not in {other[column] for other in either.rows})
    if column == "id":
        # The id is the database's counter and not hashed (domain/chain.py): verify
        # requires only that it grows with seq. Lowering the first row's id, or raising
        # the last's, keeps that order and changes no entry: out of reach by design.
        ids = [other["id"] for other in either.rows]
        assume(not (row["id"] == ids[0] and value < ids[1]))
        assume(not (row["id"] == ids[-1] and value > ids[-2]))
    copy = tamper(either)
    copy.set(row["id"], **{column: value})
    moved_id = value if column == "id" else row["id"]
    via_service = data.draw(st.booleans(), label="via a fresh service")
    report = copy.verify_with_service(either.key) if via_service else copy.verify(either.key)
    assert_located(report, ids={moved_id}, seqs={row["seq"], row["seq"] + 1})


def test_an_hmac_added_to_an_unkeyed_trail_cannot_pass(
    unkeyed: Trail, copies: Callable[[Trail], Copy]
) -> None:
    """Unkeyed, a row that suddenly carries an HMAC makes the trail unverifiable (exit 4)."""
    copy = copies(unkeyed)
    copy.set(5, hmac="ab" * 32)
    report = copy.verify(None)
    assert report.status is VerifyStatus.UNVERIFIABLE, described(report)
    assert report.exit_code == 4


# -- deletions -----------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_deleting_any_row_is_detected_and_located(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """First, middle or last: a deleted row is TAMPERED, at its seq or the next one."""
    row = data.draw(st.sampled_from(either.rows), label="row")
    copy = tamper(either)
    copy.sql(("DELETE FROM audit_log WHERE id = ?", (row["id"],)))
    assert_located(copy.verify(either.key), seqs={row["seq"], row["seq"] + 1})


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_deleting_one_row_names_the_gap(
    either: Trail, copies: Callable[[Trail], Copy], where: str
) -> None:
    """The finding says which seq is missing."""
    seq = {"first": 1, "middle": 7, "last": 12}[where]
    copy = copies(either)
    copy.sql(("DELETE FROM audit_log WHERE seq = ?", (seq,)))
    report = copy.verify(either.key)
    kind = FindingKind.TRUNCATED if where == "last" else FindingKind.DELETED
    found = [f for f in report.findings if f.kind is kind]
    assert found, described(report)
    assert found[0].seq == seq
    if where != "last":
        assert f"seq {seq} is missing" in found[0].message


@PROPERTY
@given(data=st.data())
def test_cutting_the_end_with_the_head_set_back_is_caught_by_an_earlier_checkpoint(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Truncation below a checkpoint, head row made consistent: TRUNCATED at the checkpoint."""
    checkpoint = data.draw(st.sampled_from(either.checkpoints), label="checkpoint")
    kept = data.draw(st.integers(min_value=0, max_value=checkpoint.seq - 1), label="kept")
    copy = tamper(either)
    copy.sql(("DELETE FROM audit_log WHERE seq > ?", (kept,)))
    copy.set_head(kept, either.by_seq(kept)["entry_hash"] if kept else GENESIS_HASH)
    report = copy.verify(either.key, [checkpoint])
    assert_located(report, seqs={checkpoint.seq})
    truncated = [f for f in report.findings if f.kind is FindingKind.TRUNCATED]
    assert [f.seq for f in truncated] == [checkpoint.seq], described(report)


def test_cutting_the_last_row_with_the_head_set_back(
    either: Trail, copies: Callable[[Trail], Copy]
) -> None:
    """Without a checkpoint only the missing writer.closed shows (exit 2); with one, exit 1."""
    copy = copies(either)
    copy.sql("DELETE FROM audit_log WHERE seq = 12")
    copy.set_head(11, either.by_seq(11)["entry_hash"])
    alone = copy.verify(either.key)
    assert alone.status is VerifyStatus.LOSS_SUSPECTED, described(alone)
    assert [f.kind for f in alone.findings] == [FindingKind.UNTERMINATED_WRITER]
    assert alone.findings[0].seq == 11
    checked = copy.verify(either.key, [either.final])
    assert_located(checked, seqs={12})


# -- insertions ----------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_inserting_a_raw_row_is_detected_and_located(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """A row INSERTed by hand, however well forged, is TAMPERED and named."""
    ids = {row["id"] for row in either.rows}
    row_id = data.draw(st.none() | int64.filter(lambda n: n not in ids), label="id")
    seq = data.draw(st.none() | st.integers(min_value=-1, max_value=14) | int64, label="seq")
    fields = {
        "event_id": str(uuid.uuid4()),
        "event_type": data.draw(
            st.sampled_from(["tool.invoked", "writer.closed", "retention.purged"]), label="type"
        ),
        "actor": data.draw(st.none() | any_text, label="actor"),
        "resource": None,
        "details": data.draw(
            st.sampled_from(["{}", "[]", "7", "not json"])
            | st.builds(  # a purge declaration naming a row that is still there
                lambda seq: encode_details(
                    {"through_seq": seq, "through_hash": either.by_seq(seq)["entry_hash"]}
                ),
                st.integers(min_value=1, max_value=12),
            ),
            label="details",
        ),
        "correlation_id": None,
        "created_at": data.draw(sqlite_times, label="created_at"),
        "writer_id": data.draw(
            st.none() | st.sampled_from([r["writer_id"] for r in either.rows]), label="writer"
        ),
        "writer_seq": data.draw(st.none() | st.integers(min_value=1, max_value=8), label="wseq"),
        "seq": seq,
        "prev_hash": None,
        "entry_hash": None,
        "hmac": None,
    }
    how = data.draw(st.sampled_from(["nulls", "random", "forged"]), label="hashes")
    if how == "random":
        fields.update(
            prev_hash=data.draw(hex64), entry_hash=data.draw(hex64), hmac=data.draw(hex64)
        )
    elif how == "forged" and seq is not None:  # linked after seq - 1, hash right (HMAC too)
        prev = either.by_seq(seq - 1)["entry_hash"] if 2 <= seq <= 13 else GENESIS_HASH
        fields = seal(fields, prev, either.key)
    if row_id is not None:
        fields["id"] = row_id
    copy = tamper(either)
    inserted = copy.insert(fields)
    following = min((i for i in ids if i > inserted), default=None)
    seqs = set() if seq is None else {seq}
    assert_located(copy.verify(either.key), ids={inserted, following}, seqs=seqs)


# -- swaps ---------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_swapping_two_rows_is_detected_and_located(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Two rows' contents exchanged (with or without their chain columns): TAMPERED, named."""
    first, second = data.draw(
        st.lists(st.sampled_from(either.rows), min_size=2, max_size=2, unique_by=lambda r: r["id"]),
        label="rows",
    )
    moved = data.draw(
        st.sampled_from([CONTENT, (*CONTENT, *CHAIN_FIELDS), ("seq",), ("details",)]),
        label="columns",
    )
    assume(any(first[c] != second[c] for c in moved))  # two writer.closed may share details
    copy = tamper(either)
    copy.set(first["id"], event_id="swapping")  # event_id is unique
    copy.set(second["id"], **{c: first[c] for c in moved})
    copy.set(first["id"], **{"event_id": first["event_id"], **{c: second[c] for c in moved}})
    seqs = {first["seq"], first["seq"] + 1, second["seq"], second["seq"] + 1}
    assert_located(copy.verify(either.key), ids={first["id"], second["id"]}, seqs=seqs)


# -- the adversary who recomputes hashes ---------------------------------------------------


def forgeable(trail: Trail) -> list[dict[str, Any]]:
    """The caller's entries (not the writers' own), which a forger might rewrite."""
    return [row for row in trail.rows if row["event_type"] not in SYSTEM_EVENT_TYPES]


forged_values = st.sampled_from(["actor", "resource", "details", "correlation_id"]).flatmap(
    lambda column: st.tuples(
        st.just(column),
        (any_text if column == "details" else st.none() | any_text),
    )
)


@PROPERTY
@given(data=st.data())
def test_a_forged_row_with_a_recomputed_hash_breaks_the_next_link(
    unkeyed: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Unkeyed, a rewritten entry with its own hash made right: the next row names it."""
    row = data.draw(st.sampled_from(forgeable(unkeyed)), label="row")
    column, value = data.draw(forged_values, label="edit")
    assume(value != row[column])
    forged = seal({**row, column: value}, row["prev_hash"], None)
    copy = tamper(unkeyed)
    copy.set(row["id"], **{column: value, "entry_hash": forged["entry_hash"]})
    report = copy.verify(None)
    assert_located(report, seqs={row["seq"] + 1})
    assert (FindingKind.INSERTED, row["seq"] + 1) in [(f.kind, f.seq) for f in report.findings]


@PROPERTY
@given(data=st.data())
def test_a_forged_row_with_the_whole_suffix_recomputed_is_caught_only_by_a_checkpoint(
    unkeyed: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Unkeyed, forged and every later row relinked (head too): only a checkpoint shows it."""
    row = data.draw(st.sampled_from(forgeable(unkeyed)), label="row")
    column, value = data.draw(forged_values, label="edit")
    assume(value != row[column])
    copy = tamper(unkeyed)
    prev = row["prev_hash"]
    for original in unkeyed.rows[row["seq"] - 1 :]:
        changed = seal({**original, column: value} if original is row else original, prev, None)
        copy.set(original["id"], **{c: changed[c] for c in (column, "prev_hash", "entry_hash")})
        prev = changed["entry_hash"]
    copy.set_head(12, prev)
    alone = copy.verify(None)
    assert alone.intact, described(alone)  # the limit of an unkeyed chain: it needs a checkpoint
    covering = [cp for cp in unkeyed.checkpoints if cp.seq >= row["seq"]]
    checkpoint = data.draw(st.sampled_from(covering), label="checkpoint")
    report = copy.verify(None, [checkpoint])
    assert_located(report, seqs={checkpoint.seq})
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.ALTERED, checkpoint.seq)]


@PROPERTY
@given(data=st.data())
def test_a_chain_recomputed_without_the_key_is_altered(
    keyed: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """Keyed, an entry rewritten and the chain relinked from genesis without the key: HMAC."""
    row = data.draw(st.sampled_from(forgeable(keyed)), label="row")
    column, value = data.draw(forged_values, label="edit")
    assume(value != row[column])
    macs = data.draw(st.sampled_from(["kept", "removed", "another key", "random"]), label="hmac")
    copy = tamper(keyed)
    prev = GENESIS_HASH
    for original in keyed.rows:
        changed = seal({**original, column: value} if original is row else original, prev, None)
        mac = {
            "kept": original["hmac"],
            "removed": None,
            "another key": entry_hmac(b"guessed key", changed["entry_hash"]),
            "random": data.draw(hex64),
        }[macs]
        copy.set(original["id"], **{c: changed[c] for c in (column, "prev_hash", "entry_hash")})
        copy.set(original["id"], hmac=mac)
        prev = changed["entry_hash"]
    copy.set_head(12, prev)
    report = copy.verify(KEY_BYTES)
    assert_located(report, seqs={row["seq"]})
    at_row = [f for f in report.findings if f.seq == row["seq"]]
    assert [f.kind for f in at_row] == [FindingKind.ALTERED], described(report)
    assert "HMAC" in at_row[0].message
    before = [f for f in report.findings if f.seq is not None and f.seq < row["seq"]]
    if macs == "kept":  # the rows before it are untouched
        assert before == [], described(report)


# -- values of another type (SQLite stores whatever it is given) ---------------------------

sqlite_values = (
    st.none()
    | int64
    | st.floats(allow_nan=False)
    | any_text
    | st.binary(max_size=70)
    | st.just("not a time")
    | st.just(b"\x00" * 32)
)


@PROPERTY
@given(data=st.data())
def test_a_value_of_another_type_in_any_column_is_detected_not_a_crash(
    either: Trail, tamper: Callable[[Trail], Copy], data: st.DataObject
) -> None:
    """A blob, a float or garbage text where the column holds something else: TAMPERED."""
    columns = [c for c in COLUMNS if c != "id" and (either.key is not None or c != "hmac")]
    column = data.draw(st.sampled_from(columns), label="column")
    row = data.draw(st.sampled_from(either.rows), label="row")
    value = data.draw(sqlite_values, label="value")
    assume(value != row[column])
    if column == "event_id":
        assume(value not in {other["event_id"] for other in either.rows})
    copy = tamper(either)
    try:
        copy.set(row["id"], **{column: value})
    except sqlite3.IntegrityError:  # NOT NULL columns refuse None
        assume(False)
    assert_located(copy.verify(either.key), ids={row["id"]}, seqs={row["seq"], row["seq"] + 1})


def purge_declaration(trail: Trail, through_seq: int, key: bytes | None) -> dict[str, Any]:
    """A ``retention.purged`` row through ``through_seq``, appended as seq 13, hash right."""
    through_hash = trail.by_seq(through_seq)["entry_hash"]
    return seal(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "retention.purged",
            "actor": "cleveragents-audit",
            "resource": None,
            "details": encode_details(
                {"through_seq": through_seq, "through_hash": through_hash, "count": through_seq}
            ),
            "correlation_id": None,
            "created_at": "2026-01-01 00:00:00.000000",
            "writer_id": None,
            "writer_seq": None,
            "seq": 13,
        },
        trail.final.entry_hash,
        key,
    )


@pytest.mark.parametrize("through", [3, 12])
def test_a_forged_purge_declaration_does_not_hide_rewritten_history(
    unkeyed: Trail, copies: Callable[[Trail], Copy], through: int
) -> None:
    """Unkeyed, a retention.purged appended by hand while the rows it names are still there."""
    copy = copies(unkeyed)
    victim = unkeyed.by_seq(3)
    copy.set(victim["id"], details='{"cmd":"rm -rf /"}')
    declaration = purge_declaration(unkeyed, through, None)
    copy.insert(declaration)
    copy.set_head(13, declaration["entry_hash"])
    for checkpoints in ([], [unkeyed.final]):
        report = copy.verify(None, checkpoints)
        assert_located(report, ids={victim["id"]}, seqs={3, 4})


@pytest.mark.parametrize("deleted", [0, 1, 5, 9])
def test_a_purge_interrupted_before_its_last_batch_still_verifies(
    either: Trail, copies: Callable[[Trail], Copy], deleted: int
) -> None:
    """Declared through seq 10, only the first rows deleted: the rows left are verified, intact."""
    copy = copies(either)
    declaration = purge_declaration(either, 10, either.key)
    copy.insert(declaration)
    copy.set_head(13, declaration["entry_hash"])
    copy.sql(("DELETE FROM audit_log WHERE id <= ?", (deleted,)))
    report = copy.verify(either.key, [either.final])
    assert report.intact, described(report)
    assert report.first_seq == deleted + 1
    copy.set(10, actor="mallory")  # and a row left behind is still checked
    assert_located(copy.verify(either.key), ids={10}, seqs={10, 11})
