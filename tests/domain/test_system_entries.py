"""System entries: each builder's details, and the typed readers that read them back."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.rows import ROW_FIELDS, EntryRow, PendingRow, SystemRow
from cleveragents.domain.system_entries import (
    SYSTEM_ACTOR,
    DroppedDetails,
    ImportDeclaration,
    ImportedDetails,
    PurgedDetails,
    ReplayedDetails,
    SpooledDetails,
    read_details,
    retention_purged,
    spool_replayed,
    trail_imported,
    writer_closed,
    writer_dropped,
    writer_opened,
    writer_seq_ranges,
    writer_spooled,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def caller_row(writer_id: str | None, writer_seq: int | None) -> EntryRow:
    """A caller's row of ``writer_id`` numbered ``writer_seq``."""
    values = dict.fromkeys(ROW_FIELDS)
    values.update(event_id=f"e{writer_seq}", event_type="tool.invoked", details="{}", created_at=T0)
    values.update(writer_id=writer_id, writer_seq=writer_seq)
    return EntryRow(**values)


def details(row: PendingRow | EntryRow) -> dict[str, object]:
    """The row's details, decoded."""
    value = orjson.loads(row.details)
    assert isinstance(value, dict)
    return value


def test_a_writers_rows_are_pending_system_entries_of_that_writer() -> None:
    """writer.* rows wait for their writer_seq and name the system actor and the writer."""
    rows = [
        writer_opened("w", host="h", pid=7, version="1.0", mode="sync"),
        writer_closed("w", last_writer_seq=3, recorded=2, written=2, failed=0, dropped=0),
        writer_dropped("w", 2, 5),
        writer_spooled("w", [3], spool=None, error="down"),
    ]
    assert [type(row) for row in rows] == [PendingRow] * 4
    assert [row.event_type for row in rows] == [
        "writer.opened",
        "writer.closed",
        "writer.dropped",
        "writer.spooled",
    ]
    assert {(row.actor, row.writer_id) for row in rows} == {(SYSTEM_ACTOR, "w")}


def test_writer_opened_names_its_parent_only_when_forked() -> None:
    """parent_writer_id is present for a forked child, absent otherwise."""
    plain = details(writer_opened("w", host="h", pid=7, version="1.0", mode="async"))
    assert plain == {"host": "h", "pid": 7, "version": "1.0", "mode": "async"}
    forked = writer_opened("c", host="h", pid=8, version="1.0", mode="async", parent_writer_id="w")
    assert details(forked)["parent_writer_id"] == "w"


def test_writer_spooled_declares_merged_ranges_read_back_as_pairs() -> None:
    """The writer_seqs are merged into ranges; SpooledDetails reads them as pairs."""
    row = writer_spooled("w", [5, 3, 4, 9], spool="/s", error="down")
    assert details(row) == {
        "count": 4,
        "writer_seqs": [[3, 5], [9, 9]],
        "spool": "/s",
        "error": "down",
    }
    assert SpooledDetails.parse(row.details).writer_seqs == ((3, 5), (9, 9))


def test_writer_dropped_is_read_back_as_its_count() -> None:
    """DroppedDetails reads the count; what is no positive integer reads as 0."""
    assert DroppedDetails.parse(writer_dropped("w", 2, 5).details).count == 2
    for text in ('{"count": -1}', '{"count": true}', '{"count": "2"}', "[]", "not json"):
        assert DroppedDetails.parse(text).count == 0


def test_writer_seq_ranges() -> None:
    """Sorted, deduplicated, merged runs."""
    assert writer_seq_ranges([]) == []
    assert writer_seq_ranges([4, 1, 2, 2, 7, 6]) == [[1, 2], [4, 4], [6, 7]]


def test_spool_replayed_declares_each_writers_ranges() -> None:
    """Rows of no writer are left out; none at all gives no declaration."""
    rows = [caller_row("a", 2), caller_row("a", 1), caller_row("b", 4), caller_row(None, None)]
    declaration = spool_replayed(rows)
    assert declaration is not None
    assert type(declaration) is SystemRow
    assert (declaration.writer_id, declaration.writer_seq) == (None, None)
    assert declaration.event_type == SystemEventType.SPOOL_REPLAYED.value
    assert details(declaration) == {"writers": {"a": [[1, 2]], "b": [[4, 4]]}, "count": 3}
    assert ReplayedDetails.parse(declaration.details).writers == {"a": ((1, 2),), "b": ((4, 4),)}
    assert spool_replayed([caller_row(None, None)]) is None


def test_trail_imported_round_trips() -> None:
    """The declaration of an import's transaction, and ImportedDetails reading it."""
    rows = [caller_row(None, None)] * 3
    declaration = ImportDeclaration("dump.jsonl", import_id="i")(rows, 10)
    assert declaration is not None
    assert declaration == trail_imported(rows, 10, source="dump.jsonl", import_id="i")._replace(
        event_id=declaration.event_id, created_at=declaration.created_at
    )
    assert ImportedDetails.parse(declaration.details) == ImportedDetails(
        "i", 10, 12, 3, "dump.jsonl"
    )
    assert ImportDeclaration("-")([], 1) is None


def test_imported_details_that_are_not_of_the_format_read_as_absent() -> None:
    """Wrong types read as None (a count as 0)."""
    text = '{"import_id": 1, "first_seq": "1", "last_seq": null, "count": 0, "source": []}'
    assert ImportedDetails.parse(text) == ImportedDetails(None, None, None, 0, None)


def test_retention_purged_round_trips() -> None:
    """The purge's declaration, and PurgedDetails reading it."""
    row = retention_purged(through_seq=41, through_hash="ab" * 32, count=40, before=T0)
    assert type(row) is SystemRow
    assert row.event_type == SystemEventType.RETENTION_PURGED.value
    assert details(row) == {
        "through_seq": 41,
        "through_hash": "ab" * 32,
        "count": 40,
        "before": T0.isoformat(),
    }
    assert PurgedDetails.parse(row.details) == PurgedDetails(41, "ab" * 32)


@pytest.mark.parametrize("text", ["", "[1]", '{"through_seq": "3", "through_hash": 3}', "{"])
def test_purged_details_that_are_not_of_the_format_read_as_absent(text: str) -> None:
    """Not an object, or fields of the wrong type: None."""
    assert PurgedDetails.parse(text) == PurgedDetails(None, None)


def test_read_details_never_raises() -> None:
    """Only a JSON object is details; anything else reads as empty."""
    assert read_details('{"a": 1}') == {"a": 1}
    assert read_details("[1]") == {}
    assert read_details("nope") == {}
