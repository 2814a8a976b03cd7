"""Tamper evidence: a trail written by a real service, changed behind its back, verified."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from audit_support import open_sqlite, sqlite_url
from behave import given, then, when
from behave.runner import Context
from typer.testing import CliRunner

from cleveragents import AuditService, Settings
from cleveragents.cli.main import app

#: Most seconds a step waits for the clock to move on.
CLOCK_WAIT_S = 5.0


def _write_run(context: Context, actor: str, count: int) -> None:
    """One service records ``count`` entries by ``actor`` and closes (after_scenario too)."""
    service = AuditService(Settings(database_url=context.trail_url))
    context.services.append(service)
    for seq in range(count):
        service.record("tool.invoked", actor=actor, details={"seq": seq})
    service.close()


def _report(context: Context) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(context.result.stdout)
    return report


@given('an agent recorded {count:d} entries in the trail "{name}" and shut down cleanly')
def given_clean_trail(context: Context, count: int, name: str) -> None:
    context.trail_path = context.tmp / name
    context.trail_url = sqlite_url(context.trail_path)
    _write_run(context, "agent:first-run", count)
    os.environ["CLEVERAGENTS_DATABASE_URL"] = context.trail_url  # after_scenario restores it


@given("someone with write access to the database changes the actor of the entry at seq {seq:d}")
def given_edited(context: Context, seq: int) -> None:
    with open_sqlite(context.trail_path) as connection:
        changed = connection.execute(
            "UPDATE audit_log SET actor = 'agent:someone-else' WHERE seq = ?", (seq,)
        ).rowcount
        connection.commit()
    assert changed == 1


@given("someone with write access to the database deletes the entry at seq {seq:d}")
def given_deleted(context: Context, seq: int) -> None:
    with open_sqlite(context.trail_path) as connection:
        assert connection.execute("DELETE FROM audit_log WHERE seq = ?", (seq,)).rowcount == 1
        connection.commit()


@given(
    "someone with write access to the database removes the last {count:d} entries and covers it up"
)
def given_cut_off(context: Context, count: int) -> None:
    # The head row is set back too, so the trail looks complete in itself.
    with open_sqlite(context.trail_path) as connection:
        (last,) = connection.execute("SELECT max(seq) FROM audit_log").fetchone()
        keep = last - count
        (hashed,) = connection.execute(
            "SELECT entry_hash FROM audit_log WHERE seq = ?", (keep,)
        ).fetchone()
        connection.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))
        connection.execute(
            "UPDATE audit_chain SET head_seq = ?, head_hash = ? WHERE id = 1", (keep, hashed)
        )
        connection.commit()


@given("the agent recorded {count:d} more entries in a second run")
def given_second_run(context: Context, count: int) -> None:
    # Every entry of the first run is older than this moment, every one of the second newer.
    context.second_run_started = datetime.now(UTC) + timedelta(microseconds=1)
    deadline = time.monotonic() + CLOCK_WAIT_S
    while datetime.now(UTC) <= context.second_run_started:
        assert time.monotonic() < deadline, "the clock did not move on"
    _write_run(context, "agent:second-run", count)


@when("I purge what was recorded before the second run")
def when_purge(context: Context) -> None:
    moment = context.second_run_started.isoformat()
    # --yes: the first run was recorded seconds ago, younger than the default --min-age (1d)
    arguments = ["purge", "--before", moment, "--yes"]
    context.result = CliRunner().invoke(app, arguments, catch_exceptions=False)


@then("it says the trail is intact, with {count:d} entries from seq {first:d} to seq {last:d}")
def then_intact(context: Context, count: int, first: int, last: int) -> None:
    summary = context.result.stdout.splitlines()[0]
    assert summary.startswith(f"intact: {count} entries (seq {first}..{last})"), summary


@then("the report names the entry at seq {seq:d} as {kind}, and nothing else")
def then_only_finding(context: Context, seq: int, kind: str) -> None:
    report = _report(context)
    assert [(f["kind"], f["seq"]) for f in report["findings"]] == [(kind, seq)], report
    with open_sqlite(context.trail_path) as connection:
        (event_id,) = connection.execute(
            "SELECT event_id FROM audit_log WHERE seq = ?", (seq,)
        ).fetchone()
    assert report["findings"][0]["event_id"] == event_id


@then("the report says the entry at seq {seq:d} is missing")
def then_missing(context: Context, seq: int) -> None:
    report = _report(context)
    deleted = [f for f in report["findings"] if f["kind"] == "deleted"]
    assert len(deleted) == 1, report
    assert deleted[0]["seq"] == seq  # the missing seq; id names the entry after the hole
    assert f"seq {seq} is missing" in deleted[0]["message"], deleted[0]


@then(
    "the report says entries after seq {kept:d} were cut off, up to the checkpoint at seq {seq:d}"
)
def then_truncated(context: Context, kept: int, seq: int) -> None:
    report = _report(context)
    assert report["last_seq"] == kept, report
    truncated = [f for f in report["findings"] if f["kind"] == "truncated"]
    assert [f["seq"] for f in truncated] == [seq], report


@then("the entries of the first run are gone, and the {count:d} of the second run are kept")
def then_purged(context: Context, count: int) -> None:
    with open_sqlite(context.trail_path) as connection:
        by_actor = dict(
            connection.execute(
                "SELECT actor, count(*) FROM audit_log WHERE actor LIKE 'agent:%' GROUP BY actor"
            ).fetchall()
        )
        (declared,) = connection.execute(
            "SELECT details FROM audit_log WHERE event_type = 'retention.purged'"
        ).fetchone()
    assert by_actor == {"agent:second-run": count}, by_actor
    assert json.loads(declared)["count"] == 12
