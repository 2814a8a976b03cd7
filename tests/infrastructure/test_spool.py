"""The dead-letter spool file on its own: its format, its mode, its lock, and torn lines."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.spool import Spool
from tests.support import GENEROUS_S, wait_until

#: The writer of the rows :func:`make_row` makes (every third row has none, as a hand-made one).
WRITER = new_event_id()

FIELDS = {
    "event_id",
    "event_type",
    "actor",
    "resource",
    "details",
    "correlation_id",
    "created_at",
    "writer_id",
    "writer_seq",
    "error",
    "spooled_at",
}


def make_row(seq: int, **details: object) -> EntryRow:
    """A valid entry row whose details carry ``seq``."""
    return EntryRow(
        new_event_id(),
        "tool.invoked",
        f"agent:{seq % 3}",
        None if seq % 2 else "tool:web.search",
        encode_details({"seq": seq, **details}),
        "run-7" if seq % 2 else None,
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC) + timedelta(seconds=seq),
        None if seq % 3 == 2 else WRITER,
        None if seq % 3 == 2 else seq + 1,
    )


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run the test with umask 000, so only the code's own mode keeps files private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_append_writes_one_json_object_per_line_owner_only(
    tmp_path: Path, permissive_umask: None
) -> None:
    """append() writes one JSON object per entry, with the error, into a 0600 file."""
    spool = Spool(tmp_path / "audit.spool.jsonl")
    rows = [make_row(seq, text="naïve ✓", big=2**70, ratio=0.1) for seq in range(3)]
    spool.append(rows[:2], "OperationalError: database or disk is full")
    spool.append(rows[2:], "UndefinedTable: relation audit_log does not exist")
    assert mode_of(spool.path) == 0o600
    data = spool.path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.splitlines()
    assert len(lines) == 3
    for line, row in zip(lines, rows, strict=True):
        item = json.loads(line)  # the standard library: big integers stay exact
        assert set(item) == FIELDS
        assert item["event_id"] == row.event_id
        assert item["event_type"] == row.event_type
        assert (item["actor"], item["resource"], item["correlation_id"]) == (
            row.actor,
            row.resource,
            row.correlation_id,
        )
        assert encode_details(item["details"]) == row.details
        assert datetime.fromisoformat(item["created_at"]) == row.created_at
        assert (item["writer_id"], item["writer_seq"]) == (row.writer_id, row.writer_seq)
        assert datetime.fromisoformat(item["spooled_at"]).tzinfo is not None
    errors = [orjson.loads(line)["error"] for line in lines]
    assert errors[0] == errors[1] == "OperationalError: database or disk is full"
    assert errors[2].startswith("UndefinedTable")


def test_draining_gives_back_exactly_the_rows_and_empties_the_file(tmp_path: Path) -> None:
    """Rows read back from the spool equal the rows appended, details text included."""
    spool = Spool(tmp_path / "s.jsonl")
    rows = [make_row(seq, nested={"a": [1, 2.5, None, True]}, big=-(2**90)) for seq in range(50)]
    spool.append(rows, "error")
    with spool.draining() as contents:
        assert contents.rows == rows
        assert contents.rejected == []
    assert spool.path.read_bytes() == b""
    assert not spool.rejects_path.exists()


def test_a_missing_spool_drains_as_empty(tmp_path: Path) -> None:
    """Draining a spool that was never written finds nothing and creates nothing."""
    spool = Spool(tmp_path / "never.jsonl")
    with spool.draining() as contents:
        assert (contents.rows, contents.rejected) == ([], [])
    assert not spool.path.exists()
    assert not spool.rejects_path.exists()


def test_a_failure_while_draining_leaves_the_spool_untouched(tmp_path: Path) -> None:
    """If re-ingesting raises, the spool keeps every byte and nothing is set aside."""
    spool = Spool(tmp_path / "s.jsonl")
    spool.append([make_row(seq) for seq in range(5)], "error")
    with spool.path.open("ab") as handle:
        handle.write(b"garbage\n")
    before = spool.path.read_bytes()
    with pytest.raises(RuntimeError, match="database still down"), spool.draining():
        raise RuntimeError("database still down")
    assert spool.path.read_bytes() == before
    assert not spool.rejects_path.exists()


def test_torn_and_invalid_lines_are_reported_by_number_and_kept_aside(
    tmp_path: Path, permissive_umask: None
) -> None:
    """Bad lines are rejected with their line numbers and kept, 0600, in the rejects file."""
    spool = Spool(tmp_path / "s.jsonl")
    good = [make_row(seq) for seq in range(4)]
    spool.append(good[:2], "error")  # lines 1, 2
    torn_source = Spool(tmp_path / "other.jsonl")
    torn_source.append([make_row(99)], "error")
    whole_line = torn_source.path.read_bytes()
    bad_lines = [
        b"this is not json",  # 3
        b"[1, 2, 3]",  # 4: JSON, but not an object
        b'{"event_id": "short", "event_type": "tool.invoked", "created_at": "2026-01-01"}',  # 5
    ]
    with spool.path.open("ab") as handle:
        handle.write(b"\n".join(bad_lines) + b"\n")
    spool.append(good[2:3], "error")  # line 6
    with spool.path.open("ab") as handle:
        handle.write(b"\n")  # line 7: blank, skipped without a word
        bad_type = orjson.loads(whole_line)
        bad_type["event_type"] = "no.such.type"
        handle.write(orjson.dumps(bad_type) + b"\n")  # line 8
        naive = orjson.loads(whole_line)
        naive["created_at"] = "2026-01-01T00:00:00"
        handle.write(orjson.dumps(naive) + b"\n")  # line 9
    spool.append(good[3:], "error")  # line 10
    with spool.path.open("ab") as handle:
        handle.write(whole_line[: len(whole_line) // 2])  # line 11: torn, no newline

    with spool.draining() as contents:
        assert contents.rows == good
        numbers = [line.line_number for line in contents.rejected]
        assert numbers == [3, 4, 5, 8, 9, 11]
        reasons = {line.line_number: line.reason for line in contents.rejected}
        assert "torn" in reasons[11]
        assert "created_at" in reasons[9] or "zone" in reasons[9]
    assert spool.path.read_bytes() == b""
    assert mode_of(spool.rejects_path) == 0o600
    kept = [orjson.loads(line) for line in spool.rejects_path.read_bytes().splitlines()]
    assert [item["line_number"] for item in kept] == [3, 4, 5, 8, 9, 11]
    assert all(item["spool"] == str(spool.path) for item in kept)
    assert kept[0]["text"] == "this is not json"
    assert kept[-1]["text"].encode() == whole_line[: len(whole_line) // 2]
    assert all(item["reason"] for item in kept)


def test_a_second_drain_appends_to_the_rejects_file(tmp_path: Path) -> None:
    """Rejects from two drains are both kept: the rejects file is appended, never replaced."""
    spool = Spool(tmp_path / "s.jsonl")
    for text in (b"first bad\n", b"second bad\n"):
        with spool.path.open("ab") as handle:
            handle.write(text)
        with spool.draining() as contents:
            assert [line.line_number for line in contents.rejected] == [1]
    texts = [orjson.loads(line)["text"] for line in spool.rejects_path.read_bytes().splitlines()]
    assert texts == ["first bad", "second bad"]


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    """8 threads appending at once leave 8 x 100 x 5 whole, parseable lines."""
    spool = Spool(tmp_path / "s.jsonl")
    padding = "p" * 5000  # beyond PIPE_BUF: a single write() could tear without the lock

    def append_many(thread: int) -> None:
        for batch in range(100):
            spool.append(
                [make_row(thread * 1000 + batch * 5 + i, pad=padding) for i in range(5)], "e"
            )

    threads = [threading.Thread(target=append_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S)
    assert not any(thread.is_alive() for thread in threads)
    with spool.draining() as contents:
        assert contents.rejected == []
        assert len(contents.rows) == 8 * 100 * 5
        assert len({row.event_id for row in contents.rows}) == 8 * 100 * 5


def blocked_flock_waiters(path: Path) -> int:
    """How many flock() calls on ``path`` are waiting now, according to /proc/locks."""
    inode = path.stat().st_ino
    waiting = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields and fields[-3].endswith(f":{inode}"):
            waiting += 1
    return waiting


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_an_append_during_a_drain_waits_and_survives_the_truncation(tmp_path: Path) -> None:
    """An append that arrives while a replay holds the spool waits, then is kept."""
    spool = Spool(tmp_path / "s.jsonl")
    first = [make_row(seq) for seq in range(3)]
    late = [make_row(100 + seq) for seq in range(2)]
    spool.append(first, "error")
    appended = threading.Event()

    def append_late() -> None:
        spool.append(late, "error")
        appended.set()

    appender = threading.Thread(target=append_late)
    with spool.draining() as contents:
        assert contents.rows == first
        appender.start()
        wait_until(
            lambda: blocked_flock_waiters(spool.path) == 1, what="the append to wait for the lock"
        )
        assert not appended.is_set()
    appender.join(GENEROUS_S)
    assert appended.is_set()
    with spool.draining() as contents:
        assert contents.rows == late


def test_lenient_lines_are_replayed_and_a_non_object_line_is_named(tmp_path: Path) -> None:
    """No details, null details or a 36-character non-UUID id: read; ``[1]``: the line refused."""
    spool = Spool(tmp_path / "s.jsonl")
    spool.append([make_row(seq) for seq in range(3)], "error")
    items = [json.loads(line) for line in spool.path.read_bytes().splitlines()]
    del items[0]["details"]
    items[1]["details"] = None
    items[2]["event_id"] = "not-a-uuid-but-thirty-six-characters"
    spool.path.write_bytes(b"".join(json.dumps(item).encode() + b"\n" for item in items) + b"[1]\n")
    with spool.draining() as contents:
        assert [row.details for row in contents.rows] == ["{}", "{}", make_row(2).details]
        assert contents.rows[2].event_id == "not-a-uuid-but-thirty-six-characters"
        assert [line.line_number for line in contents.rejected] == [4]
        assert contents.rejected[0].reason == "not a JSON object (the line is '[1]')"
