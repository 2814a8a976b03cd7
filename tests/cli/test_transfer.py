"""``export`` and ``import``: formats, files, filters, and exact round trips between backends."""

from __future__ import annotations

import csv
import io
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from cleveragents import AuditService, Settings
from cleveragents.cli import export as export_module
from cleveragents.cli import import_ as import_module
from cleveragents.domain.details import decode_details, encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from tests.cli.conftest import Trail, json_lines, run_cli, write_rows
from tests.support import assert_same_json, sqlite_path
from tests.trail_support import fetch, verify_url

# -- export --------------------------------------------------------------------------------


def test_export_jsonl_to_stdout_is_the_query_json(trail: Trail) -> None:
    """export (jsonl) prints what query --json prints, for the whole trail."""
    exported = run_cli("export", "--database-url", trail.url)
    assert exported.exit_code == 0, exported.stderr
    queried = run_cli("query", "--database-url", trail.url, "--json", "-n", "1000")
    assert exported.stdout == queried.stdout
    assert len(json_lines(exported.stdout)) == 12


def test_export_to_a_file_is_private_and_complete(sqlite_trail: Trail, tmp_path: Path) -> None:
    """--out writes the file whole (no .partial left), readable by its owner only."""
    out = tmp_path / "trail.jsonl"
    result = run_cli("export", "--database-url", sqlite_trail.url, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [e["event_id"] for e in json_lines(out.read_text("utf-8"))] == [
        row.event_id for row in sqlite_trail.rows
    ]
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_export_into_a_missing_directory_is_one_line(sqlite_trail: Trail, tmp_path: Path) -> None:
    """A directory that is not there is named; nothing is written."""
    out = tmp_path / "absent" / "trail.jsonl"
    result = run_cli("export", "--database-url", sqlite_trail.url, "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot write {out}: No such file or directory\n"


def test_an_interrupted_export_leaves_no_file(
    sqlite_trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When writing fails half way, neither the file nor its temporary is left behind."""
    calls = {"n": 0}
    real = export_module.json_line

    def failing(row: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(row)

    monkeypatch.setattr(export_module, "json_line", failing)
    monkeypatch.setattr(export_module, "EXPORT_PAGE", 5)
    out = tmp_path / "trail.jsonl"
    result = run_cli("export", "--database-url", sqlite_trail.url, "-o", str(out))
    assert result.exit_code == 130
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_export_pages_in_bounded_chunks_and_honours_filters(
    sqlite_trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 5 rows, a filtered export still has exactly the matching entries."""
    monkeypatch.setattr(export_module, "EXPORT_PAGE", 5)
    result = run_cli("export", "--database-url", sqlite_trail.url, "--actor", "agent:analyst")
    assert [e["id"] for e in json_lines(result.stdout)] == [2, 3, 4, 5, 8, 9, 10, 11]
    result = run_cli("export", "--database-url", sqlite_trail.url, "--after-id", "9")
    assert [e["id"] for e in json_lines(result.stdout)] == [10, 11, 12]


def test_export_csv(sqlite_trail: Trail) -> None:
    """CSV has a header and one record per entry; details is its JSON text."""
    result = run_cli("export", "--database-url", sqlite_trail.url, "--format", "csv")
    records = list(csv.reader(io.StringIO(result.stdout)))
    assert records[0] == [
        "id",
        "event_id",
        "event_type",
        "actor",
        "resource",
        "correlation_id",
        "created_at",
        "details",
    ]
    assert len(records) == 13
    assert records[2][2:] == [
        "agent.started",
        "agent:analyst",
        "session:1",
        "run-a",
        "2026-03-01T01:00:00.000421+00:00",
        '{"goal":"Q3 — résumé"}',
    ]
    empty = run_cli("export", "--database-url", sqlite_trail.url, "-F", "csv", "--actor", "x")
    assert list(csv.reader(io.StringIO(empty.stdout))) == [records[0]]  # the header alone


def test_export_csv_file_is_rfc_4180(sqlite_trail: Trail, tmp_path: Path) -> None:
    """Records end with CRLF; fields with quotes are quoted, quotes doubled; UTF-8."""
    out = tmp_path / "trail.csv"
    run_cli("export", "--database-url", sqlite_trail.url, "-F", "csv", "-o", str(out))
    data = out.read_bytes()
    assert data.count(b"\r\n") == 13
    assert '"{""goal"":""Q3 — résumé""}"'.encode() in data


# -- import --------------------------------------------------------------------------------

#: Details that test the round trip: unicode, nesting, numbers of every kind, U+0000.
TRICKY_DETAILS: list[dict[str, Any]] = [
    {"text": "naïve café — 日本語 — emoji 🛡️ — rtl עברית", "nul": "a\u0000b"},
    {"deep": {"a": [{"b": [[], {}, [1, [2, [3]]]]}]}, "empty": {}},
    {"big": 2**100, "neg": -(2**70), "f": 1e300, "tiny": 5e-324, "mz": -0.0, "pi": 3.14159},
    {"bools": [True, False, None], "quote": 'he said "hi"\\n\n\t'},
]


def tricky_rows() -> list[EntryRow]:
    """Entries with tricky details, times with and without microseconds, null fields."""
    times = [
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=-7))),
    ]
    rows: list[EntryRow] = []
    for n, (details, moment) in enumerate(zip(TRICKY_DETAILS, times, strict=True)):
        rows.append(
            EntryRow(
                new_event_id(),
                "tool.invoked",
                None if n == 0 else f"agent:ü{n}",
                None if n == 1 else "tool:∑",
                encode_details(details),
                None if n == 2 else f"run-{n}",
                moment,
                None,
                None,
            )
        )
    return rows


def stored(url: str) -> list[dict[str, Any]]:
    """Every entry of the database at ``url``, as the service reads it, by id."""
    with AuditService(Settings(database_url=url, audit_async=False)) as service:
        entries = service.query(limit=10_000)
    return [
        {
            "event_id": e.event_id,
            "event_type": e.event_type.value,
            "actor": e.actor,
            "resource": e.resource,
            "details": e.details,
            "correlation_id": e.correlation_id,
            "created_at": e.created_at,
        }
        for e in entries
    ]


def assert_same_entries(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Field by field, details with their types, times to the microsecond in UTC."""
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert_same_json(got.pop("details"), want["details"])
        assert got["created_at"] == want["created_at"]
        assert got["created_at"].utcoffset() == timedelta(0)
        assert got == {k: v for k, v in want.items() if k != "details"}


def round_trip(source_url: str, target_url: str, tmp_path: Path) -> None:
    """Export the tricky rows from ``source_url``, import them into ``target_url``, compare."""
    rows = tricky_rows()
    write_rows(source_url, rows)
    source = stored(source_url)
    out = tmp_path / "export.jsonl"
    assert run_cli("export", "--database-url", source_url, "-o", str(out)).exit_code == 0
    result = run_cli("import", str(out), "--database-url", target_url, "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) == {
        "read": 4,
        "imported": 4,
        "skipped": 0,
        "database": target_url,
        "chain": "rechained",
    }
    assert_same_entries(stored(target_url), source)
    for entry, row in zip(stored(target_url), rows, strict=True):
        assert entry["created_at"] == row.created_at  # the same instant as recorded, in UTC
    # and the new database exports the very same lines again, ids aside
    again = run_cli("export", "--database-url", target_url)
    first = [{k: v for k, v in e.items() if k != "id"} for e in json_lines(out.read_text())]
    second = [{k: v for k, v in e.items() if k != "id"} for e in json_lines(again.stdout)]
    assert first == second


def test_round_trip_into_a_fresh_sqlite_file(database_url: str, tmp_path: Path) -> None:
    """SQLite -> SQLite and PostgreSQL -> SQLite keep every field exactly."""
    round_trip(database_url, f"sqlite:///{tmp_path / 'imported.db'}", tmp_path)


@pytest.mark.postgres
def test_round_trip_from_sqlite_into_postgresql(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    """The move from the embedded SQLite file to PostgreSQL keeps every field exactly."""
    round_trip(sqlite_url, postgres_url, tmp_path)


def test_import_is_idempotent_by_event_id(sqlite_trail: Trail, tmp_path: Path) -> None:
    """Importing the same file twice, or into its own source, adds nothing the second time."""
    out = tmp_path / "e.jsonl"
    run_cli("export", "--database-url", sqlite_trail.url, "-o", str(out))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    first = run_cli("import", str(out), "--database-url", target)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("imported 12 new entries into ")
    second = run_cli("import", str(out), "--database-url", target, "--json")
    assert orjson.loads(second.stdout)["imported"] == 0
    own = run_cli("import", str(out), "--database-url", sqlite_trail.url, "--json")
    assert orjson.loads(own.stdout) | {"database": None} == {
        "read": 12,
        "imported": 0,
        "skipped": 12,
        "database": None,
        "chain": "rechained",
    }
    assert len(stored(target)) == 12


def test_import_from_stdin_into_a_new_database(sqlite_trail: Trail, tmp_path: Path) -> None:
    """- reads standard input; the target database is created at head."""
    exported = run_cli("export", "--database-url", sqlite_trail.url, "--type", "session.ended")
    target = f"sqlite:///{tmp_path / 'new.db'}"
    result = run_cli("import", "-", "--database-url", target, stdin=exported.stdout.encode())
    assert result.exit_code == 0, result.stderr
    assert [e["event_type"] for e in stored(target)] == ["session.ended", "session.ended"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "tool.invoked"}', "event_id is missing"),
        (b'{"event_id": "x", "event_type": "tool.invoked"}', "event_id 'x' is not a UUID"),
        (b'{"event_id": "%(id)s", "event_type": "tool.used"}', "unknown event_type 'tool.used'"),
        (
            b'{"event_id": "%(id)s", "event_type": "tool.invoked", "created_at": "2026-01-01"}',
            "created_at '2026-01-01' has no time zone",
        ),
        (
            b'{"event_id": "%(id)s", "event_type": "tool.invoked",'
            b' "created_at": "2026-01-01T00:00:00Z"}',
            "details is missing",
        ),
        (
            b'{"event_id": "%(id)s", "event_type": "tool.invoked",'
            b' "created_at": "2026-01-01T00:00:00Z", "details": [1]}',
            "details must be a mapping",
        ),
        (
            b'{"event_id": "%(id)s", "event_type": "tool.invoked", "actor": 7,'
            b' "created_at": "2026-01-01T00:00:00Z", "details": {}}',
            "actor must be a string, not int",
        ),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_line_stops_the_import_naming_it(
    sqlite_trail: Trail, tmp_path: Path, line: bytes, reason: str
) -> None:
    """Exit status 1 at the first bad line, named by number; the lines before it are stored."""
    good = run_cli("export", "--database-url", sqlite_trail.url, "--after-id", "10")
    source = tmp_path / "bad.jsonl"
    source.write_bytes(
        good.stdout.encode() + b"\n" + line % {b"id": new_event_id().encode()} + b"\n"
    )
    target = f"sqlite:///{tmp_path / 'target.db'}"
    result = run_cli("import", str(source), "--database-url", target)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {source}:4: {reason}")
    assert result.stderr.count("\n") == 1
    assert "the 2 entries before it are stored (2 new)" in result.stderr
    assert len(stored(target)) == 2


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    """A file that is not there is named; no database is created for it."""
    target = tmp_path / "target.db"
    result = run_cli(
        "import", str(tmp_path / "nope.jsonl"), "--database-url", f"sqlite:///{target}"
    )
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory\n"
    )
    assert not target.exists()


def test_import_keeps_details_exactly_as_exported(tmp_path: Path) -> None:
    """The parser reads big integers and floats exactly, and validates like record()."""
    event_id = new_event_id()
    line = (
        b'{"id":9,"event_id":"' + event_id.encode() + b'","event_type":"llm.request",'
        b'"actor":null,"resource":null,"correlation_id":null,'
        b'"created_at":"2026-01-01T00:00:00.000001+00:00",'
        b'"details":{"n":123456789012345678901234567890,"f":0.1}}'
    )
    row = import_module.parse_entry_line(line)
    assert row.event_id == event_id
    assert decode_details(row.details) == {"n": 123456789012345678901234567890, "f": 0.1}
    assert row.created_at == datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


# -- a failed import creates nothing --------------------------------------------------------


def leftovers(url: str) -> list[str]:
    """What is in the database at ``url``: SQLite files beside its path, or PostgreSQL tables."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
    return sorted(
        row[0]
        for row in fetch(
            url,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()",
        )
    )


def chain_file(source_url: str, tmp_path: Path, name: str = "chain.jsonl") -> Path:
    """``export --chain`` of the trail at ``source_url`` into a file; its path."""
    out = tmp_path / name
    result = run_cli("export", "--chain", "--database-url", source_url, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


@pytest.mark.parametrize("chain", [False, True], ids=["plain", "chain"])
def test_a_bad_first_line_creates_no_database(
    database_url: str, tmp_path: Path, chain: bool
) -> None:
    """A new SQLite file, or an empty PostgreSQL schema, is left as it was: nothing made."""
    bad = tmp_path / "bad.jsonl"
    if chain:  # a chain export whose first line lost its entry_hash
        source = f"sqlite:///{tmp_path / 'source.db'}"
        write_rows(source, tricky_rows())
        lines = chain_file(source, tmp_path).read_bytes().splitlines(keepends=True)
        first = orjson.loads(lines[0])
        first["entry_hash"] = "not a hash"
        bad.write_bytes(orjson.dumps(first) + b"\n" + b"".join(lines[1:]))
        reason = "entry_hash 'not a hash' is not a SHA-256 hex digest"
    else:
        bad.write_bytes(b'{"event_type": "tool.invoked"}\n')
        reason = "event_id is missing"
    result = run_cli("import", str(bad), "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}:1: {reason}; nothing was imported")
    assert result.stderr.count("\n") == 1
    assert leftovers(database_url) == []


def test_an_empty_file_imports_nothing_and_creates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """No entry, no database: exit 0 and a report of none."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    result = run_cli("import", str(empty), "--database-url", database_url, "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) | {"database": None} == {
        "read": 0,
        "imported": 0,
        "skipped": 0,
        "database": None,
        "chain": "rechained",
    }
    assert leftovers(database_url) == []


def test_a_chain_the_database_refuses_leaves_no_database(database_url: str, tmp_path: Path) -> None:
    """The database was made for the first batch; the import failed after it: all taken back."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    write_rows(source, tricky_rows())
    lines = chain_file(source, tmp_path).read_bytes().splitlines(keepends=True)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(b"".join(lines) + lines[1])  # an entry twice: the insert refuses it
    result = run_cli("import", str(twice), "--database-url", database_url)
    assert result.exit_code == 1
    assert "an event_id appears twice" in result.stderr
    assert "nothing was imported" in result.stderr
    assert result.stderr.count("\n") == 1
    assert leftovers(database_url) == []


def test_an_interrupted_chain_import_leaves_no_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after a batch was written: rolled back, and the new database removed."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    write_rows(source, tricky_rows())
    out = chain_file(source, tmp_path)
    real, calls = import_module.parse_chain_line, {"n": 0}

    def interrupted(line: bytes) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(line)

    monkeypatch.setattr(import_module, "IMPORT_BATCH", 2)
    monkeypatch.setattr(import_module, "parse_chain_line", interrupted)
    result = run_cli("import", str(out), "--database-url", database_url)
    assert result.exit_code == 130
    assert leftovers(database_url) == []


@pytest.mark.parametrize("chain", [False, True], ids=["plain", "chain"])
def test_a_failed_import_leaves_an_existing_trail_as_it_was(
    trail: Trail, tmp_path: Path, chain: bool
) -> None:
    """Its tables, entries and chain are untouched; verify still finds it intact."""
    before = leftovers(trail.url)
    head = fetch(trail.url, "SELECT head_seq, head_hash FROM audit_chain")
    bad = tmp_path / "bad.jsonl"
    if chain:  # another trail's chain: refused, the target holds a chain of its own
        source = f"sqlite:///{tmp_path / 'source.db'}"
        write_rows(source, tricky_rows())
        bad = chain_file(source, tmp_path)
    else:
        bad.write_bytes(b"not json\n")
    result = run_cli("import", str(bad), "--database-url", trail.url)
    assert result.exit_code == 1
    assert "nothing was imported" in result.stderr
    assert leftovers(trail.url) == before
    assert fetch(trail.url, "SELECT head_seq, head_hash FROM audit_chain") == head
    report = verify_url(trail.url)
    assert report.intact, report.findings
    assert report.last_seq == len(trail.rows)
    assert [e["event_id"] for e in stored(trail.url)] == [row.event_id for row in trail.rows]


@pytest.mark.postgres
def test_entries_postgresql_cannot_hold_leave_no_tables(postgres_url: str, tmp_path: Path) -> None:
    """An entry PostgreSQL cannot hold (a NUL in the actor) is refused, naming it; no tables."""
    line = (
        b'{"event_id":"' + new_event_id().encode() + b'","event_type":"tool.invoked",'
        b'"actor":"a\\u0000b","resource":null,"correlation_id":null,'
        b'"created_at":"2026-01-01T00:00:00.000001+00:00","details":{}}\n'
    )
    source = tmp_path / "nul.jsonl"
    source.write_bytes(line)
    result = run_cli("import", str(source), "--database-url", postgres_url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "actor" in result.stderr
    assert "NUL" in result.stderr
    assert leftovers(postgres_url) == []


def test_a_failed_import_into_an_empty_existing_file_leaves_the_file(tmp_path: Path) -> None:
    """An empty SQLite file that was there stays there, without the tables made for the import."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    write_rows(source, tricky_rows())
    lines = chain_file(source, tmp_path).read_bytes().splitlines(keepends=True)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(b"".join(lines) + lines[0])
    existing = tmp_path / "existing.db"
    existing.touch()
    url = f"sqlite:///{existing}"
    result = run_cli("import", str(twice), "--database-url", url)
    assert result.exit_code == 1
    assert existing.exists()
    assert fetch(url, "SELECT name FROM sqlite_master") == []
