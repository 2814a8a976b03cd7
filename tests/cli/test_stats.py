"""``stats``: totals by event type and actor for a period, rows, size, oldest and newest."""

from __future__ import annotations

import orjson
import pytest

from tests.cli.conftest import Trail, run_cli


def test_stats_json_for_the_whole_trail(trail: Trail) -> None:
    """Every total is exact; oldest and newest are the first and last entries."""
    result = run_cli("stats", "--database-url", trail.url, "--json")
    assert result.exit_code == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["rows"] == report["rows_in_trail"] == 12
    assert report["by_event_type"] == {
        "agent.started": 2,
        "llm.request": 2,
        "permission.denied": 2,
        "session.ended": 2,
        "session.started": 2,
        "tool.invoked": 2,
    }
    assert report["by_actor"] == [
        {"actor": "agent:analyst", "count": 8},
        {"actor": "user:zoë", "count": 4},
    ]
    assert report["oldest"] == {"id": 1, "created_at": "2026-03-01T00:00:00.000001+00:00"}
    assert report["newest"] == {"id": 12, "created_at": "2026-03-01T15:00:00.006301+00:00"}
    assert report["database_size_bytes"] > 0
    assert (report["since"], report["until"], report["more_actors"]) == (None, None, False)


def test_stats_for_a_period(trail: Trail) -> None:
    """--since/--until restrict every figure but rows_in_trail."""
    result = run_cli(
        "stats",
        "--database-url",
        trail.url,
        "--json",
        "--since",
        "2026-03-01T11:00:00Z",
        "--until",
        "2026-03-01T13:00:00Z",
    )
    report = orjson.loads(result.stdout)
    assert (report["rows"], report["rows_in_trail"]) == (2, 12)
    assert report["by_event_type"] == {"agent.started": 1, "llm.request": 1}
    assert report["oldest"]["id"] == 8
    assert report["newest"]["id"] == 9
    assert report["since"] == "2026-03-01T11:00:00.000000+00:00"


def test_stats_top_actors(trail: Trail) -> None:
    """--top N lists the N busiest actors and says there are more; --top 0 lists all."""
    report = orjson.loads(
        run_cli("stats", "--database-url", trail.url, "--json", "--top", "1").stdout
    )
    assert report["by_actor"] == [{"actor": "agent:analyst", "count": 8}]
    assert report["more_actors"] is True
    report = orjson.loads(
        run_cli("stats", "--database-url", trail.url, "--json", "--top", "0").stdout
    )
    assert len(report["by_actor"]) == 2


def test_stats_of_nothing(trail: Trail) -> None:
    """A period with no entries: zero rows, no oldest or newest."""
    report = orjson.loads(
        run_cli("stats", "--database-url", trail.url, "--json", "--since", "1h").stdout
    )
    assert (report["rows"], report["oldest"], report["newest"]) == (0, None, None)
    assert report["by_event_type"] == {}


def test_stats_piped_is_tab_separated(trail: Trail) -> None:
    """Piped: key<TAB>value lines, then event_type and actor lines with their counts."""
    lines = run_cli("stats", "--database-url", trail.url).stdout.splitlines()
    assert "rows\t12" in lines
    assert "event_type\tpermission.denied\t2" in lines
    assert "actor\tagent:analyst\t8" in lines
    assert "oldest\t2026-03-01T00:00:00.000001+00:00" in lines


@pytest.mark.parametrize("width", ["200", "60"])
def test_stats_on_a_terminal(trail: Trail, width: str) -> None:
    """At a terminal: a summary and two tables, with shares."""
    result = run_cli(
        "stats", "--database-url", trail.url, env={"TTY_COMPATIBLE": "1", "COLUMNS": width}
    )
    assert result.exit_code == 0, result.stderr
    for text in ("by event type", "by actor", "66.7%", "agent:analyst", "(of 12 in the trail)"):
        assert text in result.stdout
