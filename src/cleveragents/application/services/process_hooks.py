"""The process's fork and exit, for the services that own their database.

``os.fork()`` waits for a SQLite write under way (a child forked mid-write would
believe it holds the file's lock), and the child restarts each open service's
recording with connections, a writer and an identity of its own. At exit, the
synchronous services nobody closed are closed, so their ``writer.closed`` is written.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

from cleveragents.infrastructure.exit_hooks import run_at_exit

__all__ = ["Closable", "ProcessBound", "discard", "register"]


class ProcessBound(Protocol):
    """A recorder that owns its database: what a fork does to it."""

    is_async: bool

    def before_fork(self) -> None:
        """Before os.fork(): hold writes."""
        ...

    def after_fork_in_parent(self) -> None:
        """After os.fork(), in the parent: let writes go on."""
        ...

    def after_fork_in_child(self) -> None:
        """After os.fork(), in the child: record on its own (connections, writer, identity)."""
        ...


class Closable(Protocol):
    """The owner of a recorder (the service): closed at exit when synchronous."""

    def close(self) -> None:
        """Close; idempotent."""
        ...


# Open services that own a database, with their recorders. Weak: a service nobody
# holds any more is forgotten (a synchronous one then ends unterminated, as before).
_open: weakref.WeakKeyDictionary[Closable, ProcessBound] = weakref.WeakKeyDictionary()

# The recorders whose writes were held for the fork under way.
_held_for_fork: list[ProcessBound] = []


def register(owner: Closable, recorder: ProcessBound) -> None:
    """Take part in forks and the exit until :func:`discard` (or until ``owner`` is gone)."""
    _open[owner] = recorder


def discard(owner: Closable) -> None:
    """``owner`` closed: forks and the exit leave it alone."""
    _open.pop(owner, None)


def _hold_writes_before_fork() -> None:
    for recorder in list(_open.values()):
        recorder.before_fork()
        _held_for_fork.append(recorder)


def _resume_writes_after_fork() -> None:
    while _held_for_fork:
        _held_for_fork.pop().after_fork_in_parent()


def _restart_after_fork() -> None:
    _held_for_fork.clear()
    for recorder in list(_open.values()):
        recorder.after_fork_in_child()


os.register_at_fork(
    before=_hold_writes_before_fork,
    after_in_parent=_resume_writes_after_fork,
    after_in_child=_restart_after_fork,
)


def _close_sync_services() -> None:
    """At exit, close synchronous services nobody closed, so their writer.closed is written.

    Nothing of theirs is pending (each record() committed); without this a clean exit
    would look like a killed writer to verify. Asynchronous services are drained by
    the writer's own exit hook.
    """
    for owner, recorder in list(_open.items()):
        if not recorder.is_async:
            owner.close()


# Before the writers' own hook (priority 0): a synchronous service has nothing queued.
run_at_exit(_close_sync_services, priority=1)
