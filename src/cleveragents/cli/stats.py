"""``cleveragents-audit stats``: what is in the trail, for a period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Group
from rich.table import Table
from sqlalchemy import Connection

from cleveragents.cli.common import AsJson, DatabaseUrl, binary_stdout, open_trail, stdout_console
from cleveragents.cli.filters import NO_FILTERS, TIME_FIRST, Filters, System, with_filters
from cleveragents.cli.render import iso_time, short_time
from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.reads import EntryFilter

__all__ = ["stats"]


_Top = Annotated[int, typer.Option("--top", min=0, help="Most actors listed (0: all of them).")]


@with_filters(TIME_FIRST)
def stats(
    database_url: DatabaseUrl = None,
    filters: Filters = NO_FILTERS,
    top: _Top = 20,
    as_json: AsJson = False,
    system: System = False,
) -> None:
    """Totals by event type and by actor for a period; rows, size, oldest and newest entry."""
    where = filters.where(system=system)
    database = open_trail(database_url)
    try:
        with database.connect() as connection:
            found = _read(connection, where, database.sqlite_path)
        url = database.url
    finally:
        database.dispose()
    by_actor, span = found.by_actor(), found.span
    matching = sum(count for _, _, count in found.groups)
    more_actors = top != 0 and len(by_actor) > top
    actors = by_actor[:top] if top else by_actor
    report: dict[str, Any] = {
        "database": url,
        "since": None if where.since is None else iso_time(where.since),
        "until": None if where.until is None else iso_time(where.until),
        "rows": matching,
        "rows_in_trail": found.everything,
        "database_size_bytes": found.size,
        "oldest": _moment(span.oldest),
        "newest": _moment(span.newest),
        "by_event_type": dict(_ranked((kind, count) for kind, _, count in found.groups)),
        "by_actor": [{"actor": name, "count": count} for name, count in actors],
        "more_actors": more_actors,
    }
    if as_json:
        out = binary_stdout()
        out.write(orjson.dumps(report) + b"\n")
        out.flush()
        return
    console = stdout_console()
    if not console.is_terminal:
        typer.echo(_plain(report), nl=False)
        return
    console.print(_rich(report, matching))


@dataclass(frozen=True, slots=True)
class _Found:
    """What stats reads for a period."""

    everything: int  # rows in the trail (system ones with --system), whatever the filters
    groups: list[tuple[Any, Any, int]]  # (event type, actor or None, count)
    actor_totals: list[tuple[Any, int]] | None  # None: counted from the groups
    span: browse.Bounds
    size: int | None

    def by_actor(self) -> list[tuple[Any, int]]:
        """Totals per actor, most first."""
        if self.actor_totals is not None:
            return self.actor_totals
        return _ranked((actor, count) for _, actor, count in self.groups)


def _read(connection: Connection, where: EntryFilter, sqlite_path: Path | None) -> _Found:
    everything = browse.count_rows(
        connection,
        EntryFilter(include_system=where.include_system),
        after_id=None,
        up_to_id=None,
    )
    groups: list[tuple[Any, Any, int]]
    actor_totals: list[tuple[Any, int]] | None
    if where.since is None and where.until is None:  # two scans of covering indexes
        groups = [
            (kind, None, count)
            for kind, count in browse.totals(connection, where, "event_type", limit=None)
        ]
        actor_totals = browse.totals(connection, where, "actor", limit=None)
    else:  # one pass over the time range
        groups = browse.totals_by_type_and_actor(connection, where)
        actor_totals = None
    span = browse.bounds(connection, where)
    size = browse.database_size(connection, sqlite_path)
    return _Found(everything, groups, actor_totals, span, size)


def _ranked(pairs: Iterable[tuple[Any, int]]) -> list[tuple[Any, int]]:
    """Totals per value of (value, count) pairs: most first, ties by value (None last)."""
    counts: Counter[Any] = Counter()
    for value, count in pairs:
        counts[value] += count
    return sorted(counts.items(), key=_rank)


def _rank(item: tuple[Any, int]) -> tuple[int, bool, Any]:
    value, count = item
    return (-count, value is None, value or "")


def _moment(found: tuple[int, datetime] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    entry_id, created_at = found
    return {"id": entry_id, "created_at": iso_time(created_at)}


def _size(size: int | None) -> str:
    if size is None:
        return "unknown (in memory)"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _period(report: dict[str, Any]) -> str:
    since, until = report["since"], report["until"]
    if since is None and until is None:
        return "all time"
    return f"{since or 'the start'} .. {until or 'now'}"


def _plain(report: dict[str, Any]) -> str:
    """``key<TAB>value`` lines, then ``event_type<TAB>TYPE<TAB>N`` and ``actor<TAB>NAME<TAB>N``."""
    oldest, newest = report["oldest"], report["newest"]
    lines = [
        f"database\t{report['database']}",
        f"period\t{_period(report)}",
        f"rows\t{report['rows']}",
        f"rows_in_trail\t{report['rows_in_trail']}",
        f"database_size_bytes\t{report['database_size_bytes'] or '-'}",
        f"oldest\t{oldest['created_at'] if oldest else '-'}",
        f"newest\t{newest['created_at'] if newest else '-'}",
    ]
    lines += [f"event_type\t{name}\t{count}" for name, count in report["by_event_type"].items()]
    lines += [f"actor\t{a['actor'] or '-'}\t{a['count']}" for a in report["by_actor"]]
    return "\n".join(lines) + "\n"


def _rich(report: dict[str, Any], matching: int) -> Group:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    oldest, newest = report["oldest"], report["newest"]
    summary.add_row("database", report["database"])
    summary.add_row("period", _period(report))
    summary.add_row("rows", f"{report['rows']:,} (of {report['rows_in_trail']:,} in the trail)")
    summary.add_row("size on disk", _size(report["database_size_bytes"]))
    for label, moment in (("oldest", oldest), ("newest", newest)):
        if moment is not None:
            when = short_time(datetime.fromisoformat(moment["created_at"]))
            summary.add_row(label, f"{when}  (#{moment['id']})")
    types = _totals_table("event type", report["by_event_type"].items(), matching)
    actors = _totals_table(
        "actor", ((a["actor"] or "-", a["count"]) for a in report["by_actor"]), matching
    )
    if report["more_actors"]:
        actors.caption = "more actors: --top 0 lists them all"
    return Group(summary, types, actors)


def _totals_table(what: str, rows: Any, total: int) -> Table:
    table = Table(title=f"by {what}", title_justify="left")
    table.add_column(what)
    table.add_column("entries", justify="right")
    table.add_column("share", justify="right")
    for name, count in rows:
        share = f"{100 * count / total:.1f}%" if total else "-"
        table.add_row(str(name), f"{count:,}", share)
    return table
