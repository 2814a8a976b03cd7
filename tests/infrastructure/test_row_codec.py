"""The one codec of an entry as a JSON line: what the spool, export and import share."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.persistence.browse import BrowsedRow
from cleveragents.infrastructure.row_codec import (
    NOT_REPLAYED,
    REIMPORT_RULES,
    SPOOL_RULES,
    STORED_FIELDS,
    LineRules,
    RowError,
    decode_entry,
    json_line,
    spool_line,
)

WRITER = "0192f3a4-0000-7000-8000-000000000001"


def entry_row(event_type: str = "tool.invoked") -> EntryRow:
    """An entry as the writer hands it over, with its writer."""
    return EntryRow(
        new_event_id(),
        event_type,
        "agent:a",
        None,
        encode_details({"n": 12345678901234567890123}),
        "run-1",
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        WRITER,
        7,
    )


def test_a_spool_line_reads_back_as_the_row_it_was_written_from() -> None:
    """The spool's rules keep the writer's fields; the details text is kept exactly."""
    row = entry_row()
    assert decode_entry(spool_line(row, "error", "now"), SPOOL_RULES) == row


def test_a_reimported_line_drops_the_writer() -> None:
    """A re-chained entry belongs to no writer of the database it is imported into."""
    row = entry_row()
    decoded = decode_entry(spool_line(row, "error", "now"), REIMPORT_RULES)
    assert decoded == row._replace(writer_id=None, writer_seq=None)


@pytest.mark.parametrize("event_type", sorted(NOT_REPLAYED))
@pytest.mark.parametrize("rules", [SPOOL_RULES, REIMPORT_RULES], ids=["spool", "import"])
def test_declarations_are_refused_with_the_readers_reason(
    event_type: str, rules: LineRules
) -> None:
    """A purge's, a replay's or an import's declaration is never brought in from elsewhere."""
    line = spool_line(entry_row(event_type), "error", "now")
    with pytest.raises(RowError, match=event_type):
        decode_entry(line, rules)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("writer_id", "w" * 37, "longer than a writer id"),
        ("writer_seq", 0, "writer_seq 0 is not a positive integer"),
        ("created_at", "2026-01-01T00:00:00", "has no time zone"),
        ("actor", "a\x00b", "NUL"),
    ],
)
def test_one_rule_names_what_is_wrong(field: str, value: object, reason: str) -> None:
    """The spool and the import reject a bad field with the same words."""
    item = orjson.loads(spool_line(entry_row(), "error", "now"))
    item[field] = value
    with pytest.raises(RowError, match=reason):
        decode_entry(orjson.dumps(item), SPOOL_RULES)


def test_a_json_line_splices_the_stored_details_last() -> None:
    """The export's line: a stored row's fields in order, then the details text as stored."""
    details = '{"b": 1, "a": [1.0]}'  # not canonical: written as it is
    row = BrowsedRow(3, new_event_id(), "tool.invoked", None, "r", None, datetime.now(UTC), details)
    line = json_line(row)
    assert list(orjson.loads(line)) == list(STORED_FIELDS)
    assert line.endswith(b',"details":' + details.encode() + b"}\n")


def without_details(item: dict[str, object]) -> dict[str, object]:
    """``item`` with its details left out."""
    return {name: value for name, value in item.items() if name != "details"}


@pytest.mark.parametrize(
    "change",
    [
        without_details,
        lambda item: {**item, "details": None},
        lambda item: {**item, "event_id": "x" * 36},
    ],
    ids=["no-details", "null-details", "non-uuid-id"],
)
def test_the_spool_takes_what_it_always_took(change: Callable[[dict[str, object]], object]) -> None:
    """A spool line without details, with null details or a 36-character non-UUID id is read."""
    item = change(json.loads(spool_line(entry_row(), "error", "now")))
    assert isinstance(item, dict)
    row = decode_entry(json.dumps(item).encode(), SPOOL_RULES)
    assert row.event_id == item["event_id"]
    kept = item.get("details") is not None
    assert row.details == (entry_row().details if kept else "{}")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (without_details, "details is missing"),
        (lambda item: {**item, "event_id": "x" * 36}, "is not a UUID"),
    ],
    ids=["no-details", "non-uuid-id"],
)
def test_the_import_keeps_its_stricter_rules(
    change: Callable[[dict[str, object]], object], reason: str
) -> None:
    """An exported line without details, or with an id that is not a UUID, is refused."""
    line = json.dumps(change(json.loads(spool_line(entry_row(), "error", "now")))).encode()
    with pytest.raises(RowError, match=reason):
        decode_entry(line, REIMPORT_RULES)


@pytest.mark.parametrize("rules", [SPOOL_RULES, REIMPORT_RULES], ids=["spool", "import"])
def test_a_line_that_is_not_an_object_is_named_as_the_line(rules: LineRules) -> None:
    """``[1]`` is refused as a line that is not a JSON object, not as details."""
    with pytest.raises(RowError, match=r"not a JSON object \(the line is '\[1\]'\)") as caught:
        decode_entry(b"[1]", rules)
    assert "details" not in str(caught.value)
