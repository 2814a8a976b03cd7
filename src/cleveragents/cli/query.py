"""``cleveragents-audit query`` and ``tail``: read the trail, page by id, follow it.

On a terminal entries are a Rich table (``query``) or styled lines (``tail``);
piped, one tab-separated line per entry; with ``--json``, JSON Lines (the export
format). Reads never create or change anything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from cleveragents.cli.common import (
    MAX_ID,
    AsJson,
    DatabaseUrl,
    binary_stdout,
    one_line,
    open_trail,
    stderr_console,
    stdout_console,
)
from cleveragents.cli.filters import NO_FILTERS, Filters, System, with_filters
from cleveragents.cli.follow import Follower
from cleveragents.cli.render import entries_table, json_line, plain_line, rich_line
from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.errors import is_transient

__all__ = ["query", "tail"]


class _Printer:
    """Writes entries as the output mode says: JSON Lines, plain lines, or Rich."""

    def __init__(self, *, as_json: bool) -> None:
        self.console = stdout_console()
        self.as_json = as_json
        self.rich = not as_json and self.console.is_terminal

    def lines(self, rows: Sequence[Any]) -> None:
        """One line per entry, flushed at once (``tail -f | grep`` sees each batch)."""
        if not rows:
            return
        if self.rich:
            for row in rows:
                self.console.print(rich_line(row))
            return
        out = binary_stdout()
        if self.as_json:
            out.write(b"".join(json_line(row) for row in rows))
        else:
            out.write("".join(plain_line(row) for row in rows).encode())
        out.flush()


@with_filters()
def query(
    database_url: DatabaseUrl = None,
    filters: Filters = NO_FILTERS,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_ID - 1, help="Most entries to print.")
    ] = 100,
    after_id: Annotated[
        int | None,
        typer.Option(
            "--after-id",
            min=0,
            max=MAX_ID,
            help="Only entries with a higher id: the last id of the previous page.",
            show_default=False,
        ),
    ] = None,
    as_json: AsJson = False,
    system: System = False,
) -> None:
    """Entries matching every filter, oldest first, one page at a time (by id).

    The next page starts after the last id printed: --after-id ID.
    """
    where = filters.where(system=system)
    database = open_trail(database_url)
    try:
        with database.connect() as connection:
            rows = browse.page(connection, where, after_id=after_id, limit=limit + 1)
    finally:
        database.dispose()
    more = len(rows) > limit
    rows = rows[:limit]
    printer = _Printer(as_json=as_json)
    if not printer.rich:
        printer.lines(rows)
    elif not rows:
        printer.console.print("[dim]no entries match[/dim]")
    else:
        table = entries_table(rows)
        table.caption = f"{len(rows)} entries, ids {rows[0].id}..{rows[-1].id}"
        table.caption_justify = "left"
        printer.console.print(table)
    if more:  # on stderr, terminal or not: stdout stays the entries alone
        stderr_console().print(
            f"more entries match: continue with --after-id {rows[-1].id}", highlight=False
        )


@with_filters()
def tail(
    database_url: DatabaseUrl = None,
    filters: Filters = NO_FILTERS,
    lines: Annotated[
        int,
        typer.Option("--lines", "-n", min=0, max=MAX_ID, help="How many of the newest entries."),
    ] = 10,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Then print new entries as they are committed."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0.01,
            max=3600,
            help="With -f: seconds between two looks for new entries.",
        ),
    ] = 0.5,
    as_json: AsJson = False,
    system: System = False,
) -> None:
    """The newest entries matching every filter; with -f, follow new ones until Ctrl-C.

    Following polls for ids above the last one seen (an index range read), so it
    costs the same on a trail of ten rows or ten million.
    """
    where = filters.where(system=system)
    database = open_trail(database_url)
    printer = _Printer(as_json=as_json)
    try:
        with database.connect() as connection:
            start = browse.max_id(connection) or 0  # first: what is shown and followed meet
            rows = browse.newest(connection, where, limit=lines, up_to_id=start) if lines else []
        printer.lines(rows)
        if follow:
            _follow(Follower(database, where, after_id=start), printer, interval)
    except KeyboardInterrupt:
        return  # Ctrl-C is how `tail -f` ends: exit status 0
    finally:
        database.dispose()


def _follow(follower: Follower, printer: _Printer, interval: float) -> None:
    """Poll until interrupted; a database that is briefly away is waited for, with a note."""
    pause = threading.Event()  # never set: wait() is an interruptible sleep
    warn: Console = stderr_console()
    unavailable = False
    while True:
        try:
            rows = follower.poll()
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            if not unavailable:
                reason = one_line(str(getattr(exc, "orig", None) or exc))
                warn.print(
                    f"[yellow]warning:[/yellow] the database is unavailable ({reason});"
                    " still following"
                )
                unavailable = True
        else:
            if unavailable:
                warn.print("[green]the database is back[/green]")
                unavailable = False
            printer.lines(rows)
        pause.wait(interval)
