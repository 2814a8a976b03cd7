"""What every subcommand shares: times, filters, and one-line errors with an exit status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cleveragents.cli.common import CliError, one_line, parse_duration, parse_time
from cleveragents.cli.filters import entry_filter
from cleveragents.domain.event_types import AuditEventType
from tests.cli.conftest import Trail, run_cli

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - timedelta(seconds=30)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("1H 30M", NOW - timedelta(minutes=90)),
        ("now", NOW),
        ("2026-02-27", datetime(2026, 2, 27, tzinfo=UTC)),
        ("2026-02-27T10:11:12", datetime(2026, 2, 27, 10, 11, 12, tzinfo=UTC)),
        ("2026-02-27T10:11:12Z", datetime(2026, 2, 27, 10, 11, 12, tzinfo=UTC)),
        (
            "2026-02-27T10:11:12.5+02:00",
            datetime(2026, 2, 27, 10, 11, 12, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_times_are_iso_8601_or_a_time_ago(text: str, expected: datetime) -> None:
    """ISO 8601 (UTC when no zone is given) or a number and a unit, counted back from now."""
    assert parse_time(text, "--since", now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15", "15 minutes", "2026-13-01", "-1h", ""])
def test_a_bad_time_is_named(text: str) -> None:
    """Anything else is a CliError naming the option and the value."""
    with pytest.raises(CliError) as caught:
        parse_time(text, "--until", now=NOW)
    assert f"--until: {text!r} is not a time" in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("99999999d", "it goes back before the year 1"),
        ("1000000000d", "at most 999,999,999 days"),
        ("99999999999999999999h", "at most 999,999,999 days"),
        ("9999-12-31T23:59:59-05:00", "in UTC it falls outside the years 1 to 9999"),
        ("0001-01-01T00:00:00+05:00", "in UTC it falls outside the years 1 to 9999"),
    ],
)
def test_a_time_out_of_range_is_named(text: str, why: str) -> None:
    """A time that a date cannot hold (in UTC) is a CliError at parse time, not later."""
    with pytest.raises(CliError) as caught:
        parse_time(text, "--since", now=NOW)
    assert str(caught.value) == f"--since: {text!r} is out of range: {why}"
    assert caught.value.exit_code == 2


def test_the_edges_of_what_a_date_holds_are_times() -> None:
    """Year 1 and year 9999 in UTC parse, and a time ago back to year 1."""
    assert parse_time("0001-01-01T05:00:00+05:00", "--since") == datetime.min.replace(tzinfo=UTC)
    assert parse_time("9999-12-31T23:59:59.999999", "--since") == datetime.max.replace(tzinfo=UTC)
    days = (NOW - datetime.min.replace(tzinfo=UTC)).days
    assert parse_time(f"{days}d", "--since", now=NOW) == NOW - timedelta(days=days)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta()),
        ("000", timedelta()),
        ("0s", timedelta()),
        ("30m", timedelta(minutes=30)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2W", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    """A duration is a number and a unit, as a time ago is, or 0."""
    assert parse_duration(text, "--min-age") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", "'5' is not a duration"),
        ("-1d", "'-1d' is not a duration"),
        ("2026-01-01", "'2026-01-01' is not a duration"),
        ("", "'' is not a duration"),
        ("1000000000d", "'1000000000d' is out of range: at most 999,999,999 days"),
    ],
)
def test_a_bad_duration_is_named(text: str, message: str) -> None:
    """Anything else is a CliError naming the option and the value."""
    with pytest.raises(CliError) as caught:
        parse_duration(text, "--min-age")
    assert str(caught.value).startswith(f"--min-age: {message}")
    assert caught.value.exit_code == 2


def test_filters_check_the_event_type_and_the_order_of_times() -> None:
    """An unknown type lists the known ones; --since must come before --until."""
    where = entry_filter("tool.invoked", "a", "r", "c", "2h", "1h", now=NOW)
    assert where.event_type is AuditEventType.TOOL_INVOKED
    assert (where.since, where.until) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    with pytest.raises(CliError, match=r"unknown event type 'tool\.used'; one of: agent\.started"):
        entry_filter("tool.used", None, None, None, None, None)
    with pytest.raises(CliError, match="must be before --until"):
        entry_filter(None, None, None, None, "1h", "2h", now=NOW)


def test_one_line_joins_a_driver_message() -> None:
    """Multi-line messages (psycopg's) become one line."""
    assert one_line("connection failed\n\tIs the server running?\r\n") == (
        "connection failed; Is the server running?"
    )


# -- through the runner: every subcommand, bad input -------------------------------------

READERS = [["query"], ["tail"], ["export"], ["stats"]]


def assert_one_line_error(result: object, *, named: str, exit_code: int = 2) -> None:
    """Exit status, nothing on stdout, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert named in stderr, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--type", "tool.used"], "unknown event type 'tool.used'"),
        (["--since", "last tuesday"], "--since: 'last tuesday' is not a time"),
        (["--until", "2026-02-30"], "--until: '2026-02-30' is not a time"),
        (["--since", "1h", "--until", "2h"], "must be before --until"),
        (["--no-such-option"], "No such option: --no-such-option"),
    ],
)
def test_readers_refuse_bad_input_in_one_line(
    sqlite_trail: Trail, command: list[str], options: list[str], named: str
) -> None:
    """query, tail, export and stats: a bad type, time or option is one line, status 2."""
    result = run_cli(*command, "--database-url", sqlite_trail.url, *options)
    assert_one_line_error(result, named=named)


@pytest.mark.parametrize(
    "command", [*READERS, ["db", "current"], ["demo", "--runs", "1"]], ids=lambda c: c[0]
)
@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("::not a url::", "malformed database URL '::not a url::'"),
        ("mysql://root@db/audit", "unsupported database 'mysql'"),
        ("postgresql+psycopg://u:hunter2@127.0.0.1:1/audit", "127.0.0.1:1/audit"),
    ],
)
def test_every_subcommand_refuses_an_unusable_url_in_one_line(
    command: list[str], url: str, named: str
) -> None:
    """A malformed, unsupported or unreachable URL: one line naming it, password hidden."""
    result = run_cli(*command, "--database-url", url)
    assert_one_line_error(result, named=named)
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("command", [*READERS, ["db", "current"]], ids=lambda c: c[0])
def test_readers_never_create_a_database(tmp_path: Path, command: list[str]) -> None:
    """A path that holds no database is an error, and no file appears there."""
    missing = tmp_path / "typo.db"
    result = run_cli(*command, "--database-url", f"sqlite:///{missing}")
    assert_one_line_error(result, named=f"no audit database at {missing}")
    assert not missing.exists()


def test_the_database_url_comes_from_the_environment(
    sqlite_trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --database-url, CLEVERAGENTS_DATABASE_URL names the database."""
    result = run_cli("query", "--json", env={"CLEVERAGENTS_DATABASE_URL": sqlite_trail.url})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 12


def test_invalid_settings_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad CLEVERAGENTS_* value is named, not a pydantic traceback."""
    result = run_cli("query", env={"CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE": "lots"})
    assert_one_line_error(result, named="audit_queue_maxsize")


def test_no_arguments_shows_the_help() -> None:
    """cleveragents-audit alone lists the commands."""
    result = run_cli()
    for command in ("query", "tail", "export", "import", "stats", "db", "demo"):
        assert command in result.stdout
