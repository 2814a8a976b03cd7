"""Moving a trail with ``export --chain`` and ``import``: the chain, writers and checkpoints hold.

The source is a SQLite trail written by real services (several writers, a synchronous
one, a purge, a declared drop); the target a fresh PostgreSQL schema or SQLite file.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cleveragents import AuditService, Settings
from cleveragents.application import trail
from cleveragents.cli.import_ import parse_chain_line
from cleveragents.domain.chain import GENESIS_HASH, canonical_header, entry_hash
from cleveragents.domain.errors import AuditQueueFullError
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.verification import FindingKind, VerifyReport, VerifyStatus
from cleveragents.infrastructure.persistence.browse import BrowsedChainRow
from cleveragents.infrastructure.persistence.database import open_database
from cleveragents.infrastructure.row_codec import chain_line
from tests.cli.conftest import run_cli
from tests.cli.test_transfer import TRICKY_DETAILS, chain_file, leftovers
from tests.support import GENEROUS_S, SQLiteWriteLock, sqlite_path, wait_until
from tests.trail_support import execute, fetch, verify_url

#: Every stored field of a row, the chain's included, as the two databases are compared.
ROW_SQL = (
    "SELECT seq, event_id, event_type, actor, resource, details, correlation_id,"
    " writer_id, writer_seq, prev_hash, entry_hash, hmac FROM audit_log ORDER BY id"
)
KEY = "k" * 32


def _run(url: str, actor: str, count: int, **settings: Any) -> None:
    """One service records ``count`` entries by ``actor`` (tricky details) and closes."""
    with AuditService(Settings(database_url=url, **settings)) as service:
        for n in range(count):
            service.record(
                "tool.invoked",
                actor=actor,
                resource="tool:∑",
                correlation_id=f"run-{actor}",
                details={**TRICKY_DETAILS[n % len(TRICKY_DETAILS)], "n": n},
            )


def _after_now() -> datetime:
    """A moment after every entry committed so far and before every later one."""
    moment = datetime.now(UTC) + timedelta(microseconds=1)
    deadline = time.monotonic() + GENEROUS_S
    while datetime.now(UTC) <= moment:
        assert time.monotonic() < deadline, "the clock did not move on"
    return moment


def _purge(url: str, before: datetime, key: str | None) -> None:
    database = open_database(url, create=False, hmac_key=None if key is None else key.encode())
    try:
        assert trail.purge(database, before).deleted > 0
    finally:
        database.dispose()


def write_source(url: str, **settings: Any) -> None:
    """A trail of four writers: a purged first run, two asynchronous runs, a synchronous one."""
    _run(url, "agent:purged", 3, **settings)
    cut = _after_now()
    _run(url, "agent:first", 7, **settings)
    _purge(url, cut, settings.get("audit_hmac_key"))
    _run(url, "agent:second", 5, **settings)
    _run(url, "agent:sync", 4, audit_async=False, **settings)


def drop_some(url: str, refused: int) -> None:
    """A writer that refuses ``refused`` records on overflow (declared by writer.dropped)."""
    with AuditService(
        Settings(database_url=url, audit_overflow="raise", audit_queue_maxsize=2)
    ) as service:
        assert service.flush(GENEROUS_S)
        lock = SQLiteWriteLock(sqlite_path(url))
        try:
            lock.acquire()
            service.record("tool.invoked", actor="taken")  # the writer takes it, then waits
            wait_until(lambda: service.stats().queue_depth == 0, what="the writer to take it")
            for n in range(2):
                service.record("tool.invoked", actor="queued", details={"n": n})
            for n in range(refused):
                with pytest.raises(AuditQueueFullError):
                    service.record("tool.invoked", actor="refused", details={"n": n})
        finally:
            lock.close()


def checkpoint(url: str, tmp_path: Path, name: str = "source.checkpoint") -> Path:
    """``cleveragents-audit checkpoint --out`` of the trail at ``url``; the file."""
    path = tmp_path / name
    result = run_cli("checkpoint", "--database-url", url, "--out", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def import_json(path: Path, url: str) -> dict[str, Any]:
    """``import --json`` of ``path`` into ``url``, which must succeed; its report."""
    result = run_cli("import", str(path), "--database-url", url, "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = orjson.loads(result.stdout)
    return report


def verify_cli(url: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``verify --json`` of the trail at ``url``: (exit status, report)."""
    result = run_cli("verify", "--database-url", url, "--json", *extra)
    report: dict[str, Any] = orjson.loads(result.stdout)
    return result.exit_code, report


def same_verdict(target: VerifyReport, source: VerifyReport) -> None:
    """Two reports that say the same of the same chain."""
    assert target.status is source.status
    assert dict(target.counts) == dict(source.counts)
    assert [(f.kind, f.seq, f.event_id, f.writer_id) for f in target.findings] == [
        (f.kind, f.seq, f.event_id, f.writer_id) for f in source.findings
    ]
    assert (target.entries, target.first_seq, target.last_seq, target.head_hash) == (
        source.entries,
        source.first_seq,
        source.last_seq,
        source.head_hash,
    )
    assert target.writers == source.writers


@pytest.fixture
def source_url(tmp_path: Path) -> str:
    """A SQLite trail of four writers and a purge (see :func:`write_source`)."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(url)
    return url


def test_a_moved_chain_is_the_same_chain(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """SQLite -> PostgreSQL or SQLite: every row keeps seq, hashes and writer; verify intact."""
    source_report = verify_url(source_url)
    assert source_report.intact, source_report.findings
    assert source_report.first_seq is not None
    assert source_report.first_seq > 1  # purged
    saved = checkpoint(source_url, tmp_path)
    out = chain_file(source_url, tmp_path)

    report = import_json(out, database_url)
    rows = fetch(source_url, ROW_SQL)
    assert report | {"database": None} == {
        "read": len(rows),
        "imported": len(rows),
        "skipped": 0,
        "database": None,
        "chain": "kept",
    }
    assert fetch(database_url, ROW_SQL) == rows
    head_sql = "SELECT head_seq, head_hash, origin_seq, origin_prev_hash FROM audit_chain"
    assert fetch(database_url, head_sql) == fetch(source_url, head_sql)
    same_verdict(verify_url(database_url), source_report)

    status, document = verify_cli(database_url, "--checkpoint", str(saved))
    assert (status, document["status"], document["checkpoints"]) == (0, "intact", 1)
    assert document["writers"] == source_report.writers == 3  # the purged run's writer is gone
    with (
        AuditService(Settings(database_url=source_url, audit_async=False)) as source,
        AuditService(Settings(database_url=database_url, audit_async=False)) as target,
    ):
        assert target.count() == source.count() == 16
        assert target.count(include_system=True) == source.count(include_system=True)


@pytest.mark.postgres
def test_a_move_to_postgresql_then_goes_on_there(
    source_url: str, postgres_url: str, tmp_path: Path
) -> None:
    """New entries on PostgreSQL continue the moved chain; source checkpoints still verify."""
    saved = checkpoint(source_url, tmp_path)
    import_json(chain_file(source_url, tmp_path), postgres_url)
    _run(postgres_url, "agent:after-the-move", 6)
    status, document = verify_cli(postgres_url, "--checkpoint", str(saved))
    assert (status, document["status"]) == (0, "intact"), document["findings"]
    assert document["writers"] == 4
    assert document["last_seq"] == verify_url(source_url).last_seq + 8  # opened, 6, closed


def test_writer_accounting_moves_with_the_chain(database_url: str, tmp_path: Path) -> None:
    """A declared drop is reported on the target as on the source, for the same writer."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(source_url)
    drop_some(source_url, refused=3)
    source_report = verify_url(source_url)
    assert source_report.status is VerifyStatus.DECLARED_DROPS
    import_json(chain_file(source_url, tmp_path), database_url)
    target_report = verify_url(database_url)
    same_verdict(target_report, source_report)
    (finding,) = target_report.findings
    assert (finding.kind, "3 entries" in finding.message) == (FindingKind.DROPPED, True)


def test_keyed_mode_keeps_the_hmacs(database_url: str, tmp_path: Path) -> None:
    """HMACs arrive as they were: checked with the key; unverifiable without; a wrong key fails."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(source_url, audit_hmac_key=KEY)
    assert verify_url(source_url, key=KEY.encode()).intact
    import_json(chain_file(source_url, tmp_path), database_url)
    assert [row[-1] for row in fetch(database_url, ROW_SQL)] == [
        row[-1] for row in fetch(source_url, ROW_SQL)
    ]
    keyed = verify_url(database_url, key=KEY.encode())
    assert (keyed.intact, keyed.hmac_checked) == (True, True), keyed.findings
    assert verify_url(database_url).status is VerifyStatus.UNVERIFIABLE
    wrong = verify_url(database_url, key=b"w" * 32)
    assert wrong.status is VerifyStatus.TAMPERED
    assert set(wrong.counts) == {FindingKind.ALTERED.value}
    _run(database_url, "agent:after-the-move", 2, audit_hmac_key=KEY)
    assert verify_url(database_url, key=KEY.encode()).intact


def test_an_altered_entry_is_moved_as_evidence(database_url: str, tmp_path: Path) -> None:
    """A source entry changed behind the writers' back is reported on the target at its seq."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(source_url)
    ((seq,),) = fetch(source_url, "SELECT seq FROM audit_log WHERE actor = 'agent:second' LIMIT 1")
    execute(source_url, "UPDATE audit_log SET actor = 'agent:someone-else' WHERE seq = :s", s=seq)
    source_report = verify_url(source_url)
    assert source_report.status is VerifyStatus.TAMPERED
    import_json(chain_file(source_url, tmp_path), database_url)
    target_report = verify_url(database_url)
    same_verdict(target_report, source_report)
    assert [(f.kind, f.seq) for f in target_report.findings] == [(FindingKind.ALTERED, seq)]


def test_importing_again_skips_what_is_there_and_brings_the_rest(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """The same export again adds nothing; a later one adds only the new part of the chain."""
    out = chain_file(source_url, tmp_path)
    first = import_json(out, database_url)
    again = import_json(out, database_url)
    assert (again["imported"], again["skipped"], again["chain"]) == (0, first["read"], "kept")
    _run(source_url, "agent:later", 3)
    saved = checkpoint(source_url, tmp_path)
    later = import_json(chain_file(source_url, tmp_path, "later.jsonl"), database_url)
    assert (later["imported"], later["skipped"]) == (5, first["read"])  # opened, 3, closed
    assert fetch(database_url, ROW_SQL) == fetch(source_url, ROW_SQL)
    status, document = verify_cli(database_url, "--checkpoint", str(saved))
    assert (status, document["status"]) == (0, "intact"), document["findings"]


def test_a_chain_is_refused_by_a_trail_of_its_own(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """A target with another chain: one line naming it, exit 1, the target unchanged."""
    _run(database_url, "agent:target", 2)
    before = fetch(database_url, ROW_SQL)
    out = chain_file(source_url, tmp_path)
    result = run_cli("import", str(out), "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {out}:1: seq ")
    assert "does not continue the target's chain" in result.stderr
    assert "nothing was imported" in result.stderr
    assert result.stderr.count("\n") == 1
    assert fetch(database_url, ROW_SQL) == before
    assert verify_url(database_url).intact


def test_a_part_of_a_chain_is_refused_by_an_empty_trail(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """export --chain --after-id gives a part: into an empty trail it is refused; nothing made."""
    ((last_id,),) = fetch(source_url, "SELECT max(id) - 4 FROM audit_log")
    out = tmp_path / "part.jsonl"
    result = run_cli(
        "export",
        "--chain",
        "--after-id",
        str(last_id),
        "--database-url",
        source_url,
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    result = run_cli("import", str(out), "--database-url", database_url)
    assert result.exit_code == 1
    assert "no retention.purged entry in it declares seq 1.." in result.stderr
    assert result.stderr.count("\n") == 1
    assert leftovers(database_url) == []


def test_a_plain_export_is_rechained_and_its_checkpoints_do_not_apply(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """Without --chain the entries become new links: verify intact, the source checkpoint
    could not be checked (exit 4), and the report names the import."""
    saved = checkpoint(source_url, tmp_path)
    out = tmp_path / "plain.jsonl"
    assert run_cli("export", "--database-url", source_url, "-o", str(out)).exit_code == 0
    result = run_cli("import", str(out), "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert "as new links of its chain" in result.stdout
    assert verify_url(database_url).intact
    status, document = verify_cli(database_url, "--checkpoint", str(saved))
    assert (status, document["status"]) == (4, "unverifiable")
    assert document["findings"] == []
    assert "imported from another chain" in document["error"]
    assert f"from {out}" in document["error"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--actor", "agent:first"), "--chain exports the whole chain"),
        (("--since", "1d"), "--chain exports the whole chain"),
        (("--format", "csv"), "--chain writes JSON Lines"),
    ],
)
def test_export_chain_takes_no_filters(
    source_url: str, tmp_path: Path, options: tuple[str, ...], named: str
) -> None:
    """A filter would cut the chain: one line on stderr, exit 2, no file."""
    out = tmp_path / "cut.jsonl"
    result = run_cli("export", "--chain", *options, "--database-url", source_url, "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {named}")
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_export_chain_lines_carry_the_chain(source_url: str, tmp_path: Path) -> None:
    """Every entry, system ones included, with its stored chain fields; details spliced last."""
    lines = chain_file(source_url, tmp_path).read_bytes().splitlines()
    rows = fetch(source_url, ROW_SQL)
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        entry = orjson.loads(line)
        assert list(entry)[-1] == "details"
        assert line.endswith(b',"details":' + row[5].encode() + b"}")
        assert (
            entry["seq"],
            entry["event_id"],
            entry["event_type"],
            entry["writer_id"],
            entry["writer_seq"],
            entry["prev_hash"],
            entry["entry_hash"],
            entry["hmac"],
        ) == (row[0], row[1], row[2], row[7], row[8], row[9], row[10], row[11])
    kinds = {orjson.loads(line)["event_type"] for line in lines}
    assert {"writer.opened", "writer.closed", "retention.purged"} <= kinds


def test_a_chain_line_keeps_details_text_it_was_hashed_with(tmp_path: Path) -> None:
    """Details stored in another spelling than the canonical one keep that text, and the hash."""
    created = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    event_id, details = new_event_id(), '{"b": 1, "a": [1.0, 2]}'  # not canonical
    header = canonical_header(
        1, event_id, "tool.invoked", None, None, details, None, created, None, None
    )
    hashed = entry_hash(GENESIS_HASH, header)
    row = (1, event_id, "tool.invoked", None, None, None, created, details)
    line = chain_line(BrowsedChainRow(*row, 1, GENESIS_HASH, hashed, None, None, None))
    parsed = parse_chain_line(line)
    assert parsed.details == details
    assert (parsed.seq, parsed.prev_hash, parsed.entry_hash, parsed.hmac) == (
        1,
        GENESIS_HASH,
        hashed,
        None,
    )
    canonical = parse_chain_line(line.replace(hashed.encode(), b"0" * 64))
    assert canonical.details == '{"a":[1.0,2],"b":1}'  # no text hashes to it: the canonical one


def test_a_hole_in_the_file_is_kept_and_reported(
    source_url: str, database_url: str, tmp_path: Path
) -> None:
    """An entry cut out of a chain file: imported as it is, said so, and verify names the hole."""
    lines = chain_file(source_url, tmp_path).read_bytes().splitlines(keepends=True)
    cut = orjson.loads(lines[5])["seq"]
    holed = tmp_path / "holed.jsonl"
    holed.write_bytes(b"".join(lines[:5] + lines[6:]))
    result = run_cli("import", str(holed), "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: 1 of the entries kept do not follow the entry")
    assert result.stderr.count("\n") == 1
    report = verify_url(database_url)
    assert report.status is VerifyStatus.TAMPERED
    assert (report.findings[0].kind, report.findings[0].seq) == (FindingKind.DELETED, cut)
    assert dict(report.counts) == {"deleted": 1, "writer_gap": 1}  # its writer misses it too


@pytest.mark.postgres
def test_a_chain_moves_back_from_postgresql_to_sqlite(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL -> SQLite keeps the chain too: same rows, same verdict, checkpoint verified."""
    _run(postgres_url, "agent:pg", 6)
    _run(postgres_url, "agent:pg-sync", 3, audit_async=False)
    saved = checkpoint(postgres_url, tmp_path)
    target = f"sqlite:///{tmp_path / 'back.db'}"
    import_json(chain_file(postgres_url, tmp_path), target)
    assert fetch(target, ROW_SQL) == fetch(postgres_url, ROW_SQL)
    same_verdict(verify_url(target), verify_url(postgres_url))
    status, document = verify_cli(target, "--checkpoint", str(saved))
    assert (status, document["status"]) == (0, "intact"), document["findings"]
