"""``cleveragents-audit replay``: re-ingest a dead-letter spool."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cleveragents.application.services.audit_service import AuditService
from cleveragents.config.settings import Settings
from cleveragents.domain.errors import AuditError
from cleveragents.domain.replay import ReplayReport

__all__ = ["replay"]


def replay(
    spool: Annotated[
        Path | None,
        typer.Argument(
            help="The spool file (default: the configured one, CLEVERAGENTS_AUDIT_SPOOL_PATH, "
            "or the one beside the SQLite file).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL of the audit database (default: CLEVERAGENTS_DATABASE_URL "
            "or the embedded SQLite file).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-ingest the entries of a dead-letter spool; idempotent.

    Entries already stored are skipped; the spool is emptied only after its entries
    are committed. Lines that are not valid entries are reported with their line
    numbers and kept in SPOOL.rejects. Exit status: 0 done, 1 some lines were
    rejected, 2 the spool or database could not be used.
    """
    err = Console(stderr=True)
    if spool is not None and not spool.is_file():
        err.print(f"error: no spool file at {spool}")
        raise typer.Exit(2)
    try:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
        with AuditService(settings.model_copy(update={"audit_async": False})) as service:
            report = service.replay(spool)
    except (AuditError, OSError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    _print(report, as_json=as_json)
    if report.rejected:
        raise typer.Exit(1)


def _print(report: ReplayReport, *, as_json: bool) -> None:
    if as_json:
        document = {
            "spool": str(report.path),
            "read": report.read,
            "inserted": report.inserted,
            "already_present": report.already_present,
            "rejected": [
                {"line_number": r.line_number, "reason": r.reason} for r in report.rejected
            ],
            "rejects_file": str(report.rejects_path) if report.rejected else None,
        }
        sys.stdout.write(json.dumps(document) + "\n")
        return
    out = Console()
    out.print(
        f"replayed {report.read} entries from {report.path}: "
        f"{report.inserted} inserted, {report.already_present} already present"
    )
    for line in report.rejected:
        out.print(f"  line {line.line_number}: rejected: {line.reason}")
    if report.rejected:
        out.print(f"{len(report.rejected)} lines rejected, kept in {report.rejects_path}")
