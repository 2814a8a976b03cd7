"""How entries are written: JSON Lines, plain tab-separated lines, CSV, Rich tables and lines.

A row is what :mod:`cleveragents.infrastructure.persistence.browse` reads:
``(id, event_id, event_type, actor, resource, correlation_id, created_at, details)``
with ``details`` the stored canonical JSON text, which JSON Lines embed as they are.

The JSON Lines format is the export format and the import format: one object per
line with ``id`` (of the source database), ``event_id``, ``event_type``, ``actor``,
``resource``, ``correlation_id``, ``created_at`` (ISO 8601, microseconds, UTC
offset) and ``details`` (an object).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.table import Table
from rich.text import Text

__all__ = [
    "CSV_HEADER",
    "csv_chunk",
    "entries_table",
    "iso_time",
    "json_line",
    "plain_line",
    "rich_line",
    "short_time",
]

CSV_HEADER = (
    "id",
    "event_id",
    "event_type",
    "actor",
    "resource",
    "correlation_id",
    "created_at",
    "details",
)

# Colours by the last word of the event type, on a terminal only.
_STYLES = {
    "failed": "bold red",
    "denied": "bold red",
    "granted": "green",
    "completed": "green",
    "started": "cyan",
    "ended": "cyan",
    "invoked": "yellow",
    "request": "magenta",
    "response": "magenta",
    "changed": "bold yellow",
}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def iso_time(moment: datetime) -> str:
    """ISO 8601 with microseconds and the UTC offset: what JSON and CSV carry."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def short_time(moment: datetime) -> str:
    """``2026-11-29 17:51:03.123Z``: for people, at a terminal."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def json_line(row: Sequence[Any], extra: Mapping[str, Any] | None = None) -> bytes:
    """One JSON Lines record, newline included; ``details`` is spliced in last, as stored.

    ``extra``: more fields, written after the entry's own and before ``details``.
    """
    fields = {
        "id": row[0],
        "event_id": row[1],
        "event_type": row[2],
        "actor": row[3],
        "resource": row[4],
        "correlation_id": row[5],
        "created_at": iso_time(row[6]),
    }
    if extra:
        fields.update(extra)
    details: str = row[7]
    return orjson.dumps(fields)[:-1] + b',"details":' + details.encode() + b"}\n"


def plain_line(row: Sequence[Any]) -> str:
    """Tab-separated: id, time, type, actor, resource, correlation id, details (``-`` if none).

    Tabs, line breaks and backslashes inside a field are written as ``\\t``, ``\\n``,
    ``\\r`` and ``\\\\``, so that every entry is one line with seven fields.
    """
    fields = (
        str(row[0]),
        iso_time(row[6]),
        row[2],
        row[3],
        row[4],
        row[5],
        row[7],
    )
    return "\t".join("-" if f is None else f.translate(_ESCAPES) for f in fields) + "\n"


def csv_chunk(rows: Iterable[Sequence[Any]], *, header: bool) -> bytes:
    """CSV records (RFC 4180, CRLF) for ``rows``, UTF-8; None is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow((row[0], row[1], row[2], row[3], row[4], row[5], iso_time(row[6]), row[7]))
    return buffer.getvalue().encode()


def _style(event_type: str) -> str:
    return _STYLES.get(event_type.rsplit(".", 1)[-1], "")


def entries_table(rows: Sequence[Sequence[Any]], *, title: str | None = None) -> Table:
    """A Rich table of entries, for a terminal."""
    table = Table(title=title, title_justify="left", expand=True, show_lines=False)
    table.add_column("id", justify="right", style="dim", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("event type", no_wrap=True)
    table.add_column("actor", overflow="fold", ratio=3, min_width=15)
    table.add_column("resource", overflow="fold", ratio=3, min_width=14)
    # A run's id is long; its start tells runs apart here, --json has it whole.
    table.add_column("run", no_wrap=True, overflow="ellipsis", max_width=9, style="dim")
    # One line per entry: a long value is cut with an ellipsis (--json has it whole).
    table.add_column("details", overflow="ellipsis", no_wrap=True, ratio=6, min_width=12)
    for row in rows:
        table.add_row(  # Text, not str: "[...]" in a value is data, never Rich markup
            str(row[0]),
            short_time(row[6])[:-5],  # to the second: the ids give the order, --json the rest
            Text(row[2], style=_style(row[2])),
            Text(row[3] or ""),
            Text(row[4] or ""),
            Text(row[5] or ""),
            Text(row[7]),
        )
    return table


def rich_line(row: Sequence[Any]) -> Text:
    """One entry as one styled line, for ``tail`` at a terminal."""
    line = Text()
    line.append(short_time(row[6]), style="dim")
    line.append(f"  #{row[0]}  ", style="dim")
    line.append(row[2], style=_style(row[2]))
    line.append(f"  {row[3] or '-'}")
    if row[4]:
        line.append(" -> ", style="dim")
        line.append(row[4])
    if row[5]:
        line.append(f"  [{row[5]}]", style="dim")
    line.append(f"  {row[7]}")
    return line
