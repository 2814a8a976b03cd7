"""``cleveragents-audit import``: an export back into a database.

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
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, BinaryIO, NamedTuple

import orjson
import typer
from sqlalchemy.exc import SQLAlchemyError

from cleveragents.cli.common import (
    EXIT_FAILED,
    AsJson,
    DatabaseUrl,
    binary_stdout,
    fail,
    load_settings,
    one_line,
    progress_bar,
    stderr_console,
)
from cleveragents.domain.errors import AuditError
from cleveragents.domain.rows import ChainedRow, EntryRow
from cleveragents.domain.system_entries import ImportDeclaration
from cleveragents.infrastructure.persistence.chain_copy import ChainCopy, ChainRefusedError
from cleveragents.infrastructure.persistence.errors import describe
from cleveragents.infrastructure.persistence.import_target import ImportTarget
from cleveragents.infrastructure.row_codec import (
    REIMPORT_RULES,
    RowError,
    decode_chained,
    decode_entry,
    is_chain_line,
)

__all__ = ["IMPORT_BATCH", "import_", "parse_chain_line", "parse_entry_line"]

#: Entries inserted per batch by import.
IMPORT_BATCH = 1_000


def parse_entry_line(line: bytes) -> EntryRow:
    """The row that one line of a JSON Lines export describes (to be re-chained).

    Raises:
        RowError: the line is not a JSON object, or a field is missing or wrong.
    """
    return decode_entry(line, REIMPORT_RULES)


def parse_chain_line(line: bytes) -> ChainedRow:
    """The row, chain fields included, that one line of ``export --chain`` describes."""
    return decode_chained(line)


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
        with progress_bar(rows=False) as progress:
            task = progress.add_task("importing", total=size)

            def advance() -> None:
                if size is not None:
                    progress.update(task, completed=stream.tell())

            lines = _entry_lines(stream)
            first = next(lines, None)
            if first is not None and is_chain_line(first.text):
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


class _Line(NamedTuple):
    """A line of the file that is not blank, and its number."""

    number: int
    text: bytes


def _entry_lines(stream: BinaryIO) -> Iterator[_Line]:
    """Every line that is not blank, with its number."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield _Line(number, line)


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
    lines: Iterator[_Line],
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
                    f"{source}: the database refused the entry {pending[index].event_id} "
                    f"({reason}); {len(refused)} refused, {imported:,} new entries "
                    "stored; fix it and import again (what is there is skipped)",
                    EXIT_FAILED,
                )
            pending.clear()
        advance()

    for number, line in lines:
        try:
            pending.append(parse_entry_line(line))
        except RowError as exc:
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


class _ChainBatches:
    """A chain export's rows sent to one :class:`ChainCopy`, a batch at a time.

    The copy's transaction is opened (on ``stack``) with the first batch, so that the
    database is opened only once the first entries are ready.
    """

    def __init__(
        self,
        source: str,
        target: ImportTarget,
        stack: contextlib.ExitStack,
        advance: Callable[[], None],
    ) -> None:
        self.source, self.target, self.stack, self.advance = source, target, stack, advance
        self.copy: ChainCopy | None = None
        self.rows: list[ChainedRow] = []
        self.numbers: list[int] = []  # the line number of each of rows

    def add(self, number: int, row: ChainedRow) -> None:
        self.numbers.append(number)
        self.rows.append(row)
        if len(self.rows) >= IMPORT_BATCH:
            self.send()

    def send(self) -> None:
        if not self.rows:
            return
        source, numbers = self.source, self.numbers
        try:
            if self.copy is None:
                self.copy = ChainCopy(self.stack.enter_context(self.target.open().transaction()))
            self.copy.add(self.rows)
        except ChainRefusedError as exc:
            where = source if exc.index is None else f"{source}:{numbers[exc.index]}"
            fail(f"{where}: {exc}; {_NOT_KEPT}", EXIT_FAILED)
        except SQLAlchemyError as exc:
            fail(
                f"{source}:{numbers[0]}..{numbers[-1]}: the database refused these "
                f"entries ({describe(exc)}); nothing was imported",
                EXIT_FAILED,
            )
        self.rows, self.numbers = [], []
        self.advance()


def _import_chain(
    source: str,
    lines: Iterator[_Line],
    target: ImportTarget,
    advance: Callable[[], None],
) -> _Outcome:
    """Copy a chain export with its chain fields, in one transaction (whole or nothing)."""
    read = 0
    with contextlib.ExitStack() as stack:
        batches = _ChainBatches(source, target, stack, advance)
        for number, line in lines:
            try:
                row = parse_chain_line(line)
            except RowError as exc:
                fail(
                    f"{source}:{number}: {exc}; nothing was imported (a chain is imported "
                    "whole or not at all): fix the line and import again",
                    EXIT_FAILED,
                )
            batches.add(number, row)
            read += 1
        batches.send()
        copy = batches.copy
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
