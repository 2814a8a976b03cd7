"""``cleveragents-audit export`` and ``import``: the trail as a file, and back into a database.

``export`` streams the matching entries in pages of :data:`EXPORT_PAGE` rows (by
id, so memory stays bounded whatever the size of the trail) as JSON Lines or CSV,
to stdout or to a file. It exports the entries committed when it starts (up to the
highest id then), so it ends even while the trail keeps growing. A file is written
beside its final name and renamed at the end: an interrupted export leaves no
half file under that name. It is created readable by its owner only. With
``--chain`` it writes the whole hash chain, read in one snapshot: every entry, the
library's own included, with its chain fields (``seq``, ``prev_hash``,
``entry_hash``, ``hmac``, ``writer_id``, ``writer_seq``).

``import`` reads a JSON Lines export into a database, skipping every entry whose
event_id is there already: running it twice, or after an interruption, imports
each entry once. Entries are stored as they are in the file (no redaction: they
were redacted when recorded). The database is opened only once the first entries
are ready, and one it created is removed again if nothing could be stored in it.

* A chain export (``export --chain``) keeps its chain: in an empty database, or one
  whose chain it continues, every entry keeps its seq, hashes, HMAC and writer, so
  ``verify`` and the source's checkpoints hold on the target
  (:mod:`cleveragents.infrastructure.persistence.chain_copy`). It is imported in
  one transaction: whole, or (refused) not at all.
* Any other export is *re-chained*: its entries become new links of the target's
  chain, with ids of its own and no writer, in batches of :data:`IMPORT_BATCH`. Each
  transaction ends with a ``trail.imported`` entry (count, seq range, source file), so
  that ``verify`` can tell a checkpoint of the source chain from tampering.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from sqlalchemy.exc import SQLAlchemyError

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
    load_settings,
    one_line,
    open_trail,
    stderr_console,
)
from cleveragents.cli.import_lines import (
    LineError,
    is_chain_line,
    parse_chain_line,
    parse_entry_line,
)
from cleveragents.cli.render import csv_chunk, json_line
from cleveragents.domain.errors import AuditError
from cleveragents.domain.rows import ChainedRow, EntryRow
from cleveragents.infrastructure.accounting import ImportDeclaration
from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.chain_copy import ChainCopy, ChainRefusedError
from cleveragents.infrastructure.persistence.errors import describe
from cleveragents.infrastructure.persistence.import_target import ImportTarget
from cleveragents.infrastructure.persistence.verify import one_snapshot

__all__ = [
    "EXPORT_PAGE",
    "IMPORT_BATCH",
    "Format",
    "chain_line",
    "export",
    "import_",
    "parse_chain_line",
    "parse_entry_line",
]

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
    chain: Annotated[
        bool,
        typer.Option(
            "--chain",
            help="The whole hash chain, to move the trail: every entry (the library's own "
            "included) with seq, prev_hash, entry_hash, hmac, writer_id and writer_seq, read "
            "in one snapshot. Imported into an empty database, it keeps its chain exactly. "
            "No filters.",
        ),
    ] = False,
) -> None:
    """Write the matching entries, oldest first, as JSON Lines or CSV, in bounded memory."""
    if chain:
        _check_chain_options(
            output_format, event_type, actor, resource, correlation_id, since, until
        )
    where = entry_filter(
        event_type, actor, resource, correlation_id, since, until, system=system or chain
    )
    database = open_trail(database_url)
    started = time.perf_counter()
    try:
        with database.connect() as connection:
            if chain:  # no purge or rewrite between two pages shows as a hole
                connection = one_snapshot(connection)
            top = browse.max_id(connection)
            total = (
                0
                if top is None
                else browse.count_rows(connection, where, after_id=after_id, up_to_id=top)
            )
            sink = _Sink(out)
            try:
                written, last = _write_pages(
                    connection, sink.stream, where, output_format, after_id, top, total, chain
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


def _check_chain_options(output_format: Format, *filters: str | None) -> None:
    """--chain writes the whole chain as JSON Lines: a filter or CSV is a one-line error."""
    if output_format is not Format.jsonl:
        fail("--chain writes JSON Lines (what import reads): leave out --format csv")
    if any(value is not None for value in filters):
        fail(
            "--chain exports the whole chain, which a filter would cut into pieces that "
            "cannot keep it; leave out --type, --actor, --resource, --correlation-id, "
            "--since and --until (or export without --chain)"
        )


def chain_line(row: Any) -> bytes:
    """One line of a chain export: a JSON Lines record with the chain's fields too.

    ``row`` is a raw row followed by :data:`browse.CHAIN_COLUMNS`; ``details`` is
    spliced in last, as stored, so that an import finds the hashed text again.
    """
    chain = dict(zip(_CHAIN_FIELDS, row[8:14], strict=True))
    return json_line(row, chain)


_CHAIN_FIELDS = ("seq", "prev_hash", "entry_hash", "hmac", "writer_id", "writer_seq")


def _write_pages(
    connection: Any,
    stream: BinaryIO,
    where: Any,
    output_format: Format,
    after_id: int | None,
    top: int | None,
    total: int,
    chain: bool,
) -> tuple[int, int | None]:
    written, last = 0, after_id
    header = output_format is Format.csv
    with _progress(rows=True) as progress:
        task = progress.add_task("exporting", total=total)
        while top is not None:
            if chain:
                rows = browse.chain_page(connection, after_id=last, limit=EXPORT_PAGE, up_to_id=top)
            else:
                rows = browse.page(
                    connection, where, after_id=last, limit=EXPORT_PAGE, up_to_id=top
                )
            if not rows:
                break
            if chain:
                stream.write(b"".join(chain_line(row) for row in rows))
            elif output_format is Format.jsonl:
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


@dataclass(frozen=True, slots=True)
class _Outcome:
    read: int
    imported: int
    kept: bool  # the chain was kept (a chain export), or the entries were re-chained
    head: tuple[int, str] | None = None
    breaks: int = 0  # kept rows that do not follow the row before them


def import_(
    source: Annotated[
        str, typer.Argument(help="A JSON Lines export, or - for standard input.", metavar="FILE")
    ],
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Import a JSON Lines export into a database; entries already there (by event_id) are skipped.

    A new database is created at the current schema when the first entries are ready,
    and removed again if none could be stored. An export made with --chain keeps its
    chain (seq, hashes, writers) in an empty database, whole or not at all: this is
    how a trail moves from the embedded SQLite file to PostgreSQL. Other exports are
    re-chained, each transaction declared by a trail.imported entry (checkpoints of
    the source do not apply to them): exit status 1 at the first line that is not an
    entry (the lines before it are imported; run again once it is fixed).
    """
    settings = load_settings(database_url)
    target = ImportTarget(settings.database_url, hmac_key=settings.hmac_key_bytes())
    stream, size = _open_source(source)
    try:
        with _progress(rows=False) as progress:
            task = progress.add_task("importing", total=size)

            def advance() -> None:
                if size is not None:
                    progress.update(task, completed=stream.tell())

            lines = _entry_lines(stream)
            first = next(lines, None)
            if first is not None and is_chain_line(first[1]):
                outcome = _import_chain(source, itertools.chain([first], lines), target, advance)
            else:
                rest = lines if first is None else itertools.chain([first], lines)
                outcome = _import_rechained(source, rest, target, advance)
    except BaseException:
        _discard(target)
        raise
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        target.dispose()
    _report(outcome, target.url, as_json=as_json)


def _open_source(source: str) -> tuple[BinaryIO, int | None]:
    if source == "-":
        return sys.stdin.buffer, None
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed by import_
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    return stream, os.fstat(stream.fileno()).st_size


def _entry_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every line that is not blank."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _discard(target: ImportTarget) -> None:
    """After a failure: take back the database the import created, if it holds nothing."""
    try:
        target.discard_if_empty()
    except (SQLAlchemyError, AuditError, OSError) as exc:
        stderr_console().print(
            one_line(f"could not remove what this import created in {target.url}: {exc}"),
            highlight=False,
            markup=False,
        )


def _import_rechained(
    source: str,
    lines: Iterator[tuple[int, bytes]],
    target: ImportTarget,
    advance: Callable[[], None],
) -> _Outcome:
    """Append the entries as new links of the target's chain, a batch per transaction."""
    read = imported = 0
    pending: list[EntryRow] = []
    declaration = ImportDeclaration(source)  # trail.imported, in each transaction

    def flush() -> None:
        nonlocal imported
        if pending:
            count, refused = target.open().insert_new(pending, declare=declaration)
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
        advance()

    for number, line in lines:
        try:
            pending.append(parse_entry_line(line))
        except LineError as exc:
            flush()
            if read == 0:
                fail(f"{source}:{number}: {exc}; nothing was imported", EXIT_FAILED)
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
    return _Outcome(read, imported, kept=False)


def _import_chain(
    source: str,
    lines: Iterator[tuple[int, bytes]],
    target: ImportTarget,
    advance: Callable[[], None],
) -> _Outcome:
    """Copy a chain export with its chain fields, in one transaction (whole or nothing)."""
    read = 0
    batch: list[tuple[int, ChainedRow]] = []
    with contextlib.ExitStack() as stack:
        copy: ChainCopy | None = None

        def send() -> None:
            nonlocal copy
            if not batch:
                return
            try:
                if copy is None:
                    copy = ChainCopy(stack.enter_context(target.open().transaction()))
                copy.add([row for _, row in batch])
            except ChainRefusedError as exc:
                where = source if exc.index is None else f"{source}:{batch[exc.index][0]}"
                fail(f"{where}: {exc}; {_NOT_KEPT}", EXIT_FAILED)
            except SQLAlchemyError as exc:
                fail(
                    f"{source}:{batch[0][0]}..{batch[-1][0]}: the database refused these "
                    f"entries ({describe(exc)}); nothing was imported",
                    EXIT_FAILED,
                )
            batch.clear()
            advance()

        for number, line in lines:
            try:
                batch.append((number, parse_chain_line(line)))
            except LineError as exc:
                fail(
                    f"{source}:{number}: {exc}; nothing was imported (a chain is imported "
                    "whole or not at all): fix the line and import again",
                    EXIT_FAILED,
                )
            read += 1
            if len(batch) >= IMPORT_BATCH:
                send()
        send()
        if copy is None:
            return _Outcome(read, 0, kept=True)
        try:
            copy.finish()
        except ChainRefusedError as exc:
            fail(f"{source}: {exc}; {_NOT_KEPT}", EXIT_FAILED)
        # Committed as the transaction ends, on the way out.
        head = (copy.head_seq, copy.head_hash)
        return _Outcome(read, copy.imported, kept=True, head=head, breaks=copy.breaks)


#: How a refused chain import ends its one line.
_NOT_KEPT = (
    "nothing was imported; a chain keeps its seq and hashes only in an empty database or"
    " one it continues (import into a new database, or export without --chain to add the"
    " entries as new links of this one)"
)


def _report(outcome: _Outcome, url: str, *, as_json: bool) -> None:
    read, imported = outcome.read, outcome.imported
    if outcome.breaks:
        stderr_console().print(
            f"warning: {outcome.breaks:,} of the entries kept do not follow the entry before"
            " them (a hole in seq, or another prev_hash), as in the file: `cleveragents-audit"
            " verify` reports them here as it does on a source where they are so",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if as_json:
        document = {
            "read": read,
            "imported": imported,
            "skipped": read - imported,
            "database": url,
            "chain": "kept" if outcome.kept else "rechained",
        }
        out = binary_stdout()
        out.write(orjson.dumps(document) + b"\n")
        out.flush()
        return
    if outcome.kept:
        head = "" if outcome.head is None else f" (head: seq {outcome.head[0]:,})"
        how = f", keeping their chain{head}"
    else:
        how = " as new links of its chain"
    typer.echo(
        f"imported {imported:,} new entries into {url}{how}; "
        f"{read - imported:,} of the {read:,} read were there already"
    )
