"""``verify``, ``checkpoint`` and ``purge``: the tamper-evidence commands."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cleveragents.application import trail
from cleveragents.cli.common import (
    AsJson,
    CliError,
    DatabaseUrl,
    binary_stdout,
    database_url_or_default,
    load_settings,
    open_trail,
    parse_duration,
    parse_time,
    stderr_console,
    stdout_console,
)
from cleveragents.cli.render import iso_time
from cleveragents.domain.errors import AuditError
from cleveragents.domain.verification import VerifyReport, VerifyStatus
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database

__all__ = ["checkpoint", "purge", "verify"]

_VERDICTS = {
    VerifyStatus.INTACT: "intact",
    VerifyStatus.TAMPERED: "TAMPERED",
    VerifyStatus.LOSS_SUSPECTED: "loss suspected",
    VerifyStatus.DECLARED_DROPS: "intact, with declared drops",
    VerifyStatus.UNVERIFIABLE: "could not verify",
}


def _unverifiable(message: str) -> CliError:
    return CliError(message, int(VerifyStatus.UNVERIFIABLE))


def _key(key_env: str | None) -> bytes | None:
    if key_env is not None:
        value = os.environ.get(key_env)
        if not value:
            raise _unverifiable(f"--key-env: the environment variable {key_env} is not set")
        return value.encode("utf-8")
    try:
        return load_settings().hmac_key_bytes()
    except CliError as exc:  # verify's own contract: could not verify is 4, never 2
        raise _unverifiable(str(exc)) from None


_CheckpointFile = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="A checkpoint file (from `checkpoint --out`, or audit_checkpoint_path): "
        "every checkpoint in it is checked.",
        show_default=False,
    ),
]
_KeyEnv = Annotated[
    str | None,
    typer.Option(
        "--key-env",
        help="Name of the environment variable holding the HMAC key (default: "
        "CLEVERAGENTS_AUDIT_HMAC_KEY when set).",
        show_default=False,
    ),
]


def verify(
    database_url: DatabaseUrl = None,
    checkpoint_file: _CheckpointFile = None,
    key_env: _KeyEnv = None,
    as_json: AsJson = False,
) -> None:
    """Verify the hash chain, the writers' accounting and checkpoints, in bounded memory.

    Exit status: 0 intact, 1 tampered (altered, deleted, inserted or reordered
    entries, truncation), 2 loss suspected (a writer that never closed, a hole in a
    writer's sequence), 3 only declared drops, 4 could not verify (also: a checkpoint of
    the chain a plain export was imported from, which cannot be checked here).
    """
    key = _key(key_env)
    checkpoints = []
    if checkpoint_file is not None:
        try:
            checkpoints = trail.load_checkpoints(checkpoint_file)
        except (OSError, ValueError) as exc:
            raise _unverifiable(f"--checkpoint: {exc}") from None
    try:
        database = open_database(database_url_or_default(database_url), create=False)
    except (AuditError, CliError) as exc:
        raise _unverifiable(str(exc)) from None
    try:
        report = _run_verify(database, key, checkpoints)
    finally:
        database.dispose()
    if as_json:
        out = binary_stdout()
        out.write(orjson.dumps(report.to_dict()) + b"\n")
        out.flush()
    else:
        _print_report(report, database.url)
    raise typer.Exit(report.exit_code)


def _run_verify(
    database: AuditDatabase, key: bytes | None, checkpoints: list[trail.Checkpoint]
) -> VerifyReport:
    console = stderr_console()
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("verifying", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, done))

        return trail.verify(database, hmac_key=key, checkpoints=checkpoints, progress=advance)


def _print_report(report: VerifyReport, url: str) -> None:
    console = stdout_console()
    if report.error is not None:  # (with the findings, if any: a checkpoint of another chain)
        console.print(f"could not verify {url}: {report.error}", soft_wrap=True)
    else:
        first, last = report.first_seq, report.last_seq
        span = f"seq {first}..{last}" if first is not None else "empty"
        console.print(
            f"{_VERDICTS[report.status]}: {report.entries:,} entries ({span}), "
            f"{report.writers} writers, HMAC {'checked' if report.hmac_checked else 'not used'}, "
            f"{report.checkpoints} checkpoints checked ({url})",
            soft_wrap=True,
        )
    if not report.findings:
        return
    if not console.is_terminal:
        # Written as they are: Rich would expand the tabs into spaces.
        out = binary_stdout()
        for f in report.findings:
            fields = (f.kind.value, f.seq, f.id, f.event_id, f.writer_id, f.message)
            line = "\t".join("" if v is None else str(v) for v in fields)
            out.write(line.encode() + b"\n")
        out.flush()
    else:
        table = Table()
        for column in ("kind", "seq", "id", "event_id", "writer", "what"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            table.add_row(
                f.kind.value,
                "" if f.seq is None else str(f.seq),
                "" if f.id is None else str(f.id),
                f.event_id or "",
                f.writer_id or "",
                f.message,
            )
        console.print(table)
    shown, total = len(report.findings), sum(report.counts.values())
    if total > shown:
        console.print(f"... {total - shown:,} more findings: {dict(report.counts)}")


def checkpoint(
    database_url: DatabaseUrl = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Append the checkpoint to this file (one JSON line; created owner-only). "
            "Default: print it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the chain head (seq, entry_hash, count, time) as a small JSON document.

    Keep it away from the database (another host, write-once storage): `verify
    --checkpoint FILE` then proves that nothing up to it was truncated or rewritten.
    """
    database = open_trail(database_url)
    try:
        point = trail.current_checkpoint(database)
    finally:
        database.dispose()
    if out is None:
        stdout = binary_stdout()
        stdout.write(point.to_json() + b"\n")
        stdout.flush()
        return
    try:
        trail.append_checkpoint(out, point)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None
    stderr_console().print(
        f"checkpoint at seq {point.seq} appended to {out}", soft_wrap=True, markup=False
    )


_Before = Annotated[
    str,
    typer.Option(
        "--before",
        help="Remove entries older than this (ISO 8601, or a time ago such as 90d); "
        "only a prefix of the chain goes.",
    ),
]
_DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Only print what would go (count, seqs, times); remove nothing."
    ),
]
_MinAge = Annotated[
    str,
    typer.Option(
        "--min-age",
        help="Refuse to remove entries younger than this (30m, 7d, ...; 0: no limit), "
        "unless --yes is given.",
    ),
]
_Yes = Annotated[
    bool,
    typer.Option("--yes", "--force", "-y", help="Remove entries younger than --min-age too."),
]


def purge(
    before: _Before,
    database_url: DatabaseUrl = None,
    dry_run: _DryRun = False,
    min_age: _MinAge = "1d",
    yes: _Yes = False,
    as_json: AsJson = False,
) -> None:
    """Remove the oldest entries, keeping the chain verifiable.

    Only a prefix of the chain is removed (it ends at the first entry at or after
    --before), in batches; a retention.purged entry declares it (through seq and
    hash, count) and verify starts after it. Run verify first: what is purged can
    no longer be checked. A cut that would remove an entry younger than --min-age
    (default 1d) is refused unless --yes is given; --dry-run shows what would go.
    """
    now = datetime.now(UTC)
    moment = parse_time(before, "--before", now=now)
    age = parse_duration(min_age, "--min-age")
    guard_off = age == timedelta(0)  # --min-age 0: no entry is too young, clocks skewed or not
    protect = _protect_since(now, age)
    database = open_trail(database_url, appends=not dry_run)
    try:
        if dry_run:
            _print_preview(
                trail.preview_purge(database, moment, recent_since=None if guard_off else protect),
                yes,
                as_json,
            )
            return
        report = trail.purge(database, moment, protect_since=None if yes or guard_off else protect)
    except trail.PurgeRefusedError as exc:
        raise CliError(
            f"--before {before} would remove {exc.preview.recent:,} entries younger than "
            f"--min-age {min_age} (created at or after {protect.isoformat()}); nothing was "
            "removed: choose an earlier --before or pass --yes (see --dry-run)"
        ) from None
    finally:
        database.dispose()
    _print_purged(report, moment, as_json=as_json)


def _print_purged(report: trail.PurgeReport, moment: datetime, *, as_json: bool) -> None:
    if as_json:
        stdout = binary_stdout()
        document = {
            "before": report.before.isoformat(),
            "through_seq": report.through_seq,
            "through_hash": report.through_hash,
            "deleted": report.deleted,
        }
        stdout.write(orjson.dumps(document) + b"\n")
        stdout.flush()
        return
    if report.through_seq is None:
        stdout_console().print(f"nothing older than {moment.isoformat()} to purge")
    else:
        stdout_console().print(
            f"purged {report.deleted:,} entries (through seq {report.through_seq}) older than "
            f"{moment.isoformat()}"
        )


def _protect_since(now: datetime, min_age: timedelta) -> datetime:
    """The time from which entries are too young to purge (an age past year 1 protects all)."""
    try:
        return now - min_age
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _print_preview(preview: trail.PurgePreview, yes: bool, as_json: bool) -> None:
    refused = preview.recent > 0 and not yes
    if as_json:
        document = {
            "dry_run": True,
            "before": preview.before.isoformat(),
            "count": preview.count,
            "first_seq": preview.first_seq,
            "through_seq": preview.through_seq,
            "oldest": None if preview.oldest is None else iso_time(preview.oldest),
            "newest": None if preview.newest is None else iso_time(preview.newest),
            "younger_than_min_age": preview.recent,
            "refused": refused,
        }
        stdout = binary_stdout()
        stdout.write(orjson.dumps(document) + b"\n")
        stdout.flush()
        return
    console = stdout_console()
    if preview.through_seq is None or preview.oldest is None or preview.newest is None:
        console.print(f"nothing older than {preview.before.isoformat()} to purge", markup=False)
        return
    console.print(
        f"would purge {preview.count:,} entries (seq {preview.first_seq}..{preview.through_seq}, "
        f"created {iso_time(preview.oldest)} .. {iso_time(preview.newest)}) older than "
        f"{preview.before.isoformat()}; nothing was removed (dry run)",
        soft_wrap=True,
        markup=False,
    )
    if preview.recent:
        outcome = "refused without --yes" if refused else "allowed by --yes"
        console.print(
            f"{preview.recent:,} of them are younger than --min-age: {outcome}",
            soft_wrap=True,
            markup=False,
        )
