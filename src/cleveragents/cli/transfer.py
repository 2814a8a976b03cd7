"""``cleveragents-audit export`` and ``import``: the trail as a file, and back into a database.

``export`` streams the matching entries in pages of :data:`EXPORT_PAGE` rows (by
id, so memory stays bounded whatever the size of the trail) as JSON Lines or CSV,
to stdout or to a file. It exports the entries committed when it starts (up to the
highest id then), so it ends even while the trail keeps growing. A file is written
beside its final name and renamed at the end: an interrupted export leaves no
half file under that name. It is created readable by its owner only.

``import`` reads a JSON Lines export into a database (created at head when it is
new, e.g. a PostgreSQL database replacing the embedded SQLite file), in batches of
:data:`IMPORT_BATCH`, skipping every entry whose event_id is there already: running
it twice, or after an interruption, imports each entry once. Entries are stored as
they are in the file (no redaction: they were redacted when recorded); the target
gives them ids of its own, in the file's order.
"""

from __future__ import annotations

import enum
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cleveragents.cli.common import (
    EXIT_FAILED,
    MAX_ID,
    Actor,
    AsJson,
    CorrelationId,
    DatabaseUrl,
    EventType,
    Resource,
    Since,
    System,
    Until,
    binary_stdout,
    entry_filter,
    fail,
    open_trail,
    stderr_console,
)
from cleveragents.cli.render import csv_chunk, json_line
from cleveragents.domain.details import decode_details, encode_details
from cleveragents.domain.event_types import coerce_stored_event_type
from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.rows import EntryRow
from cleveragents.infrastructure.spool import NOT_REPLAYED

__all__ = ["EXPORT_PAGE", "IMPORT_BATCH", "Format", "export", "import_", "parse_entry_line"]

#: Rows read and written at a time by export.
EXPORT_PAGE = 5_000
#: Entries inserted per batch by import.
IMPORT_BATCH = 1_000


class Format(enum.StrEnum):
    """Export formats."""

    jsonl = "jsonl"
    csv = "csv"


class _Sink:
    """Where an export goes: stdout, or a temporary file renamed to ``path`` at the end."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._temporary: str | None = None
        self.stream: BinaryIO
        if path is None:
            self.stream = binary_stdout()
            return
        try:
            handle, self._temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
            )
        except OSError as exc:
            fail(f"cannot write {path}: {exc.strerror}")
        self.stream = os.fdopen(handle, "wb")

    def finish(self) -> None:
        self.stream.flush()
        if self._temporary is None or self.path is None:
            return
        self.stream.close()
        os.replace(self._temporary, self.path)
        self._temporary = None

    def abandon(self) -> None:
        if self._temporary is None:
            return
        self.stream.close()
        os.unlink(self._temporary)
        self._temporary = None


def _progress(*, rows: bool) -> Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal."""
    console = stderr_console()
    count = MofNCompleteColumn() if rows else DownloadColumn()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def export(
    database_url: DatabaseUrl = None,
    output_format: Annotated[
        Format, typer.Option("--format", "-F", help="jsonl (importable) or csv.")
    ] = Format.jsonl,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to this file (default: stdout).", show_default=False
        ),
    ] = None,
    event_type: EventType = None,
    actor: Actor = None,
    resource: Resource = None,
    correlation_id: CorrelationId = None,
    since: Since = None,
    until: Until = None,
    after_id: Annotated[
        int | None,
        typer.Option(
            "--after-id",
            min=0,
            max=MAX_ID,
            help="Only entries with a higher id (continue an earlier export).",
            show_default=False,
        ),
    ] = None,
    system: System = False,
) -> None:
    """Write the matching entries, oldest first, as JSON Lines or CSV, in bounded memory."""
    where = entry_filter(event_type, actor, resource, correlation_id, since, until, system=system)
    database = open_trail(database_url)
    started = time.perf_counter()
    try:
        with database.connect() as connection:
            top = browse.max_id(connection)
            total = (
                0
                if top is None
                else browse.count_rows(connection, where, after_id=after_id, up_to_id=top)
            )
            sink = _Sink(out)
            try:
                written, last = _write_pages(
                    connection, sink.stream, where, output_format, after_id, top, total
                )
                sink.finish()
            except BaseException:
                sink.abandon()
                raise
    finally:
        database.dispose()
    console = stderr_console()
    if console.is_terminal or out is not None:  # to a file: stderr is free for the summary
        where_to = str(out) if out is not None else "stdout"
        resume = f"; continue later with --after-id {last}" if last is not None else ""
        console.print(
            f"exported {written:,} entries to {where_to} "
            f"in {time.perf_counter() - started:.1f} s{resume}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _write_pages(
    connection: Any,
    stream: BinaryIO,
    where: Any,
    output_format: Format,
    after_id: int | None,
    top: int | None,
    total: int,
) -> tuple[int, int | None]:
    written, last = 0, after_id
    header = output_format is Format.csv
    with _progress(rows=True) as progress:
        task = progress.add_task("exporting", total=total)
        while top is not None:
            rows = browse.page(connection, where, after_id=last, limit=EXPORT_PAGE, up_to_id=top)
            if not rows:
                break
            if output_format is Format.jsonl:
                stream.write(b"".join(json_line(row) for row in rows))
            else:
                stream.write(csv_chunk(rows, header=header))
                header = False
            written += len(rows)
            last = int(rows[-1][0])
            progress.advance(task, len(rows))
            if len(rows) < EXPORT_PAGE:
                break
    if header:  # an empty CSV export still names its columns
        stream.write(csv_chunk((), header=True))
    return written, last


# -- import --------------------------------------------------------------------------------


class LineError(ValueError):
    """A line of an import file that is not an entry."""


def _text_field(entry: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = entry.get(name)
    if value is None:
        if required:
            raise LineError(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise LineError(f"{name} must be a string, not {type(value).__name__}")
    return value


def parse_entry_line(line: bytes) -> EntryRow:
    """The row that one line of a JSON Lines export describes.

    Raises:
        LineError: the line is not a JSON object, or a field is missing or wrong.
    """
    try:
        entry = decode_details(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise LineError("not UTF-8") from None
    except ValueError as exc:
        raise LineError(f"not a JSON object ({exc})") from None
    event_id = _text_field(entry, "event_id", required=True)
    assert event_id is not None
    try:
        if len(event_id) != 36:
            raise ValueError
        uuid.UUID(event_id)
    except ValueError:
        raise LineError(f"event_id {event_id!r} is not a UUID") from None
    event_type = _text_field(entry, "event_type", required=True)
    try:
        kind = coerce_stored_event_type(event_type)
    except ValueError:
        raise LineError(f"unknown event_type {event_type!r}") from None
    if kind.value in NOT_REPLAYED:
        raise LineError(f"{kind.value} entries are not imported: they belong to their own trail")
    created_text = _text_field(entry, "created_at", required=True)
    assert created_text is not None
    try:
        created_at = datetime.fromisoformat(created_text)
    except ValueError:
        raise LineError(f"created_at {created_text!r} is not an ISO 8601 time") from None
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise LineError(f"created_at {created_text!r} has no time zone")
    if "details" not in entry:
        raise LineError("details is missing")
    try:
        details = encode_details(entry["details"])
    except (TypeError, ValueError) as exc:
        raise LineError(str(exc)) from None
    return (
        event_id,
        kind.value,
        _text_field(entry, "actor"),
        _text_field(entry, "resource"),
        details,
        _text_field(entry, "correlation_id"),
        created_at,
        None,  # an imported entry belongs to no writer of this database
        None,
    )


def import_(
    source: Annotated[
        str, typer.Argument(help="A JSON Lines export, or - for standard input.", metavar="FILE")
    ],
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Import a JSON Lines export into a database; entries already there (by event_id) are skipped.

    A new database is created at the current schema: this is how a trail moves from
    the embedded SQLite file to PostgreSQL. Exit status 1 at the first line that is
    not an entry (the lines before it are imported; run again once it is fixed).
    """
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
        size = None
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            fail(f"cannot read {source}: {exc.strerror}")
        size = os.fstat(stream.fileno()).st_size
    database = open_trail(database_url, create=True, appends=True)
    read = imported = 0
    try:
        with _progress(rows=False) as progress:
            task = progress.add_task("importing", total=size)
            pending: list[EntryRow] = []

            def flush() -> None:
                nonlocal imported
                if pending:
                    count, refused = database.insert_new(pending)
                    imported += count
                    if refused:
                        index, reason = refused[0]
                        fail(
                            f"{source}: the database refused the entry {pending[index][0]} "
                            f"({reason}); {len(refused)} refused, {imported:,} new entries "
                            "stored; fix it and import again (what is there is skipped)",
                            EXIT_FAILED,
                        )
                    pending.clear()
                if size is not None:
                    progress.update(task, completed=stream.tell())

            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    pending.append(parse_entry_line(line))
                except LineError as exc:
                    flush()
                    fail(
                        f"{source}:{number}: {exc}; the {read:,} entries before it are stored "
                        f"({imported:,} new); fix the line and import again (what is there "
                        "already is skipped)",
                        EXIT_FAILED,
                    )
                read += 1
                if len(pending) >= IMPORT_BATCH:
                    flush()
            flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        url = database.url
        database.dispose()
    _report(read, imported, url, as_json=as_json)


def _report(read: int, imported: int, url: str, *, as_json: bool) -> None:
    if as_json:
        document = {"read": read, "imported": imported, "skipped": read - imported, "database": url}
        out = binary_stdout()
        out.write(orjson.dumps(document) + b"\n")
        out.flush()
        return
    typer.echo(
        f"imported {imported:,} new entries into {url}; "
        f"{read - imported:,} of the {read:,} read were there already"
    )
