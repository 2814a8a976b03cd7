"""WriterIdentity: the process's identity in the writer's own system entries."""

from __future__ import annotations

import os
import socket

import orjson

from cleveragents.infrastructure.accounting import WriterIdentity, library_version


def test_opened_says_where_the_writer_runs() -> None:
    """Host, pid, library version and mode; a fork names its parent."""
    identity = WriterIdentity("sync")
    opened = identity.opened()
    assert opened.writer_id == identity.writer_id
    assert orjson.loads(opened.details) == {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": library_version(),
        "mode": "sync",
    }
    child = identity.forked()
    assert (child.mode, child.parent_writer_id) == ("sync", identity.writer_id)
    assert child.writer_id != identity.writer_id
    assert orjson.loads(child.opened().details)["parent_writer_id"] == identity.writer_id


def test_the_other_entries_are_the_domain_builders() -> None:
    """closed, dropped and spooled carry the writer's id and the builders' details."""
    identity = WriterIdentity("async")
    closed = identity.closed(last_writer_seq=4, recorded=3, written=2, failed=1, dropped=0)
    dropped = identity.dropped(2, 5)
    spooled = identity.spooled([2, 3], spool=None, error="down")
    assert {row.writer_id for row in (closed, dropped, spooled)} == {identity.writer_id}
    assert orjson.loads(closed.details)["last_writer_seq"] == 4
    assert orjson.loads(dropped.details)["count"] == 2
    assert orjson.loads(spooled.details)["writer_seqs"] == [[2, 3]]
