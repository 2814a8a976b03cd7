"""``trail.purge(protect_since=...)`` and ``trail.preview_purge``: the guard under the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cleveragents.application import trail
from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.verification import VerifyStatus
from cleveragents.infrastructure.persistence.database import open_database
from tests.trail_support import fetch, verify_url

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def write(url: str, times: list[datetime]) -> None:
    """One entry per time, through the chain, in this order."""
    database = open_database(url)
    try:
        database.write_batch(
            [
                (new_event_id(), "tool.invoked", "a", None, encode_details({}), None, t, None, None)
                for t in times
            ]
        )
    finally:
        database.dispose()


def test_a_protected_entry_in_the_prefix_refuses_the_whole_purge(database_url: str) -> None:
    """Two old entries, then one from a minute ago: purge with protect_since removes nothing."""
    now = datetime.now(UTC)
    write(database_url, [LONG_AGO, LONG_AGO + timedelta(hours=1), now - timedelta(minutes=1)])
    database = open_database(database_url, create=False)
    try:
        preview = trail.preview_purge(
            database, now + timedelta(days=1), recent_since=now - timedelta(hours=1)
        )
        assert (preview.count, preview.first_seq, preview.through_seq, preview.recent) == (
            3,
            1,
            3,
            1,
        )
        assert preview.oldest == LONG_AGO
        with pytest.raises(trail.PurgeRefusedError, match="would remove 1 entries") as refused:
            trail.purge(database, now + timedelta(days=1), protect_since=now - timedelta(hours=1))
        assert refused.value.preview.recent == 1
        assert fetch(database_url, "SELECT count(*) FROM audit_log") == [(3,)]
        kept = trail.purge(database, LONG_AGO + timedelta(hours=2), protect_since=now)
        assert (kept.through_seq, kept.deleted) == (2, 2)
    finally:
        database.dispose()
    assert verify_url(database_url).status is VerifyStatus.INTACT


def test_naive_times_are_refused(sqlite_url: str) -> None:
    """protect_since and recent_since must be timezone-aware, as before must."""
    write(sqlite_url, [LONG_AGO])
    database = open_database(sqlite_url, create=False)
    try:
        with pytest.raises(ValueError, match="protect_since must be timezone-aware"):
            trail.purge(database, LONG_AGO, protect_since=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="recent_since must be timezone-aware"):
            trail.preview_purge(database, LONG_AGO, recent_since=datetime(2026, 1, 1))
    finally:
        database.dispose()
