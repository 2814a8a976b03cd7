"""``cleveragents-audit``: the command line."""

from __future__ import annotations

import json
import logging
import sys
from functools import partial
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cleveragents import __version__
from cleveragents.cli.bench import bench
from cleveragents.cli.common import AuditGroup, CliError, DatabaseUrl, load_settings
from cleveragents.cli.db import db_app
from cleveragents.cli.demo import DemoResult, run_demo
from cleveragents.cli.demo_langchain import LANGCHAIN_MISSING, run_langchain_demo
from cleveragents.cli.export import export
from cleveragents.cli.import_ import import_
from cleveragents.cli.query import query, tail
from cleveragents.cli.replay import replay
from cleveragents.cli.stats import stats
from cleveragents.cli.trail import checkpoint, purge, verify
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.errors import AuditError

__all__ = ["app", "main"]

app = typer.Typer(
    cls=AuditGroup,  # one-line errors and exit statuses: see cli/common.py
    help="The cleveragents audit trail: query, follow, export and import it; its schema; a demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback must not print URLs or secrets
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"cleveragents-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version (cleveragents-audit X.Y.Z) and exit.",
        ),
    ] = False,
) -> None:
    """The cleveragents audit trail."""


@app.command()
def demo(
    database_url: DatabaseUrl = None,
    runs: Annotated[int, typer.Option(min=1, help="Agent runs to emit per mode.")] = 100,
) -> None:
    """Emit a realistic agent run's events through the bus, async and then sync.

    Prints what was recorded and how long the emitting thread spent per event; then
    audits one LangChain run (a fake chat model calling a tool), if langchain-core is
    installed.
    """
    console = Console()
    settings = load_settings(database_url)
    try:
        results: list[DemoResult] = []
        with Progress(console=console, transient=True) as progress:
            for is_async in (True, False):
                label = "async" if is_async else "sync"
                task = progress.add_task(f"emitting ({label})", total=runs)
                results.append(
                    run_demo(
                        settings,
                        runs=runs,
                        is_async=is_async,
                        progress=partial(progress.advance, task),
                    )
                )
        langchain_run = run_langchain_demo(settings)
    except AuditError as exc:
        raise CliError(str(exc)) from None
    _print_last_run(console, results[-1])
    _print_timings(console, results, settings.database_url)
    if langchain_run is None:
        console.print(LANGCHAIN_MISSING, markup=False)
    else:
        _print_entries(
            console, "A LangChain run, audited by AuditCallbackHandler (read back)", langchain_run
        )


def _print_last_run(console: Console, result: DemoResult) -> None:
    title = "The last agent run, as recorded (read back from the database)"
    _print_entries(console, title, result.last_run)


def _print_entries(console: Console, title: str, entries: list[AuditLogEntry]) -> None:
    table = Table(title=title)
    for column in ("id", "event type", "actor", "resource", "details"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        details = json.dumps(entry.details, separators=(",", ":"), ensure_ascii=False)
        table.add_row(str(entry.id), entry.event_type.value, entry.actor, entry.resource, details)
    console.print(table)


def _print_timings(console: Console, results: list[DemoResult], url: str) -> None:
    table = Table(title=f"Time the emitting thread spent per event ({url})")
    for column in ("mode", "events", "p50 µs", "p99 µs", "max µs", "all persisted after s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.mode,
            str(r.events),
            f"{r.p50_us:.1f}",
            f"{r.p99_us:.1f}",
            f"{max(r.emit_us):.1f}",
            f"{r.persist_s:.2f}",
        )
    console.print(table)
    fast, slow = results
    console.print(
        f"async record() costs the emitter {slow.p50_us / fast.p50_us:.0f}x less than sync "
        f"(median {fast.p50_us:.1f} µs vs {slow.p50_us:.1f} µs per event)."
    )


app.command()(query)
app.command()(tail)
app.command()(export)
app.command("import")(import_)
app.command()(stats)
app.add_typer(db_app, name="db")
app.command()(replay)
app.command()(bench)
app.command()(verify)
app.command()(checkpoint)
app.command()(purge)


def main() -> None:
    """Entry point of the ``cleveragents-audit`` console script."""
    # The library logs through structlog; on the command line its warnings go to
    # stderr, so that what a command prints on stdout stays parseable.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    app()
