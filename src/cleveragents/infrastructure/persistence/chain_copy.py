"""Importing another database's chain as it is: same seq, hashes, HMACs and writers.

An export made with ``export --chain`` carries every entry with its chain fields.
:class:`ChainCopy` inserts such rows, in one transaction of the caller's, into a
trail where they keep their place:

* an **empty** trail (no entry, head at seq 0): the rows are inserted as they are
  and the head row moves to the last one. A chain that begins after seq 1 (its
  source was purged) must hold the ``retention.purged`` entry that declares the
  entries before it removed, and the origin moves there, as the purge moved it;
* a trail the rows **continue**: rows stored already at the same seq with the same
  hash are skipped (an import run again, or the next part of a move), and the first
  new one must follow the head (seq head + 1, prev_hash the head's hash).

Anything else (a trail holding another chain, a part of a chain into an empty
trail) is refused with :class:`ChainRefusedError`; nothing of the transaction may then
be committed. The rows are not checked against their hashes here: ``verify`` on
the target recomputes every one, as on the source, and finds what it would have
found there (a trail moved with an altered entry still shows it).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from cleveragents.domain.event_types import SystemEventType
from cleveragents.domain.rows import ChainedRow
from cleveragents.domain.system_entries import PurgedDetails
from cleveragents.infrastructure.persistence.bulk import (
    StoredAlreadyError,
    append_chained,
    lock_head,
)
from cleveragents.infrastructure.persistence.retention import move_origin
from cleveragents.infrastructure.persistence.table import audit_log

__all__ = ["ChainCopy", "ChainRefusedError"]

# Event ids looked up per statement for rows stored already.
_LOOKUP_CHUNK = 500
_PURGED = SystemEventType.RETENTION_PURGED.value


class ChainRefusedError(Exception):
    """The rows cannot keep their chain in this trail; ``index`` names the row (or None)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class ChainCopy:
    """Copies chained rows into the trail of ``connection``, in the caller's transaction.

    Takes the chain's lock at once (writers wait until the caller commits).
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.head_seq, self.head_hash = lock_head(connection)
        self._empty = (
            self.head_seq == 0
            and connection.execute(select(audit_log.c.id).limit(1)).first() is None
        )
        self._first: tuple[int, str] | None = None  # (seq, prev_hash) of the first row copied
        self._purged_through = 0  # the highest through_seq a copied retention.purged declares
        self.imported = 0
        self.skipped = 0
        #: Rows copied that do not follow the row before them (a hole in seq, another
        #: prev_hash): copied as they are, for ``verify`` to report as it does on the source.
        self.breaks = 0

    def add(self, rows: Sequence[ChainedRow]) -> None:
        """Copy ``rows`` (in chain order), skipping those stored already at the same place.

        Raises:
            ChainRefusedError: a row is stored with another seq or hash, or the first new row
                does not continue the trail's chain; ``index`` is its place in ``rows``.
            sqlalchemy.exc.SQLAlchemyError: the database refused the rows.
        """
        stored = {} if self._empty else self._stored(rows)
        new: list[ChainedRow] = []
        for index, row in enumerate(rows):
            place = stored.get(row.event_id)
            if place is not None:
                if place != (row.seq, row.entry_hash):
                    raise ChainRefusedError(
                        f"entry {row.event_id} is in the target already at seq {place[0]} with"
                        f" another hash: the target holds another chain",
                        index,
                    )
                self.skipped += 1
                continue
            if self._first is None and not self._empty:
                self._check_continues(row, index)
            if self._first is None:
                self._first = (row.seq, row.prev_hash)
            elif row.seq != self.head_seq + 1 or row.prev_hash != self.head_hash:
                self.breaks += 1
            self.head_seq, self.head_hash = row.seq, row.entry_hash
            new.append(row)
            if row.event_type == _PURGED:
                self._purged_through = max(self._purged_through, _through_seq(row.details))
        if not new:
            return
        try:
            append_chained(self._connection, new)
        except StoredAlreadyError:
            raise ChainRefusedError(
                "an event_id appears twice in these entries: a chain holds each entry once"
            ) from None
        self.imported += len(new)

    def finish(self) -> None:
        """The last checks, before the caller commits.

        Raises:
            ChainRefusedError: the copied chain begins after seq 1 in an empty trail, and no
                ``retention.purged`` entry in it declares the entries before it removed.
        """
        if self._first is None or not self._empty:
            return
        first_seq, prev_hash = self._first
        if first_seq > 1:
            if self._purged_through < first_seq - 1:
                raise ChainRefusedError(
                    f"the chain begins at seq {first_seq}, and no retention.purged entry in"
                    f" it declares seq 1..{first_seq - 1} purged: it is a part of a chain"
                    " (export --chain without --after-id gives the whole of it)"
                )
            move_origin(self._connection, first_seq - 1, prev_hash)

    def _check_continues(self, row: ChainedRow, index: int) -> None:
        if row.seq != self.head_seq + 1 or row.prev_hash != self.head_hash:
            raise ChainRefusedError(
                f"seq {row.seq} does not continue the target's chain (its head is seq"
                f" {self.head_seq}, {self.head_hash[:12]}...): the target holds another chain",
                index,
            )

    def _stored(self, rows: Sequence[ChainedRow]) -> dict[str, tuple[int | None, str | None]]:
        """event_id -> (seq, entry_hash) of the rows among ``rows`` that are stored."""
        ids = list(dict.fromkeys(row.event_id for row in rows))
        found: dict[str, tuple[int | None, str | None]] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            statement = select(audit_log.c.event_id, audit_log.c.seq, audit_log.c.entry_hash).where(
                audit_log.c.event_id.in_(ids[start : start + _LOOKUP_CHUNK])
            )
            for event_id, seq, hashed in self._connection.execute(statement):
                found[event_id] = (seq, hashed)
        return found


def _through_seq(details: str) -> int:
    """The ``through_seq`` a ``retention.purged`` entry declares (0 if it declares none)."""
    return PurgedDetails.parse(details).through_seq or 0
