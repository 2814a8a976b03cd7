"""A trail moved with a plain ``export`` (no ``--chain``): the import declares itself
(``trail.imported``), and ``verify`` tells a checkpoint of the source chain from tampering.

The source is a real SQLite trail; the target a fresh SQLite file or PostgreSQL schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cleveragents import AuditService, Settings
from cleveragents.domain.event_types import SystemEventType
from tests.cli.conftest import run_cli
from tests.cli.test_chain_move import _run, checkpoint, import_json, verify_cli, write_source
from tests.trail_support import execute, fetch, verify_url

KEY = "k" * 32
_DECLARATIONS = (
    "SELECT seq, details, hmac, writer_id FROM audit_log"
    " WHERE event_type = 'trail.imported' ORDER BY seq"
)


def plain_export(url: str, tmp_path: Path, name: str = "plain.jsonl") -> Path:
    """``export --out`` (no --chain) of the trail at ``url``; the file."""
    out = tmp_path / name
    result = run_cli("export", "--database-url", url, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def declarations(url: str) -> list[dict[str, Any]]:
    """The details of every ``trail.imported`` entry, with its own seq, by seq."""
    return [
        {**orjson.loads(details), "seq": seq} for seq, details, _, _ in fetch(url, _DECLARATIONS)
    ]


def truncate(url: str, keep_through: int) -> None:
    """Remove the entries after seq ``keep_through`` and set the head back onto it."""
    ((hashed,),) = fetch(url, "SELECT entry_hash FROM audit_log WHERE seq = :s", s=keep_through)
    execute(
        url,
        "DELETE FROM audit_log WHERE seq > :s",
        "UPDATE audit_chain SET head_seq = :s, head_hash = :h WHERE id = 1",
        s=keep_through,
        h=hashed,
    )


@pytest.fixture
def moved(database_url: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """A SQLite trail, a checkpoint of it, then a plain export imported into ``database_url``:
    (target url, the source's checkpoint file, the export file)."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(source_url)
    saved = checkpoint(source_url, tmp_path)
    out = plain_export(source_url, tmp_path)
    assert import_json(out, database_url)["chain"] == "rechained"
    return database_url, saved, out


def test_a_plain_import_declares_itself_in_each_transaction(
    database_url: str, tmp_path: Path
) -> None:
    """1,200 entries: every transaction ends with trail.imported (count, seqs, file), hidden
    from reads; together they account for every entry imported; verify says intact."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    _run(source_url, "agent:big", 1_200)
    out = plain_export(source_url, tmp_path)
    assert import_json(out, database_url)["imported"] == 1_200

    declared = declarations(database_url)
    assert len(declared) > 1  # one per transaction
    assert {d["source"] for d in declared} == {str(out)}
    assert len({d["import_id"] for d in declared}) == 1
    assert sum(d["count"] for d in declared) == 1_200
    next_seq = 1
    for d in declared:  # each covers the entries just before it, and nothing else
        assert (d["first_seq"], d["last_seq"]) == (next_seq, d["seq"] - 1)
        assert d["count"] == d["last_seq"] - d["first_seq"] + 1
        next_seq = d["seq"] + 1
    assert fetch(database_url, "SELECT max(seq), count(*) FROM audit_log") == [
        (next_seq - 1, 1_200 + len(declared))
    ]
    with AuditService(Settings(database_url=database_url, audit_async=False)) as service:
        assert service.count() == 1_200
        assert service.count(event_type=SystemEventType.TRAIL_IMPORTED) == len(declared)
        with pytest.raises(ValueError, match=r"trail\.imported is a system entry"):
            service.record("trail.imported", details={"count": 1})
    shown = run_cli("query", "--database-url", database_url, "--json", "--limit", "2000")
    assert b"trail.imported" not in shown.stdout_bytes
    status, document = verify_cli(database_url)
    assert (status, document["status"]) == (0, "intact"), document["findings"]

    again = import_json(out, database_url)  # nothing new: no transaction, no declaration
    assert (again["imported"], len(declarations(database_url))) == (0, len(declared))


def test_a_keyed_plain_import_signs_its_declaration(database_url: str, tmp_path: Path) -> None:
    """In keyed mode trail.imported carries an HMAC like every entry; verify with the key."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    _run(source_url, "agent:keyed", 5, audit_hmac_key=KEY)
    out = plain_export(source_url, tmp_path)
    env = {"CLEVERAGENTS_AUDIT_HMAC_KEY": KEY}
    result = run_cli("import", str(out), "--database-url", database_url, env=env)
    assert result.exit_code == 0, result.stderr
    ((seq, _, mac, writer),) = fetch(database_url, _DECLARATIONS)
    assert (seq, writer) == (6, None)
    assert mac is not None
    report = verify_url(database_url, key=KEY.encode())
    assert report.intact, report.findings
    assert report.hmac_checked


def test_a_source_checkpoint_cannot_be_checked_after_a_plain_move(
    moved: tuple[str, Path, Path],
) -> None:
    """verify --checkpoint source: exit 4, one line naming the import, the file and what to do."""
    url, saved, out = moved
    status, document = verify_cli(url)
    assert (status, document["status"]) == (0, "intact"), document["findings"]
    status, document = verify_cli(url, "--checkpoint", str(saved))
    assert (status, document["status"], document["findings"]) == (4, "unverifiable", [])
    assert document["entries"] == verify_url(url).entries  # the trail itself was checked

    result = run_cli("verify", "--database-url", url, "--checkpoint", str(saved))
    assert result.exit_code == 4
    assert result.stdout.count("\n") == 1
    (declared,) = declarations(url)
    assert result.stdout.startswith("could not verify ")
    assert "this trail holds entries imported from another chain" in result.stdout
    assert f"seq 1..{declared['last_seq']}: {declared['count']:,} entries from {out}, at " in (
        result.stdout
    )
    assert "cannot be checked against this one" in result.stdout
    assert "(cleveragents-audit checkpoint)" in result.stdout
    assert "move the trail with export --chain" in result.stdout


def test_a_checkpoint_of_the_target_taken_after_the_import_verifies(
    moved: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """A checkpoint of this trail, taken after the import, holds: exit 0."""
    url, _, _ = moved
    own = checkpoint(url, tmp_path, "target.checkpoint")
    _run(url, "agent:after-the-move", 3)
    status, document = verify_cli(url, "--checkpoint", str(own))
    assert (status, document["status"], document["checkpoints"]) == (0, "intact", 1)


def test_tampering_after_the_import_is_still_tampered(
    moved: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """An edited entry, or the end cut off, with the target's own checkpoint: exit 1."""
    url, saved, _ = moved
    own = checkpoint(url, tmp_path, "target.checkpoint")
    execute(url, "UPDATE audit_log SET actor = 'someone else' WHERE seq = 3")
    status, document = verify_cli(url, "--checkpoint", str(own))
    assert (status, document["status"]) == (1, "tampered")
    assert [(f["kind"], f["seq"]) for f in document["findings"]] == [("altered", 3)]
    # The source's checkpoint too: tampering found is tampering, whatever the checkpoint.
    status, document = verify_cli(url, "--checkpoint", str(saved))
    assert (status, document["status"]) == (1, "tampered")
    assert "another chain" in document["findings"][-1]["message"]


def test_a_target_cut_short_after_the_import_is_truncated(
    moved: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """Entries removed from the end and the head set back: the target's own checkpoint (taken
    after the import, so of this chain) reports it, exit 1, not "could not verify"."""
    url, _, _ = moved
    _run(url, "agent:after-the-move", 3)
    own = checkpoint(url, tmp_path, "target.checkpoint")
    head = verify_url(url).last_seq
    assert head is not None
    truncate(url, head - 2)
    status, document = verify_cli(url, "--checkpoint", str(own))
    assert (status, document["status"]) == (1, "tampered")
    (finding,) = [f for f in document["findings"] if f["kind"] != "unterminated_writer"]
    assert (finding["kind"], finding["seq"]) == ("truncated", head)
    assert "entries after" in finding["message"]


def test_a_never_imported_trail_names_no_other_chain(database_url: str, tmp_path: Path) -> None:
    """No trail.imported: a checkpoint that does not match is tampering, and the message says
    nothing of another chain."""
    _run(database_url, "agent:only", 6)
    own = checkpoint(database_url, tmp_path)
    head = verify_url(database_url).last_seq
    assert head is not None
    forged = orjson.loads(own.read_text())
    with own.open("ab") as out:  # a second checkpoint, of another hash at seq 2
        out.write(orjson.dumps({**forged, "seq": 2, "entry_hash": "f" * 64}) + b"\n")
    truncate(database_url, head - 2)
    status, document = verify_cli(database_url, "--checkpoint", str(own))
    assert (status, document["status"]) == (1, "tampered")
    kinds = sorted((f["kind"], f["seq"]) for f in document["findings"])
    assert kinds == [("altered", 2), ("truncated", head), ("unterminated_writer", head - 2)]
    assert not any("another chain" in f["message"] for f in document["findings"])


def test_the_declaration_moves_with_export_chain(database_url: str, tmp_path: Path) -> None:
    """A plainly imported trail moved on with export --chain keeps trail.imported: on the
    next target the first source's checkpoint is still exit 4, the middle one's exit 0."""
    first_url = f"sqlite:///{tmp_path / 'first.db'}"
    middle_url = f"sqlite:///{tmp_path / 'middle.db'}"
    _run(first_url, "agent:first", 4)
    first_checkpoint = checkpoint(first_url, tmp_path, "first.checkpoint")
    import_json(plain_export(first_url, tmp_path), middle_url)
    middle_checkpoint = checkpoint(middle_url, tmp_path, "middle.checkpoint")
    chain = tmp_path / "chain.jsonl"
    result = run_cli("export", "--chain", "--database-url", middle_url, "-o", str(chain))
    assert result.exit_code == 0, result.stderr
    assert import_json(chain, database_url)["chain"] == "kept"
    assert declarations(database_url) == declarations(middle_url)
    status, document = verify_cli(database_url, "--checkpoint", str(middle_checkpoint))
    assert (status, document["status"]) == (0, "intact"), document["findings"]
    status, document = verify_cli(database_url, "--checkpoint", str(first_checkpoint))
    assert (status, document["status"]) == (4, "unverifiable")
    assert "imported from another chain" in document["error"]
