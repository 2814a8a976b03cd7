"""Opt-in signal handling, so a terminated runtime drains its audit queue before it dies.

Python's default SIGTERM action ends the process at once: no ``finally`` blocks,
no exit hooks, and whatever the writer had not committed is lost. After
:func:`install_signal_handlers`, SIGTERM raises :class:`SystemExit` (status 143)
in the main thread and SIGINT raises :class:`KeyboardInterrupt`, so the process
unwinds normally and the exit hook drains every open :class:`AuditService`
(each with at most ``audit_close_timeout_s``).

The handler only raises. It does not touch the queue itself: a signal handler
runs between two bytecodes of the main thread, which may be holding the queue's
lock at that moment.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any

__all__ = ["install_signal_handlers"]

_Handler = Any  # what signal.signal returns: a callable, an int, or None


def install_signal_handlers(
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> dict[signal.Signals, _Handler]:
    """Make ``signals`` end the process through a normal exit, which persists the queue.

    Call it from the main thread (Python's rule for signal handlers), once the
    host application has set up whatever handlers of its own it wants replaced.
    Returns the previous handlers, so they can be restored with ``signal.signal``.
    """
    previous: dict[signal.Signals, _Handler] = {}
    for signum in signals:
        previous[signum] = signal.signal(signum, _exit_normally)
    return previous


def _exit_normally(signum: int, _frame: FrameType | None) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)
