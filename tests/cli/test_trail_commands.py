"""``verify``, ``checkpoint``, ``purge`` and ``query --system`` on trails that real writers made.

The commands run in-process through Typer's runner (``run_cli``), and a few as the
installed console script, so that the exit status a shell sees is checked too.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from typer.testing import Result

from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.database import open_database
from tests.cli.conftest import T0, json_lines, run_cli, script
from tests.conftest import MakeService
from tests.support import GENEROUS_S
from tests.trail_support import execute, fetch

#: Every field of ``verify --json``.
REPORT_FIELDS = {
    "status",
    "exit_code",
    "entries",
    "first_seq",
    "last_seq",
    "head_hash",
    "writers",
    "hmac_checked",
    "checkpoints",
    "counts",
    "findings",
    "error",
}
FINDING_FIELDS = {"kind", "seq", "id", "event_id", "writer_id", "message"}
KEY = "the-auditors-key"


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _logs_as_the_script_sets_them() -> Iterator[None]:
    """structlog as ``main()`` sets it up (warnings on stderr), which the runner bypasses."""
    saved = structlog.get_config()
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    yield
    structlog.configure(**saved)


def write_trail(make_service: MakeService, url: str, count: int = 10, **settings: Any) -> str:
    """``count`` entries by one writer that opens and closes: ``count + 2`` entries; its id."""
    service = make_service(database_url=url, **settings)
    for seq in range(count):
        service.record("tool.invoked", actor="agent", details={"seq": seq})
    service.close()
    return service.writer_id


def verify_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``verify --json ARGS``: the exit status and the report document."""
    result = run_cli("verify", "--json", *args)
    assert result.stdout.count("\n") == 1, result.stdout
    return result.exit_code, orjson.loads(result.stdout)


def one_error_line(result: Result, *words: str) -> None:
    """stderr is one ``error:`` line naming ``words``; stdout is empty."""
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def head(url: str) -> tuple[int, str]:
    """The seq and entry_hash of the newest stored entry."""
    ((seq, hashed),) = fetch(
        url, "SELECT seq, entry_hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)"
    )
    return int(seq), str(hashed)


def cut_tail(url: str, keep: int) -> None:
    """What a careful intruder does: remove the entries after ``keep`` and set the head back."""
    ((hashed,),) = fetch(url, "SELECT entry_hash FROM audit_log WHERE seq = :s", s=keep)
    execute(
        url,
        "DELETE FROM audit_log WHERE seq > :s",
        "UPDATE audit_chain SET head_seq = :s, head_hash = :h WHERE id = 1",
        s=keep,
        h=hashed,
    )


# -- verify ------------------------------------------------------------------------------------


def test_verify_an_untouched_trail_exits_0(make_service: MakeService, database_url: str) -> None:
    """Intact: exit 0, one summary line, and a JSON report with every field."""
    writer = write_trail(make_service, database_url)
    result = run_cli("verify", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("intact: 12 entries (seq 1..12), 1 writers, HMAC not used")
    assert result.stdout.count("\n") == 1

    status, report = verify_json("--database-url", database_url)
    assert status == 0
    assert report.keys() == REPORT_FIELDS
    assert report == {
        "status": "intact",
        "exit_code": 0,
        "entries": 12,
        "first_seq": 1,
        "last_seq": 12,
        "head_hash": head(database_url)[1],
        "writers": 1,
        "hmac_checked": False,
        "checkpoints": 0,
        "counts": {},
        "findings": [],
        "error": None,
    }
    assert fetch(database_url, "SELECT DISTINCT writer_id FROM audit_log") == [(writer,)]


@pytest.mark.parametrize(
    ("change", "kind", "seq"),
    [
        ("UPDATE audit_log SET details = '{\"seq\": 99}' WHERE seq = 5", "altered", 5),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 9", "altered", 9),
        ("DELETE FROM audit_log WHERE seq = 7", "deleted", 8),
    ],
    ids=["details-edited", "actor-edited", "entry-deleted"],
)
def test_verify_a_changed_trail_exits_1_naming_the_entry(
    make_service: MakeService, database_url: str, change: str, kind: str, seq: int
) -> None:
    """An edit or a deletion: exit 1, a finding with its kind, seq, id and event_id."""
    write_trail(make_service, database_url)
    located = fetch(database_url, "SELECT id, event_id FROM audit_log WHERE seq = :s", s=seq)
    execute(database_url, change)
    status, report = verify_json("--database-url", database_url)
    assert (status, report["status"], report["exit_code"]) == (1, "tampered", 1)
    found = [f for f in report["findings"] if f["kind"] == kind]
    assert len(found) == 1, report["findings"]
    assert found[0].keys() == FINDING_FIELDS
    # A deletion is reported at the missing seq, naming the entry after the hole.
    reported_seq = seq - 1 if kind == "deleted" else seq
    assert (found[0]["seq"], found[0]["id"], found[0]["event_id"]) == (reported_seq, *located[0])
    assert report["counts"][kind] == 1


def test_verify_an_open_writer_exits_2(make_service: MakeService, database_url: str) -> None:
    """A writer that has not closed (crashed, or still running): loss suspected, exit 2."""
    write_trail(make_service, database_url, 3)
    running = make_service(database_url=database_url)
    for seq in range(4):
        running.record("tool.invoked", actor="busy", details={"seq": seq})
    assert running.flush(GENEROUS_S)
    status, report = verify_json("--database-url", database_url)
    assert (status, report["status"]) == (2, "loss_suspected")
    assert report["counts"] == {"unterminated_writer": 1}
    (finding,) = report["findings"]
    assert (finding["writer_id"], finding["seq"]) == (running.writer_id, 5 + 1 + 4)


def poison_trigger(url: str) -> list[str]:
    """DDL for a trigger that refuses rows whose actor is 'poison', on this backend."""
    if url.startswith("sqlite"):
        return [
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log"
            " WHEN NEW.actor = 'poison' BEGIN SELECT RAISE(ABORT, 'poison row refused'); END"
        ]
    return [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.actor = 'poison' THEN RAISE EXCEPTION 'poison row refused'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ]


def test_verify_declared_spooled_entries_exit_3_until_replayed(
    make_service: MakeService, database_url: str, tmp_path: Path
) -> None:
    """Entries the writer spooled and declared: exit 3; after `replay`, exit 0."""
    spool = tmp_path / "spool.jsonl"
    service = make_service(database_url=database_url, audit_spool_path=spool)
    service.record("session.started")
    assert service.flush(GENEROUS_S)
    execute(database_url, *poison_trigger(database_url))
    for seq in range(20):
        service.record("tool.invoked", actor="poison" if seq == 11 else "agent")
    service.close()
    status, report = verify_json("--database-url", database_url)
    assert (status, report["status"]) == (3, "declared_drops")
    assert report["counts"] == {"spooled": 1}
    assert report["findings"][0]["writer_id"] == service.writer_id

    drop = "DROP TRIGGER refuse_poison" + (
        "" if database_url.startswith("sqlite") else " ON audit_log"
    )
    execute(database_url, drop)
    replayed = run_cli("replay", str(spool), "--database-url", database_url, "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert orjson.loads(replayed.stdout)["inserted"] == 1
    assert verify_json("--database-url", database_url)[0] == 0


def test_verify_cannot_verify_a_missing_or_unreachable_database(
    tmp_path: Path, postgres_url: str
) -> None:
    """No file, no server, no table: exit 4 with one error line."""
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    one_error_line(run_cli("verify", "--database-url", missing), "no audit database")
    assert run_cli("verify", "--database-url", missing).exit_code == 4
    assert not (tmp_path / "none.db").exists(), "verify created the database it was to check"

    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=5"
    result = run_cli("verify", "--database-url", unreachable, "--json")
    assert result.exit_code == 4
    one_error_line(result, "cannot open the audit database")

    result = run_cli("verify", "--database-url", postgres_url)  # an empty schema
    assert result.exit_code == 4
    one_error_line(result, "no audit trail yet")


def test_verify_cannot_use_a_bad_checkpoint_file(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """A missing, empty or foreign --checkpoint file: exit 4, named on one line."""
    write_trail(make_service, sqlite_url, 2)
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "foreign.json").write_text('{"format": "something-else/1", "seq": 1}\n')
    (tmp_path / "torn.jsonl").write_bytes(
        run_cli("checkpoint", "--database-url", sqlite_url).stdout_bytes + b'{"format": "clev'
    )
    for name, words in [
        ("absent.json", ["--checkpoint", "No such file"]),
        ("empty.json", ["is empty"]),
        ("foreign.json", ["not a checkpoint"]),
        ("torn.jsonl", ["torn.jsonl:2"]),
    ]:
        result = run_cli(
            "verify", "--database-url", sqlite_url, "--checkpoint", str(tmp_path / name)
        )
        assert result.exit_code == 4, (name, result.stdout, result.stderr)
        one_error_line(result, *words)


def test_verify_keyed_trail_with_key_env(
    make_service: MakeService, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HMAC mode: --key-env VAR verifies; no key or an unset VAR: 4; a wrong key: 1."""
    write_trail(make_service, database_url, 5, audit_hmac_key=KEY)
    status, report = verify_json("--database-url", database_url)
    assert (status, report["status"]) == (4, "unverifiable")
    assert "HMAC" in report["error"]
    result = run_cli("verify", "--database-url", database_url)
    assert result.exit_code == 4
    assert result.stdout.startswith("could not verify")

    result = run_cli("verify", "--database-url", database_url, "--key-env", "AUDITOR_KEY")
    assert result.exit_code == 4
    one_error_line(result, "AUDITOR_KEY is not set")

    monkeypatch.setenv("AUDITOR_KEY", KEY)
    status, report = verify_json("--database-url", database_url, "--key-env", "AUDITOR_KEY")
    assert (status, report["status"], report["hmac_checked"]) == (0, "intact", True)
    monkeypatch.setenv("AUDITOR_KEY", "a guess")
    status, report = verify_json("--database-url", database_url, "--key-env", "AUDITOR_KEY")
    assert (status, report["counts"]) == (1, {"altered": 7})

    # Without --key-env, the library's own setting is the key.
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_HMAC_KEY", KEY)
    assert verify_json("--database-url", database_url)[0] == 0
    monkeypatch.delenv("AUDITOR_KEY")
    result = run_cli("verify", "--database-url", database_url, "--key-env", "AUDITOR_KEY")
    assert result.exit_code == 4  # a named variable that is unset is not silently replaced


# -- checkpoint --------------------------------------------------------------------------------


def test_checkpoint_prints_the_head_and_appends_it_to_a_private_file(
    make_service: MakeService, database_url: str, tmp_path: Path
) -> None:
    """checkpoint: one JSON document of the head; --out appends 0600 lines verify accepts."""
    write_trail(make_service, database_url, 8)
    result = run_cli("checkpoint", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    (document,) = json_lines(result.stdout)
    assert document.keys() == {"format", "seq", "entry_hash", "count", "time"}
    assert document["format"] == "cleveragents-audit-checkpoint/1"
    assert (document["seq"], document["entry_hash"]) == head(database_url)
    assert document["count"] == 10

    out = tmp_path / "kept-elsewhere" / "checkpoints.jsonl"
    out.parent.mkdir()
    first = run_cli("checkpoint", "--database-url", database_url, "--out", str(out))
    assert first.exit_code == 0, first.stderr
    assert first.stdout == ""
    assert f"checkpoint at seq 10 appended to {out}" in first.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    write_trail(make_service, database_url, 3)
    assert run_cli("checkpoint", "--database-url", database_url, "-o", str(out)).exit_code == 0
    kept = json_lines(out.read_text())
    assert [(c["seq"], c["count"]) for c in kept] == [(10, 10), (15, 15)]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    status, report = verify_json("--database-url", database_url, "--checkpoint", str(out))
    assert (status, report["checkpoints"]) == (0, 2)

    # The last writer's entries and its writer.closed go, and the head row is set back.
    cut_tail(database_url, 12)
    status, report = verify_json("--database-url", database_url)
    assert (status, report["counts"]) == (2, {"unterminated_writer": 1})  # all it can tell
    status, report = verify_json("--database-url", database_url, "--checkpoint", str(out))
    assert status == 1
    assert [(f["kind"], f["seq"]) for f in report["findings"] if f["kind"] == "truncated"] == [
        ("truncated", 15)
    ]


def test_checkpoint_of_a_missing_database_is_an_error(tmp_path: Path) -> None:
    """checkpoint on a path with no database: exit 2, nothing created."""
    result = run_cli("checkpoint", "--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == 2
    one_error_line(result, "no audit database")
    assert not (tmp_path / "none.db").exists()


# -- purge -------------------------------------------------------------------------------------


def hand_made(url: str, hours: list[float]) -> list[str]:
    """Entries at T0 + ``hours``, appended in this order through the chain; their event ids."""
    rows = [
        EntryRow(
            new_event_id(),
            "tool.invoked",
            "agent",
            None,
            encode_details({"n": n}),
            None,
            T0 + timedelta(hours=h),
            None,
            None,
        )
        for n, h in enumerate(hours)
    ]
    database = open_database(url)
    try:
        database.write_batch(rows)
    finally:
        database.dispose()
    return [row.event_id for row in rows]


def test_purge_removes_only_a_prefix_and_verify_still_passes(database_url: str) -> None:
    """An old entry after a newer one stays; a retention.purged entry declares what went."""
    ids = hand_made(database_url, [0, 2, -24, 3])  # the third is the oldest, but comes later
    before = (T0 + timedelta(hours=1)).isoformat()
    (hashed,) = fetch(database_url, "SELECT entry_hash FROM audit_log WHERE seq = 1")[0]
    result = run_cli("purge", "--before", before, "--database-url", database_url, "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) == {
        "before": before,
        "through_seq": 1,
        "through_hash": hashed,
        "deleted": 1,
    }
    left = run_cli("query", "--database-url", database_url, "--json")
    assert [e["event_id"] for e in json_lines(left.stdout)] == ids[1:]
    declared = run_cli(
        "query", "--database-url", database_url, "--json", "--type", "retention.purged"
    )
    (entry,) = json_lines(declared.stdout)
    assert entry["actor"] == "cleveragents-audit"
    assert (entry["details"]["through_seq"], entry["details"]["count"]) == (1, 1)
    status, report = verify_json("--database-url", database_url)
    assert (status, report["first_seq"], report["entries"]) == (0, 2, 4)

    nothing = run_cli("purge", "--before", "2026-01-01", "--database-url", database_url)
    assert nothing.exit_code == 0, nothing.stderr
    assert nothing.stdout.startswith("nothing older than 2026-01-01T00:00:00+00:00 to purge")

    # the declaration above is seconds old: younger than the default --min-age (1d)
    everything = run_cli("purge", "--before", "now", "--database-url", database_url, "--yes")
    assert everything.exit_code == 0, everything.stderr
    assert everything.stdout.startswith("purged 4 entries (through seq 5)")
    status, report = verify_json("--database-url", database_url)
    assert (status, report["first_seq"], report["entries"]) == (0, 6, 1)


def test_purge_refuses_a_bad_time_and_a_missing_database(tmp_path: Path, sqlite_url: str) -> None:
    """purge --before garbage, or on no database: exit 2, one error line."""
    hand_made(sqlite_url, [0])
    result = run_cli("purge", "--before", "last tuesday", "--database-url", sqlite_url)
    assert result.exit_code == 2
    one_error_line(result, "--before: 'last tuesday' is not a time")
    result = run_cli(
        "purge", "--before", "1d", "--database-url", f"sqlite:///{tmp_path / 'none.db'}"
    )
    assert result.exit_code == 2
    one_error_line(result, "no audit database")


def test_purge_of_a_trail_written_by_services_keeps_it_verifiable(
    make_service: MakeService, database_url: str
) -> None:
    """Purge everything two closed writers wrote: verify exits 0, on the declaration alone."""
    write_trail(make_service, database_url, 5)
    write_trail(make_service, database_url, 5)
    result = run_cli(
        "purge", "--before", "now", "--database-url", database_url, "--json", "--yes"
    )  # entries written just now: younger than the default --min-age (1d)
    assert orjson.loads(result.stdout)["deleted"] == 14
    status, report = verify_json("--database-url", database_url)
    assert (status, report["entries"], report["first_seq"]) == (0, 1, 15)


# -- query --system ----------------------------------------------------------------------------


def test_query_and_tail_show_system_entries_only_with_system(
    make_service: MakeService, database_url: str
) -> None:
    """query and tail leave writer.* out unless --system (or --type names one)."""
    writer = write_trail(make_service, database_url, 3)
    plain = json_lines(run_cli("query", "--database-url", database_url, "--json").stdout)
    assert [e["event_type"] for e in plain] == ["tool.invoked"] * 3
    shown = json_lines(
        run_cli("query", "--database-url", database_url, "--json", "--system").stdout
    )
    assert [e["event_type"] for e in shown] == [
        "writer.opened",
        *["tool.invoked"] * 3,
        "writer.closed",
    ]
    assert [e["id"] for e in shown] == [1, 2, 3, 4, 5]
    assert shown[0]["details"]["pid"] == os.getpid()
    assert shown[-1]["details"]["last_writer_seq"] == 4
    assert {e["actor"] for e in (shown[0], shown[-1])} == {"cleveragents-audit"}
    named = json_lines(
        run_cli("query", "--database-url", database_url, "--json", "-t", "writer.closed").stdout
    )
    assert [e["id"] for e in named] == [5]

    tail = run_cli("tail", "--database-url", database_url, "--json", "-n", "1")
    assert [e["id"] for e in json_lines(tail.stdout)] == [4]
    tail = run_cli("tail", "--database-url", database_url, "--json", "-n", "1", "--system")
    assert [e["event_type"] for e in json_lines(tail.stdout)] == ["writer.closed"]
    assert fetch(database_url, "SELECT DISTINCT writer_id FROM audit_log") == [(writer,)]


# -- the console script ------------------------------------------------------------------------


def test_verify_as_a_process_exits_with_the_verdict(
    make_service: MakeService, sqlite_url: str, tmp_path: Path
) -> None:
    """The installed script: exit 1 and a tab-separated finding line when piped; 4, 0."""
    write_trail(make_service, sqlite_url, 4)
    execute(sqlite_url, "UPDATE audit_log SET resource = 'moved' WHERE seq = 3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERAGENTS_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script(), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=GENEROUS_S * 3,
            check=False,
        )

    done = run("verify", "--database-url", sqlite_url)
    assert done.returncode == 1, done.stderr
    summary, finding = done.stdout.splitlines()
    assert summary.startswith("TAMPERED: 6 entries (seq 1..6), 1 writers")
    fields = finding.split("\t")
    assert fields[:3] == ["altered", "3", "3"]
    assert "changed" in fields[-1]
    assert run("verify", "--database-url", f"sqlite:///{tmp_path / 'none.db'}").returncode == 4
    execute(sqlite_url, "UPDATE audit_log SET resource = NULL WHERE seq = 3")
    assert run("verify", "--database-url", sqlite_url).returncode == 0


def test_export_and_stats_count_system_entries_only_with_system(
    make_service: MakeService, database_url: str
) -> None:
    """export and stats leave writer.* out unless --system, totals included."""
    write_trail(make_service, database_url, 4)  # writer.opened, 4 entries, writer.closed
    exported = json_lines(run_cli("export", "--database-url", database_url).stdout)
    assert [line["event_type"] for line in exported] == ["tool.invoked"] * 4
    everything = json_lines(run_cli("export", "--database-url", database_url, "--system").stdout)
    kinds = [line["event_type"] for line in everything]
    assert (kinds[0], kinds[-1], len(kinds)) == ("writer.opened", "writer.closed", 6)
    stats = orjson.loads(run_cli("stats", "--database-url", database_url, "--json").stdout)
    assert (stats["rows"], stats["rows_in_trail"]) == (4, 4)
    stats = orjson.loads(
        run_cli("stats", "--database-url", database_url, "--json", "--system").stdout
    )
    assert (stats["rows"], stats["rows_in_trail"]) == (6, 6)
