"""``cleveragents-audit export``: the trail as a file.

``export`` streams the matching entries in pages of :data:`EXPORT_PAGE` rows (by
id, so memory stays bounded whatever the size of the trail) as JSON Lines or CSV,
to stdout or to a file. It exports the entries committed when it starts (up to the
highest id then), so it ends even while the trail keeps growing. A file is written
beside its final name and renamed at the end: an interrupted export leaves no
half file under that name. It is created readable by its owner only. With
``--chain`` it writes the whole hash chain, read in one snapshot: every entry, the
library's own included, with its chain fields (``seq``, ``prev_hash``,
``entry_hash``, ``hmac``, ``writer_id``, ``writer_seq``).
"""

from __future__ import annotations

import enum
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from cleveragents.cli.common import (
    MAX_ID,
    DatabaseUrl,
    binary_stdout,
    fail,
    open_trail,
    progress_bar,
    stderr_console,
)
from cleveragents.cli.filters import NO_FILTERS, Filters, System, with_filters
from cleveragents.cli.render import csv_chunk
from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.reads import EntryFilter
from cleveragents.infrastructure.persistence.verify import one_snapshot
from cleveragents.infrastructure.row_codec import chain_line, json_line

__all__ = ["EXPORT_PAGE", "Format", "chain_line", "export"]

#: Rows read and written at a time by export.
EXPORT_PAGE = 5_000


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


_OutputFormat = Annotated[Format, typer.Option("--format", "-F", help="jsonl (importable) or csv.")]
_Out = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write to this file (default: stdout).", show_default=False),
]
_AfterId = Annotated[
    int | None,
    typer.Option(
        "--after-id",
        min=0,
        max=MAX_ID,
        help="Only entries with a higher id (continue an earlier export).",
        show_default=False,
    ),
]
_Chain = Annotated[
    bool,
    typer.Option(
        "--chain",
        help="The whole hash chain, to move the trail: every entry (the library's own "
        "included) with seq, prev_hash, entry_hash, hmac, writer_id and writer_seq, read "
        "in one snapshot. Imported into an empty database, it keeps its chain exactly. "
        "No filters.",
    ),
]


@with_filters()
def export(
    database_url: DatabaseUrl = None,
    output_format: _OutputFormat = Format.jsonl,
    out: _Out = None,
    filters: Filters = NO_FILTERS,
    after_id: _AfterId = None,
    system: System = False,
    chain: _Chain = False,
) -> None:
    """Write the matching entries, oldest first, as JSON Lines or CSV, in bounded memory."""
    if chain:
        _check_chain_options(output_format, filters)
    where = filters.where(system=system or chain)
    started = time.perf_counter()
    written, last = _export(database_url, where, output_format, out, after_id, chain=chain)
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


def _export(
    database_url: str | None,
    where: EntryFilter,
    output_format: Format,
    out: Path | None,
    after_id: int | None,
    *,
    chain: bool,
) -> tuple[int, int | None]:
    """Write the pages to ``out`` (or stdout): (entries written, the last id written)."""
    database = open_trail(database_url)
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
                result = _write_pages(
                    connection, sink.stream, where, output_format, after_id, top, total, chain
                )
                sink.finish()
            except BaseException:
                sink.abandon()
                raise
    finally:
        database.dispose()
    return result


def _check_chain_options(output_format: Format, filters: Filters) -> None:
    """--chain writes the whole chain as JSON Lines: a filter or CSV is a one-line error."""
    if output_format is not Format.jsonl:
        fail("--chain writes JSON Lines (what import reads): leave out --format csv")
    if filters.given():
        fail(
            "--chain exports the whole chain, which a filter would cut into pieces that "
            "cannot keep it; leave out --type, --actor, --resource, --correlation-id, "
            "--since and --until (or export without --chain)"
        )


def _page(
    connection: Any, where: EntryFilter, after_id: int | None, top: int, *, chain: bool
) -> Any:
    if chain:
        return browse.chain_page(connection, after_id=after_id, limit=EXPORT_PAGE, up_to_id=top)
    return browse.page(connection, where, after_id=after_id, limit=EXPORT_PAGE, up_to_id=top)


def _write_pages(
    connection: Any,
    stream: BinaryIO,
    where: EntryFilter,
    output_format: Format,
    after_id: int | None,
    top: int | None,
    total: int,
    chain: bool,
) -> tuple[int, int | None]:
    written, last = 0, after_id
    header = output_format is Format.csv
    with progress_bar(rows=True) as progress:
        task = progress.add_task("exporting", total=total)
        while top is not None:
            rows = _page(connection, where, last, top, chain=chain)
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
            last = int(rows[-1].id)
            progress.advance(task, len(rows))
            if len(rows) < EXPORT_PAGE:
                break
    if header:  # an empty CSV export still names its columns
        stream.write(csv_chunk((), header=True))
    return written, last
