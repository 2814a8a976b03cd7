"""What goes where: data on stdout, notes on stderr; a table keeps one line per entry.

``export --out`` says on stderr what it wrote; ``query`` says on stderr when more
entries match (piped or at a terminal); the entries table crops a long details
value with an ellipsis instead of wrapping it into fragments.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from cleveragents.cli.render import entries_table
from cleveragents.infrastructure.persistence.browse import BrowsedRow
from tests.cli.conftest import Exited, Trail, json_lines, run_main


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Exited]:
    """``cleveragents-audit ARGS`` through the console script's entry point, in this process."""

    def run(*args: str) -> Exited:
        return run_main(*args, monkeypatch=monkeypatch)

    return run


def at_a_terminal(monkeypatch: pytest.MonkeyPatch, columns: int = 200) -> None:
    """Rich treats stdout and stderr as a terminal this wide, without colours."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")


def test_export_to_a_file_says_what_it_wrote_on_stderr(
    sqlite_trail: Trail, tmp_path: Path, cli: Callable[..., Exited]
) -> None:
    """Piped, export --out prints one summary line on stderr: rows and file; stdout is empty."""
    out = tmp_path / "trail.jsonl"
    done = cli("export", "--database-url", sqlite_trail.url, "--out", str(out), "-t", "llm.request")
    assert done.code == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"exported 2 entries to {out} in ")
    assert done.stderr.rstrip().endswith("; continue later with --after-id 9")
    assert [e["id"] for e in json_lines(out.read_text())] == [3, 9]


def test_export_to_stdout_piped_keeps_stderr_quiet(
    sqlite_trail: Trail, cli: Callable[..., Exited]
) -> None:
    """Piped to stdout, the data is all there is: nothing on stderr."""
    done = cli("export", "--database-url", sqlite_trail.url)
    assert done.code == 0
    assert len(json_lines(done.stdout)) == 12
    assert done.stderr == ""


@pytest.mark.parametrize("json", [[], ["--json"]], ids=["plain", "json"])
def test_query_piped_says_on_stderr_when_more_match(
    trail: Trail, cli: Callable[..., Exited], json: list[str]
) -> None:
    """A full page: entries on stdout; `more entries match` and the next --after-id on stderr."""
    done = cli("query", "--database-url", trail.url, "-n", "5", *json)
    assert done.code == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5
    assert done.stderr == "more entries match: continue with --after-id 5\n"
    last = cli("query", "--database-url", trail.url, "-n", "5", "--after-id", "10", *json)
    assert len(last.stdout.splitlines()) == 2
    assert last.stderr == ""
    exact = cli("query", "--database-url", trail.url, "-n", "12", *json)
    assert len(exact.stdout.splitlines()) == 12
    assert exact.stderr == ""  # exactly a page: nothing more matches


def test_query_at_a_terminal_says_it_on_stderr_too(
    sqlite_trail: Trail, cli: Callable[..., Exited], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a terminal the table is on stdout and the note on stderr, so `> file` keeps only data."""
    at_a_terminal(monkeypatch)
    done = cli("query", "--database-url", sqlite_trail.url, "-n", "3")
    assert done.code == 0, done.stderr
    assert "3 entries, ids 1..3" in done.stdout
    assert "more entries match" not in done.stdout
    assert done.stderr == "more entries match: continue with --after-id 3\n"


def row(entry_id: int, details: str) -> BrowsedRow:
    """A row as browse reads it."""
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    return BrowsedRow(entry_id, "e", "tool.invoked", "agent:a", "tool:t", "run-1", moment, details)


def rendered(rows: list[BrowsedRow], width: int) -> list[str]:
    """The entries table drawn on a console ``width`` columns wide, as lines."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, legacy_windows=False).print(
        entries_table(rows)
    )
    return buffer.getvalue().splitlines()


def cells(line: str) -> list[str]:
    """The cells of one body line of a table, stripped."""
    return [cell.strip() for cell in line.split("│")[1:-1]]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_a_long_details_value_is_one_cropped_line(width: int) -> None:
    """A details value too long for its column is cut with an ellipsis, never continued below.

    At 80 columns the actor may still fold onto a second line; the details never do.
    """
    long = '{"prompt":"' + "word " * 200 + '"}'
    lines = rendered([row(1, long), row(2, '{"ok":true}')], width)
    body = [cells(line) for line in lines if line.startswith("│")]
    assert all(len(line) <= width for line in lines)
    starts = [c for c in body if c[0]]
    assert [c[0] for c in starts] == ["1", "2"]
    assert all(c[-1] == "" for c in body if not c[0]), "\n".join(lines)  # no fragments
    first = starts[0][-1]
    assert first.endswith("…")
    assert long.startswith(first[:-1])
    if width >= 120:  # room for every column: one line per entry
        assert len(body) == 2, "\n".join(lines)
        assert starts[1][-1] == '{"ok":true}'


def test_values_that_look_like_markup_are_shown_as_they_are() -> None:
    """Brackets in details, actor or resource are data: `[null,1]` and `[bold]` stay visible."""
    details = '{"a":[null,1],"b":"[bold]x[/bold]"}'
    entry = BrowsedRow(
        1, "e", "tool.invoked", "[red]actor", "[b]res", None, datetime.now(UTC), details
    )
    text = "\n".join(rendered([entry], 200))
    assert details in text
    assert "[red]actor" in text
    assert "[b]res" in text


def test_a_typical_entry_fits_whole_on_a_wide_terminal() -> None:
    """At 132 columns an actor like `agent:analyst-0` and a rule's details show uncut."""
    entry = row(21, '{"rule":"no-destructive-shell"}')
    entry = entry._replace(actor="agent:analyst-0", resource="tool:shell.run")
    body = [cells(line) for line in rendered([entry], 132) if line.startswith("│")]
    assert len(body) == 1
    assert body[0][3:5] == ["agent:analyst-0", "tool:shell.run"]
    assert body[0][-1] == '{"rule":"no-destructive-shell"}'
