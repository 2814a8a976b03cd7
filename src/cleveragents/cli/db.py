"""``cleveragents-audit db upgrade`` and ``db current``: the schema's revision.

The schema is made and changed by the Alembic migrations shipped in the package.
A service refuses to start on a database behind them; ``db upgrade`` brings it to
the head revision (creating a new database, adopting one made before migrations
existed), in one transaction under a lock, so services may keep running: their
writes wait for it, and are retried.
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from cleveragents.cli.common import (
    EXIT_FAILED,
    AsJson,
    DatabaseUrl,
    binary_stdout,
    database_url_or_default,
    fail,
)
from cleveragents.domain.errors import AuditError
from cleveragents.infrastructure.persistence import schema
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database

__all__ = ["db_app"]

db_app = typer.Typer(
    help="The audit database's schema: its revision, and upgrades to this version's.",
    no_args_is_help=True,
    add_completion=False,
)


def _open(database_url: str | None, *, create: bool) -> AuditDatabase:
    url = database_url_or_default(database_url)
    try:
        return open_database(url, create=create, check_schema=False)
    except AuditError as exc:
        fail(str(exc))


def _print_json(document: dict[str, object]) -> None:
    out = binary_stdout()
    out.write(orjson.dumps(document) + b"\n")
    out.flush()


@db_app.command()
def upgrade(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Bring the database to this version's schema revision (creating it when it is new)."""
    database = _open(database_url, create=True)
    try:
        before, after = schema.upgrade(database.engine, database.url)
    except AuditError as exc:
        fail(str(exc))
    finally:
        url = database.url
        database.dispose()
    if as_json:
        _print_json(
            {
                "database": url,
                "from": before.revision,
                "from_status": before.status,
                "to": after.revision,
                "head": after.head,
            }
        )
        return
    if before.status == "head":
        message = f"{url} is already at revision {after.revision} (head); nothing to do"
    elif before.status == "empty":
        message = f"created the audit schema at revision {after.revision} (head) in {url}"
    elif before.status == "unversioned":
        message = (
            f"adopted the table made before migrations in {url} and brought it to "
            f"revision {after.revision} (head)"
        )
    else:
        message = f"upgraded {url} from revision {before.revision} to {after.revision} (head)"
    typer.echo(message)


@db_app.command()
def current(
    database_url: DatabaseUrl = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit with status 1 unless the database is at head.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show the database's schema revision and this version's head."""
    database = _open(database_url, create=False)
    try:
        with database.engine.connect() as connection:
            state = schema.read_state(connection)
    finally:
        url = database.url
        database.dispose()
    if as_json:
        _print_json(
            {
                "database": url,
                "revision": state.revision,
                "head": state.head,
                "status": state.status,
                "at_head": state.status == "head",
            }
        )
    else:
        typer.echo(state.describe(url))
    if check and state.status != "head":
        raise typer.Exit(EXIT_FAILED)
