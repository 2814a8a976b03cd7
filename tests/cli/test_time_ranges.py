"""Times (and ids) outside what a date (or the database) holds: one line on stderr, exit 2.

Every command and option that takes a time, through ``main()`` (the console
script's entry point) and, for a few, as the installed script in its own process.
"""

from __future__ import annotations

import subprocess

import orjson
import pytest

from tests.cli.conftest import Trail, json_lines, run_main, script
from tests.support import GENEROUS_S
from tests.trail_support import fetch

#: Each command and each of its options that takes a time.
TIME_OPTIONS = [
    ("query", "--since"),
    ("query", "--until"),
    ("tail", "--since"),
    ("tail", "--until"),
    ("export", "--since"),
    ("export", "--until"),
    ("stats", "--since"),
    ("stats", "--until"),
    ("purge", "--before"),
]

#: Values that parse, but fall outside the years 1 to 9999 (in UTC), and why.
OUT_OF_RANGE = [
    ("99999999d", "it goes back before the year 1"),
    ("2000000w", "it goes back before the year 1"),
    ("99999999999999999999h", "at most 999,999,999 days"),
    ("9" * 5000 + "s", "at most 999,999,999 days"),  # more digits than int() takes
    ("9999-12-31T23:59:59-05:00", "in UTC it falls outside the years 1 to 9999"),
    ("0001-01-01T00:00:00+05:00", "in UTC it falls outside the years 1 to 9999"),
]


def shown(value: str) -> str:
    """How an error message quotes ``value`` (the repr, as the messages do)."""
    return repr(value)


@pytest.mark.parametrize(("command", "option"), TIME_OPTIONS)
@pytest.mark.parametrize(("value", "why"), OUT_OF_RANGE, ids=[v[:30] for v, _ in OUT_OF_RANGE])
def test_a_time_out_of_range_is_one_error_line(
    sqlite_trail: Trail,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    option: str,
    value: str,
    why: str,
) -> None:
    """The entry point exits 2 with one line naming the option, the value and why; no traceback."""
    before = fetch(sqlite_trail.url, "SELECT count(*) FROM audit_log")
    args = [command, "--database-url", sqlite_trail.url, option, value]
    if command == "purge":
        args.append("--yes")  # the time is refused before the age guard is asked
    done = run_main(*args, monkeypatch=monkeypatch)
    assert done.code == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {option}: {shown(value)[:40]}")
    assert done.stderr.rstrip().endswith(f"is out of range: {why}"), done.stderr
    assert "Traceback" not in done.stderr
    assert fetch(sqlite_trail.url, "SELECT count(*) FROM audit_log") == before


@pytest.mark.parametrize(
    "value", ["99999999999999999999h", "yesterday", "-1d", "1.5d", "99999999999999d"]
)
def test_purge_min_age_out_of_range_or_not_a_duration(
    sqlite_trail: Trail, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """--min-age takes the durations --since takes, or 0; anything else is one line, exit 2."""
    done = run_main(
        "purge",
        "--database-url",
        sqlite_trail.url,
        "--before",
        "2026-03-02",
        "--min-age",
        value,
        monkeypatch=monkeypatch,
    )
    assert done.code == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: --min-age: {value!r} is "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert fetch(sqlite_trail.url, "SELECT count(*) FROM audit_log") == [(12,)]


def matched(command: str, stdout: str) -> int:
    """How many entries the ``--json`` output of ``command`` says matched (or would go)."""
    if command == "stats":
        return int(orjson.loads(stdout)["rows"])
    if command == "purge":
        return int(orjson.loads(stdout)["count"])
    return len(json_lines(stdout))


@pytest.mark.parametrize(("command", "option"), TIME_OPTIONS)
def test_the_first_and_last_moments_a_date_holds_are_accepted(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, command: str, option: str
) -> None:
    """Year 1 and year 9999 in UTC are times like any other, on SQLite and PostgreSQL."""
    for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"):
        args = [command, "--database-url", trail.url, option, value]
        args += {"tail": ["-n", "100"], "purge": ["--dry-run"]}.get(command, [])
        args += [] if command == "export" else ["--json"]  # export writes JSON Lines anyway
        done = run_main(*args, monkeypatch=monkeypatch)
        assert done.code == 0, done.stderr
        assert done.stderr == ""
        everything = (option == "--since") == value.startswith("0001")  # before: --before 9999
        assert matched(command, done.stdout) == (12 if everything else 0)
    assert fetch(trail.url, "SELECT count(*) FROM audit_log") == [(12,)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "--since", "99999999d"], "error: --since: '99999999d' is out of range"),
        (
            ["stats", "--until", "9999-12-31T23:59:59-05:00"],
            "error: --until: '9999-12-31T23:59:59-05:00' is out of range",
        ),
        (
            ["purge", "--before", "99999999999999999999h"],
            "error: --before: '99999999999999999999h' is out of range",
        ),
    ],
)
def test_the_installed_script_exits_2_with_one_line(
    sqlite_trail: Trail, args: list[str], needle: str
) -> None:
    """As a real process: exit status 2, one line on stderr, nothing on stdout."""
    done = subprocess.run(
        [script(), *args, "--database-url", sqlite_trail.url],
        capture_output=True,
        text=True,
        timeout=GENEROUS_S * 3,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(needle), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


#: Numbers past what a database id (a signed 64-bit integer) holds, per command and option.
BIG = "99999999999999999999"
NUMBER_OPTIONS = [
    (["query", "--after-id", BIG], "--after-id"),
    (["query", "--limit", BIG], "--limit"),
    (["tail", "-n", BIG], "--lines"),
    (["export", "--after-id", BIG], "--after-id"),
    (["tail", "-f", "--interval", "1e308"], "--interval"),
]


@pytest.mark.parametrize(("args", "option"), NUMBER_OPTIONS, ids=lambda v: str(v))
def test_a_number_out_of_range_is_one_error_line(
    sqlite_trail: Trail, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    """An id, count or interval beyond what the database (or a wait) takes: exit 2, one line."""
    done = run_main(*args, "--database-url", sqlite_trail.url, monkeypatch=monkeypatch)
    assert done.code == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: Invalid value for '{option}'"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_the_largest_id_is_accepted(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    """--after-id and --limit at the 64-bit bound read nothing past it, on both backends."""
    largest = str(2**63 - 1)
    for args in (
        ["query", "--after-id", largest, "--limit", str(2**63 - 2), "--json"],
        ["export", "--after-id", largest],
    ):
        done = run_main(*args, "--database-url", trail.url, monkeypatch=monkeypatch)
        assert (done.code, done.stdout, done.stderr) == (0, "", "")
    done = run_main(
        "tail", "-n", largest, "--json", "--database-url", trail.url, monkeypatch=monkeypatch
    )
    assert done.code == 0, done.stderr
    assert len(json_lines(done.stdout)) == 12
