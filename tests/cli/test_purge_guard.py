"""``purge`` asks before it removes young entries: --dry-run, --min-age, --yes/--force.

On real SQLite files and PostgreSQL schemas: six entries from long ago, then three
written two hours ago, all through the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from cleveragents.cli.render import iso_time
from cleveragents.domain.verification import VerifyStatus
from tests.cli.conftest import T0, Exited, json_lines, run_main, write_rows
from tests.trail_support import fetch, verify_url

OLD, RECENT = 6, 3


def entries(url: str, times: list[datetime]) -> None:
    """One tool.invoked entry per time, appended in this order through the chain."""
    rows = [
        (
            f"01900000-0000-7000-8000-{n:012d}",
            "tool.invoked",
            "agent",
            None,
            orjson.dumps({"n": n}).decode(),
            None,
            moment,
            None,
            None,
        )
        for n, moment in enumerate(times)
    ]
    write_rows(url, rows)


@pytest.fixture
def aged(database_url: str) -> tuple[str, list[datetime]]:
    """A trail of OLD entries an hour apart from T0, then RECENT entries two hours old."""
    recent = datetime.now(UTC) - timedelta(hours=2)
    times = [T0 + timedelta(hours=h) for h in range(OLD)]
    times += [recent + timedelta(seconds=s) for s in range(RECENT)]
    entries(database_url, times)
    return database_url, times


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Exited]:
    """``cleveragents-audit ARGS`` through the console script's entry point, in this process."""

    def run(*args: str) -> Exited:
        return run_main(*args, monkeypatch=monkeypatch)

    return run


def future() -> str:
    """A --before a month from now: every entry is older."""
    return (datetime.now(UTC) + timedelta(days=30)).isoformat()


def stored(url: str) -> tuple[int, int, int]:
    """Rows, the newest seq, and how many retention.purged declarations are stored."""
    ((rows, top),) = fetch(url, "SELECT count(*), max(seq) FROM audit_log")
    ((declared,),) = fetch(
        url, "SELECT count(*) FROM audit_log WHERE event_type = 'retention.purged'"
    )
    return int(rows), int(top), int(declared)


def test_a_future_cut_is_refused_and_nothing_is_removed(
    aged: tuple[str, list[datetime]], cli: Callable[..., Exited]
) -> None:
    """--before a future date would take the young entries too: one error line, exit 2."""
    url, _ = aged
    result = cli("purge", "--before", future(), "--database-url", url)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: --before ")
    assert f"would remove {RECENT} entries younger than --min-age 1d" in result.stderr
    assert "nothing was removed" in result.stderr
    assert "--yes" in result.stderr
    assert stored(url) == (OLD + RECENT, OLD + RECENT, 0)
    assert verify_url(url).status is VerifyStatus.INTACT


def test_dry_run_says_what_would_go_and_removes_nothing(
    aged: tuple[str, list[datetime]], cli: Callable[..., Exited]
) -> None:
    """--dry-run --json: count, seq range, oldest and newest, how many are young; no declaration."""
    url, times = aged
    before = future()
    result = cli("purge", "--before", before, "--dry-run", "--json", "--database-url", url)
    assert result.code == 0, result.stderr
    assert orjson.loads(result.stdout) == {
        "dry_run": True,
        "before": before,
        "count": OLD + RECENT,
        "first_seq": 1,
        "through_seq": OLD + RECENT,
        "oldest": iso_time(times[0]),
        "newest": iso_time(times[-1]),
        "younger_than_min_age": RECENT,
        "refused": True,
    }
    assert stored(url) == (OLD + RECENT, OLD + RECENT, 0)

    cut = (T0 + timedelta(hours=2, minutes=30)).isoformat()  # the first three old entries
    result = cli("purge", "--before", cut, "--dry-run", "--database-url", url)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"would purge 3 entries (seq 1..3, created {iso_time(times[0])} .. "
        f"{iso_time(times[2])}) older than {cut}; nothing was removed (dry run)"
    ]
    result = cli("purge", "--before", future(), "--dry-run", "--yes", "--database-url", url)
    assert result.stdout.splitlines()[1] == f"{RECENT} of them are younger than --min-age: " + (
        "allowed by --yes"
    )
    nothing = cli("purge", "--before", "2000-01-01", "--dry-run", "--database-url", url)
    assert nothing.stdout == "nothing older than 2000-01-01T00:00:00+00:00 to purge\n"
    assert stored(url) == (OLD + RECENT, OLD + RECENT, 0)
    assert verify_url(url).status is VerifyStatus.INTACT


def test_min_age_sets_how_young_is_too_young(
    aged: tuple[str, list[datetime]], cli: Callable[..., Exited]
) -> None:
    """Entries two hours old: refused with --min-age 3h, purged with --min-age 1h."""
    url, _ = aged
    refused = cli("purge", "--before", future(), "--min-age", "3h", "--database-url", url)
    assert refused.code == 2
    assert f"would remove {RECENT} entries younger than --min-age 3h" in refused.stderr
    assert stored(url)[0] == OLD + RECENT
    done = cli("purge", "--before", future(), "--min-age", "1h", "--json", "--database-url", url)
    assert done.code == 0, done.stderr
    assert orjson.loads(done.stdout)["deleted"] == OLD + RECENT
    report = verify_url(url)
    assert (report.status, report.entries, report.first_seq) == (VerifyStatus.INTACT, 1, 10)


def test_a_cut_older_than_the_minimum_age_needs_no_confirmation(
    aged: tuple[str, list[datetime]],
    cli: Callable[..., Exited],
) -> None:
    """Only old entries would go: purged at once, declared, and the trail still verifies."""
    url, _ = aged
    cut = (T0 + timedelta(hours=2, minutes=30)).isoformat()
    done = cli("purge", "--before", cut, "--database-url", url)
    assert done.code == 0, done.stderr
    assert done.stdout.startswith("purged 3 entries (through seq 3)")
    assert stored(url) == (OLD + RECENT - 3 + 1, OLD + RECENT + 1, 1)
    report = verify_url(url)
    assert (report.status, report.first_seq) == (VerifyStatus.INTACT, 4)


@pytest.mark.parametrize("confirm", [["--yes"], ["--force"], ["-y"], ["--min-age", "0"]])
def test_yes_or_no_minimum_age_purges_young_entries_too(
    aged: tuple[str, list[datetime]], cli: Callable[..., Exited], confirm: list[str]
) -> None:
    """--yes (or --force, -y), or --min-age 0: everything goes, declared; verify still passes."""
    url, _ = aged
    done = cli("purge", "--before", future(), "--json", "--database-url", url, *confirm)
    assert done.code == 0, done.stderr
    assert orjson.loads(done.stdout)["through_seq"] == OLD + RECENT
    declared = cli("query", "--database-url", url, "--json", "--type", "retention.purged")
    (entry,) = json_lines(declared.stdout)
    assert entry["details"]["count"] == OLD + RECENT
    report = verify_url(url)
    assert (report.status, report.entries, report.first_seq) == (VerifyStatus.INTACT, 1, 10)


def test_min_age_zero_also_takes_entries_stamped_ahead_of_this_clock(
    database_url: str, cli: Callable[..., Exited]
) -> None:
    """--min-age 0 guards nothing: entries a skewed host stamped in the future go too."""
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    entries(database_url, [T0, ahead])
    cut = (ahead + timedelta(seconds=1)).isoformat()
    dry = cli(
        "purge",
        "--before",
        cut,
        "--dry-run",
        "--json",
        "--min-age",
        "0",
        "--database-url",
        database_url,
    )
    assert dry.code == 0, dry.stderr
    assert orjson.loads(dry.stdout)["younger_than_min_age"] == 0
    done = cli("purge", "--before", cut, "--min-age", "0", "--database-url", database_url)
    assert done.code == 0, done.stderr
    assert stored(database_url)[0] == 1  # only the retention.purged declaration is left
