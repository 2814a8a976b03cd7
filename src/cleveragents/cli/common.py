"""What the subcommands share: options, the database URL, times, one-line errors.

Exit status, for every subcommand: 0 done; 1 the command ran and found a problem
(an import line that is not an entry, ``db current --check`` on a database that is
not at head); 2 bad input or a database that cannot be used (a bad option value, an
unknown event type, a bad time, a malformed or unreachable URL, a schema that is
not at head); 130 interrupted (Ctrl-C; ``tail -f`` ends with 0, since that is how
it is stopped). A user error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, BinaryIO, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
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
from typer.core import TyperGroup

from cleveragents.config.settings import Settings
from cleveragents.domain.errors import AuditError
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.errors import is_transient

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_UNUSABLE",
    "MAX_ID",
    "AsJson",
    "AuditGroup",
    "CliError",
    "DatabaseUrl",
    "binary_stdout",
    "database_url_or_default",
    "fail",
    "load_settings",
    "one_line",
    "open_trail",
    "parse_duration",
    "parse_time",
    "progress_bar",
    "stderr_console",
    "stdout_console",
]

EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130

#: The largest id a database holds (a signed 64-bit integer): the bound of id and count options.
MAX_ID = 2**63 - 1


class CliError(Exception):
    """A user error: printed as one line on stderr, then the process exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_UNUSABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_UNUSABLE) -> NoReturn:
    """Raise :class:`CliError`."""
    raise CliError(message, exit_code)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks (driver messages have them) become ``"; "``."""
    parts = [part.strip() for part in re.split(r"[\r\n]+", text)]
    return "; ".join(part for part in parts if part)


def stdout_console() -> Console:
    """Rich on stdout; ``is_terminal`` says whether to draw tables or print plain lines."""
    return Console(soft_wrap=False)


def stderr_console() -> Console:
    """Rich on stderr, for errors, hints and progress bars."""
    return Console(stderr=True)


def _print_error(message: str) -> None:
    console = stderr_console()
    console.print(f"[bold red]error:[/bold red] {escape(one_line(message))}", soft_wrap=True)


class AuditGroup(TyperGroup):
    """The root command: turns user errors into one line on stderr and an exit status.

    Click would print a usage block for a bad option; Typer a framed panel. An
    operator at a terminal during an incident, or a script reading stderr, gets one
    line that names the problem instead.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except CliError as exc:
            _print_error(str(exc))
            code: int = exc.exit_code
        except AuditError as exc:
            _print_error(str(exc))
            code = EXIT_UNUSABLE
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            kind = "unavailable" if is_transient(exc) else "failed"
            _print_error(f"the audit database {kind}: {reason}")
            code = EXIT_UNUSABLE
        except KeyboardInterrupt:
            _print_error("interrupted")
            code = EXIT_INTERRUPTED
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments at all: show the help
                exc.show()  # type: ignore[attr-defined]
            else:
                _print_error(f"{exc.format_message()} (see --help)")  # type: ignore[attr-defined]
            code = int(exc.exit_code)  # type: ignore[attr-defined]
        else:
            code = result if isinstance(result, int) else 0
            if code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C into exit status 130
                _print_error("interrupted")
        if standalone_mode:
            sys.exit(code)
        return code


def _is_usage_error(exc: BaseException) -> bool:
    """Click's (or Typer's vendored Click's) exceptions for a bad command line."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


# -- options -------------------------------------------------------------------------------

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the audit database (default: CLEVERAGENTS_DATABASE_URL, .env, "
        "or the embedded SQLite file).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output (JSON Lines for entries).")]


# -- settings, the database, times ---------------------------------------------------------


def load_settings(database_url: str | None = None) -> Settings:
    """The settings (environment, .env, defaults), with --database-url when it is given."""
    try:
        return Settings() if database_url is None else Settings(database_url=database_url)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"the settings (CLEVERAGENTS_* variables or .env) are not valid: {problems}")


def database_url_or_default(database_url: str | None) -> str:
    """The --database-url option, or the settings' URL (environment, .env, default)."""
    if database_url is not None:
        return database_url
    return load_settings().database_url


def open_trail(
    database_url: str | None, *, create: bool = False, appends: bool = False
) -> AuditDatabase:
    """Open the audit database for the command line; nothing is created unless ``create``.

    A command that ``appends`` entries gets the settings' HMAC key, so that in keyed
    mode what it appends carries an HMAC too.
    """
    url, key = database_url_or_default(database_url), None
    if appends:
        settings = load_settings(database_url)
        url, key = settings.database_url, settings.hmac_key_bytes()
    try:
        return open_database(url, create=create, hmac_key=key)
    except AuditError as exc:
        fail(str(exc))


_AGO = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_AGO_WHOLE = re.compile(r"(?:\d+\s*[smhdw]\s*)+", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION_HELP = "a number and a unit: 30s, 15m, 2h, 7d, 2w, 1h30m"


def parse_duration(text: str, option: str) -> timedelta:
    """A length of time such as ``30m``, ``7d`` or ``1h30m``; ``0`` is none at all.

    Raises:
        CliError: not a duration, or one longer than a ``timedelta`` holds.
    """
    value = text.strip()
    if value.isdigit() and int(value) == 0:
        return timedelta()
    if not _AGO_WHOLE.fullmatch(value):
        fail(f"{option}: {text!r} is not a duration; use {_DURATION_HELP} (or 0)")
    return _duration(value, text, option)


def _duration(value: str, text: str, option: str) -> timedelta:
    try:
        delta = timedelta()
        for amount, unit in _AGO.findall(value):
            delta += timedelta(**{_UNITS[unit.lower()]: int(amount)})
    except (OverflowError, ValueError):  # ValueError: more digits than int() takes
        fail(f"{option}: {text!r} is out of range: at most {timedelta.max.days:,} days")
    return delta


def parse_time(text: str, option: str, *, now: datetime | None = None) -> datetime:
    """A timezone-aware time from ISO 8601 or a time ago such as ``15m``, ``2h``, ``1h30m``.

    ISO 8601 without a zone is taken as UTC (the trail's times are UTC).

    Raises:
        CliError: not a time, or one outside what a date holds (years 1 to 9999 in UTC):
            a time ago before year 1, or a time whose UTC offset takes it past either end.
    """
    value = text.strip()
    now = now or datetime.now(UTC)
    if value.lower() == "now":
        return now
    if _AGO_WHOLE.fullmatch(value):
        delta = _duration(value, text, option)
        try:
            return now - delta
        except OverflowError:
            fail(f"{option}: {text!r} is out of range: it goes back before the year 1")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"{option}: {text!r} is not a time; use ISO 8601 (2026-11-29, "
            "2026-11-29T14:05:00Z, 2026-11-29T16:05:00+02:00) or a time ago (30s, 15m, 2h, 7d)"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        fail(f"{option}: {text!r} is out of range: in UTC it falls outside the years 1 to 9999")
    return moment


# -- output --------------------------------------------------------------------------------


def binary_stdout() -> BinaryIO:
    """Standard output as bytes (UTF-8 whatever the locale), after what was printed as text."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # pragma: no cover - a replaced stdout without a byte layer
        raise CliError("standard output takes no bytes", EXIT_FAILED)
    return buffer  # type: ignore[no-any-return]


def progress_bar(*, rows: bool) -> Progress:
    """A progress bar on stderr (of rows, or else of bytes), drawn only at a terminal."""
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
