"""Following a trail as it grows: poll for ``id > the highest seen``, never re-read the table.

On SQLite, writes are serialised and an id is taken inside its transaction, so
ids become visible in order: ``id > highest`` misses nothing. On PostgreSQL two
writers (two runtimes sharing one trail) take ids from a sequence and may commit
out of order: the row with id 7 can become visible after the one with id 8. The
follower therefore notes the ids missing below the highest it has seen (one index
scan over the new range, returning only the gaps) and looks for them again on
each poll, for :data:`GAP_GRACE_S` seconds; an id still missing then belongs to a
transaction that rolled back, or to a row that was deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from cleveragents.infrastructure.persistence import browse
from cleveragents.infrastructure.persistence.database import AuditDatabase
from cleveragents.infrastructure.persistence.reads import EntryFilter

__all__ = ["GAP_GRACE_S", "MAX_TRACKED_GAPS", "Follower"]

#: How long an id missing below the highest seen is looked for again.
GAP_GRACE_S = 10.0
#: Most missing ids tracked at once (a jump of the sequence is not looked for id by id).
MAX_TRACKED_GAPS = 10_000
#: Rows read per query while catching up.
BATCH = 1_000

# The gaps in the ids of (low, high]: pairs (first missing, last missing). One scan of
# the primary key; the window function compares each id with the one before it (the
# first with low itself).
_GAPS = text(
    "SELECT previous + 1, id - 1 FROM ("
    " SELECT id, lag(id, 1, CAST(:low AS BIGINT)) OVER (ORDER BY id) AS previous"
    " FROM audit_log WHERE id > :low AND id <= :high"
    ") AS ids WHERE id - previous > 1"
)


class Follower:
    """New committed entries matching ``where``, after ``after_id``, one :meth:`poll` at a time."""

    def __init__(
        self,
        database: AuditDatabase,
        where: EntryFilter,
        *,
        after_id: int,
        track_gaps: bool | None = None,
        grace_s: float = GAP_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._where = where
        self._highest = after_id
        dialect = database.engine.dialect.name
        self._track_gaps = dialect == "postgresql" if track_gaps is None else track_gaps
        self._grace_s = grace_s
        self._clock = clock
        self._gaps: dict[int, float] = {}  # missing id -> when to stop looking for it

    @property
    def highest(self) -> int:
        """The highest id looked at so far."""
        return self._highest

    @property
    def pending_gaps(self) -> frozenset[int]:
        """The ids below :attr:`highest` still looked for."""
        return frozenset(self._gaps)

    def poll(self) -> list[Any]:
        """The matching entries committed since the last poll: late ones first, then new ones."""
        found: list[Any] = []
        with self._database.connect() as connection:
            if self._gaps:
                found.extend(self._late_rows(connection))
            newest = browse.max_id(connection)  # of every entry, matching or not
            if newest is None or newest <= self._highest:
                return found
            after = self._highest
            while True:
                rows = browse.page(
                    connection, self._where, after_id=after, limit=BATCH, up_to_id=newest
                )
                found.extend(rows)
                if len(rows) < BATCH:
                    break
                after = int(rows[-1].id)
            if self._track_gaps:
                self._note_gaps(connection, newest)
            self._highest = newest
        return found

    def _late_rows(self, connection: Connection) -> list[Any]:
        now = self._clock()
        for missing, deadline in list(self._gaps.items()):
            if deadline <= now:
                del self._gaps[missing]
        if not self._gaps:
            return []
        waiting = sorted(self._gaps)
        arrived = browse.existing_ids(connection, above=waiting[0] - 1, up_to=waiting[-1])
        arrived &= self._gaps.keys()
        if not arrived:
            return []
        for late in arrived:
            del self._gaps[late]
        return list(browse.rows_with_ids(connection, self._where, sorted(arrived)))

    def _note_gaps(self, connection: Connection, top: int) -> None:
        deadline = self._clock() + self._grace_s
        for first, last in connection.execute(_GAPS, {"low": self._highest, "high": top}):
            for missing in range(int(first), int(last) + 1):
                if len(self._gaps) >= MAX_TRACKED_GAPS:
                    return
                self._gaps.setdefault(missing, deadline)
