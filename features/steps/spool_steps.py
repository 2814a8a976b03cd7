"""The dead-letter spool: what lands in it, its mode, replaying it, lines that are not entries."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from audit_support import (
    flush,
    is_system_line,
    open_service,
    open_sqlite,
    record_numbered,
    stored_rows,
)
from behave import given, then, when
from behave.runner import Context

SPOOL_FIELDS = {
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


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _drop_table(context: Context) -> None:
    """Drop audit_log from another connection, keeping its DDL for "creates ... again"."""
    with open_sqlite(context.db_path) as connection:
        (context.audit_log_ddl,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'"
        ).fetchone()
        connection.execute("DROP TABLE audit_log")
        connection.commit()


def _spool_lines(context: Context) -> list[bytes]:
    return context.service.spool_path.read_bytes().splitlines(keepends=True)


def _caller_lines(path: Path) -> list[bytes]:
    """The spool's lines that hold the caller's entries, not the writer's own rows."""
    lines = path.read_bytes().splitlines(keepends=True)
    return [line for line in lines if not is_system_line(json.loads(line))]


def _valid_lines(path: Path) -> list[dict[str, object]]:
    """The spool's lines that are JSON objects (what a replay can read), parsed."""
    items = []
    for line in path.read_bytes().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "event_type" in item:
            items.append(item)
    return items


# -- getting entries into the spool -------------------------------------------------------


@given('{count:d} entries the database refused are in the spool of "{db_name}"')
def given_spooled(context: Context, count: int, db_name: str) -> None:
    open_service(context, db_name, audit_retry_deadline=0.3)
    _drop_table(context)
    record_numbered(context, count)
    assert flush(context.service) is False, "the refused entries were written after all"
    assert len(_caller_lines(context.service.spool_path)) == count


@given("the writer's own rows are taken out of the spool")
def given_system_lines_removed(context: Context) -> None:
    context.service.spool_path.write_bytes(b"".join(_caller_lines(context.service.spool_path)))


@given("a copy of the spool is kept")
def given_spool_copy(context: Context) -> None:
    context.spool_copy = context.tmp / "spool-copy.jsonl"
    shutil.copyfile(context.service.spool_path, context.spool_copy)


@given('the line "{text}" is inserted as line {number:d} of the spool')
def given_garbage_line(context: Context, text: str, number: int) -> None:
    lines = _spool_lines(context)
    lines.insert(number - 1, text.encode() + b"\n")
    context.service.spool_path.write_bytes(b"".join(lines))


@given("the spool ends with half a line, as after a crash in the middle of an append")
def given_torn_line(context: Context) -> None:
    whole = _spool_lines(context)[-1]
    context.torn_text = whole[: len(whole) // 2]
    with context.service.spool_path.open("ab") as handle:
        handle.write(context.torn_text)


# -- what the spool holds -----------------------------------------------------------------


@then('the spool beside "{db_name}" holds the last {count:d} entries, one JSON object a line')
def then_spool_holds(context: Context, db_name: str, count: int) -> None:
    spool = context.service.spool_path
    assert spool == context.tmp / f"{db_name}.spool.jsonl", spool
    everything = [json.loads(line) for line in spool.read_bytes().splitlines()]
    # Besides them, only the writer's own rows: a writer.spooled the database refused too.
    items = [item for item in everything if not is_system_line(item)]
    assert all(item["writer_id"] == context.service.writer_id for item in everything)
    expected = context.recorded[-count:]
    assert [item["event_id"] for item in items] == [entry.event_id for entry in expected]
    for item, entry in zip(items, expected, strict=True):
        assert set(item) == SPOOL_FIELDS, sorted(item)
        assert item["details"] == entry.details, (item["details"], entry.details)
        assert item["created_at"] == entry.created_at.isoformat()
        assert "audit_log" in item["error"], item["error"]


@then("the spool is readable and writable by its owner only")
def then_spool_private(context: Context) -> None:
    mode = _mode(context.service.spool_path)
    assert mode == 0o600, oct(mode)


@then('the "audit_entries_failed" error names the spool')
def then_error_names_spool(context: Context) -> None:
    lines = [line for line in context.logs if line.get("event") == "audit_entries_failed"]
    assert lines, [line.get("event") for line in context.logs]
    spool = str(context.service.spool_path)
    for line in lines:
        assert line["log_level"] == "error", line
        assert line["spool"] == spool, line
        assert spool in str(line["hint"]), line


@then("the spool is empty")
def then_spool_empty(context: Context) -> None:
    size = context.service.spool_path.stat().st_size
    assert size == 0, f"the spool still holds {size} bytes"


# -- replaying ----------------------------------------------------------------------------


@when("I replay the spool")
def when_replay(context: Context) -> None:
    context.replayed = _valid_lines(context.service.spool_path)
    context.report = context.service.replay()


@when("I replay the copy of the spool")
def when_replay_copy(context: Context) -> None:
    context.replayed = _valid_lines(context.spool_copy)
    context.report = context.service.replay(context.spool_copy)


@then("the replay read {read:d} entries and inserted {inserted:d}")
def then_replay_counts(context: Context, read: int, inserted: int) -> None:
    report = context.report
    assert (report.read, report.inserted) == (read, inserted), report
    assert report.already_present == read - inserted, report


@then("the replay read the {count:d} entries and the writer's own rows, and inserted them all")
def then_replay_all(context: Context, count: int) -> None:
    report = context.report
    callers = [item for item in context.replayed if not is_system_line(item)]
    assert len(callers) == count, len(callers)
    assert (report.read, report.inserted) == (len(context.replayed), len(context.replayed)), report


@then("the replay read the {count:d} entries and the writer's own rows again, and inserted none")
def then_replay_none(context: Context, count: int) -> None:
    report = context.report
    callers = [item for item in context.replayed if not is_system_line(item)]
    assert len(callers) == count, len(callers)
    assert (report.read, report.inserted) == (len(context.replayed), 0), report
    assert report.already_present == report.read, report


@then("the database holds each of the last {count:d} entries exactly once")
def then_each_once(context: Context, count: int) -> None:
    stored = [row["event_id"] for row in stored_rows(context.db_path)]
    expected = [entry.event_id for entry in context.recorded[-count:]]
    assert len(stored) == len(set(stored)), "an entry is stored twice"
    assert sorted(stored) == sorted(expected), (len(stored), len(expected))


@then("the replay rejected lines {first:d} and {second:d}")
def then_rejected_lines(context: Context, first: int, second: int) -> None:
    numbers = [line.line_number for line in context.report.rejected]
    assert numbers == [first, second], context.report.rejected


@then("line {number:d} was rejected as a torn last line")
def then_torn(context: Context, number: int) -> None:
    reasons = {line.line_number: line.reason for line in context.report.rejected}
    assert "torn" in reasons[number], reasons


@then("the rejects file holds lines {first:d} and {second:d} with their text")
def then_rejects_file(context: Context, first: int, second: int) -> None:
    path = context.report.rejects_path
    assert path == context.service.spool_path.with_name(
        context.service.spool_path.name + ".rejects"
    )
    kept = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [item["line_number"] for item in kept] == [first, second], kept
    assert kept[0]["text"] == "this is not an audit entry", kept[0]
    assert kept[1]["text"].encode() == context.torn_text, kept[1]


@then("the rejects file is readable and writable by its owner only")
def then_rejects_private(context: Context) -> None:
    mode = _mode(context.report.rejects_path)
    assert mode == 0o600, oct(mode)
