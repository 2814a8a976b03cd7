"""``query`` and ``tail`` through Typer's runner: filters, pages, the three output modes."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest

from cleveragents.cli.render import iso_time
from tests.cli.conftest import T0, Trail, json_lines, run_cli

FIELDS = ["id", "event_id", "event_type", "actor", "resource", "correlation_id", "created_at"]


def test_query_json_gives_every_field_of_every_entry(trail: Trail) -> None:
    """--json prints one object per entry, oldest first, with the stored values."""
    result = run_cli("query", "--database-url", trail.url, "--json")
    assert result.exit_code == 0, result.stderr
    entries = json_lines(result.stdout)
    assert [e["id"] for e in entries] == list(range(1, 13))
    for entry, row in zip(entries, trail.rows, strict=True):
        assert list(entry) == [*FIELDS, "details"]
        assert entry["event_id"] == row.event_id
        assert entry["event_type"] == row.event_type
        assert (entry["actor"], entry["resource"], entry["correlation_id"]) == (
            row.actor,
            row.resource,
            row.correlation_id,
        )
        assert entry["created_at"] == iso_time(row.created_at)
    assert entries[1]["details"] == {"goal": "Q3 — résumé"}
    assert entries[3]["details"] == {"args": {"q": ["a", 1, None]}}


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--type", "permission.denied"], [5, 11]),
        (["-t", "session.started"], [1, 7]),
        (["--actor", "user:zoë"], [1, 6, 7, 12]),
        (["--resource", "tool:web.search"], [4, 10]),
        (["--correlation-id", "run-b"], [7, 8, 9, 10, 11, 12]),
        (["--since", "2026-03-01T10:00:00Z"], [7, 8, 9, 10, 11, 12]),
        (["--until", "2026-03-01T02:00:00+00:00"], [1, 2]),
        (["--since", "2026-03-01T11:00", "--until", "2026-03-01T13:00"], [8, 9]),
        (["--since", "2026-03-01T12:00:00+01:00"], [8, 9, 10, 11, 12]),
        (["--actor", "agent:analyst", "--correlation-id", "run-a", "-t", "llm.request"], [3]),
        (["--actor", "nobody"], []),
    ],
)
def test_query_filters(trail: Trail, options: list[str], ids: list[int]) -> None:
    """Each filter, and several at once, select exactly the matching entries."""
    result = run_cli("query", "--database-url", trail.url, "--json", *options)
    assert result.exit_code == 0, result.stderr
    assert [e["id"] for e in json_lines(result.stdout)] == ids


def test_query_since_a_time_ago(sqlite_trail: Trail) -> None:
    """--since 2h counts back from now: the old entries are out, a new one is in."""
    result = run_cli("query", "--database-url", sqlite_trail.url, "--json", "--since", "2h")
    assert json_lines(result.stdout) == []
    result = run_cli("query", "--database-url", sqlite_trail.url, "--json", "--until", "15m")
    assert len(json_lines(result.stdout)) == 12


def test_query_pages_by_id(trail: Trail) -> None:
    """--limit and --after-id walk the trail page by page, no entry twice or missed."""
    seen: list[int] = []
    after: list[str] = []
    while True:
        result = run_cli("query", "--database-url", trail.url, "--json", "-n", "5", *after)
        page = [e["id"] for e in json_lines(result.stdout)]
        if not page:
            break
        assert len(page) <= 5
        seen += page
        after = ["--after-id", str(page[-1])]
    assert seen == list(range(1, 13))


def test_query_piped_prints_tab_separated_lines(sqlite_trail: Trail) -> None:
    """Without a terminal: id, time, type, actor, resource, correlation id, details; - for none."""
    result = run_cli("query", "--database-url", sqlite_trail.url, "-t", "tool.invoked")
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    fields = lines[0].split("\t")
    assert fields == [
        "4",
        iso_time(sqlite_trail.rows[3].created_at),
        "tool.invoked",
        "agent:analyst",
        "tool:web.search",
        "run-a",
        '{"args":{"q":["a",1,null]}}',
    ]


def test_query_on_a_terminal_draws_a_table(sqlite_trail: Trail) -> None:
    """On a terminal the entries are a table; the id to continue from is on stderr."""
    result = run_cli(
        "query",
        "--database-url",
        sqlite_trail.url,
        "-n",
        "3",
        env={"TTY_COMPATIBLE": "1", "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.stderr
    assert "event type" in result.stdout
    assert "session.started" in result.stdout
    assert "2026-03-01 00:00:00" in result.stdout
    assert "3 entries, ids 1..3" in result.stdout
    assert result.stderr == "more entries match: continue with --after-id 3\n"  # not in the data


def test_query_no_match_on_a_terminal_says_so(sqlite_trail: Trail) -> None:
    """An empty result at a terminal is a sentence, not an empty table; piped it is nothing."""
    args = ["query", "--database-url", sqlite_trail.url, "--actor", "nobody"]
    assert "no entries match" in run_cli(*args, env={"TTY_COMPATIBLE": "1"}).stdout
    assert run_cli(*args).stdout == ""


def test_tail_prints_the_newest_matching_entries_oldest_first(trail: Trail) -> None:
    """tail -n N is the last N matching entries, in ascending order."""
    result = run_cli("tail", "--database-url", trail.url, "-n", "3", "--json")
    assert [e["id"] for e in json_lines(result.stdout)] == [10, 11, 12]
    result = run_cli("tail", "--database-url", trail.url, "--actor", "user:zoë", "--json")
    assert [e["id"] for e in json_lines(result.stdout)] == [1, 6, 7, 12]
    result = run_cli("tail", "--database-url", trail.url, "-n", "0", "--json")
    assert result.stdout == ""


def test_tail_on_a_terminal_prints_styled_lines(sqlite_trail: Trail) -> None:
    """At a terminal each entry is one line: time, id, type, actor -> resource, run, details."""
    result = run_cli(
        "tail",
        "--database-url",
        sqlite_trail.url,
        "-n",
        "1",
        env={"TTY_COMPATIBLE": "1", "COLUMNS": "200", "NO_COLOR": "1"},
    )
    expected = (
        f"{(T0 + timedelta(minutes=900)).strftime('%Y-%m-%d %H:%M')}:00.006Z  #12  "
        'session.ended  user:zoë -> session:1  [run-b]  {"ok":true,"s":1.5}'
    )
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).strip() == expected


@pytest.mark.parametrize("recent_rows", [1, 10_000], ids=["long-range", "short-range"])
def test_since_reads_the_same_whichever_plan(
    sqlite_trail: Trail, monkeypatch: pytest.MonkeyPatch, recent_rows: int
) -> None:
    """A --since range read by id order or through the created_at index gives the same pages."""
    from cleveragents.infrastructure.persistence import browse

    monkeypatch.setattr(browse, "RECENT_ROWS", recent_rows)
    since = ["--since", "2026-03-01T02:30:00Z"]
    result = run_cli("query", "--database-url", sqlite_trail.url, "--json", "-n", "3", *since)
    assert [e["id"] for e in json_lines(result.stdout)] == [4, 5, 6]
    result = run_cli("tail", "--database-url", sqlite_trail.url, "--json", "-n", "2", *since)
    assert [e["id"] for e in json_lines(result.stdout)] == [11, 12]
    report = run_cli("stats", "--database-url", sqlite_trail.url, "--json", *since)
    assert orjson.loads(report.stdout)["by_event_type"]["session.ended"] == 2
