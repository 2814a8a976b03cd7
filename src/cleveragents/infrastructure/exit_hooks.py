"""Run a callback when the process ends, also in ``multiprocessing`` children.

``atexit`` covers a normal interpreter exit. ``multiprocessing`` ends a forked
child (start methods "fork" and "forkserver") with ``os._exit()``, which skips
``atexit`` but first runs multiprocessing's own finalizers; those registrations are
cleared in each new child, so they are renewed after every fork it makes.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
from collections.abc import Callable

__all__ = ["run_at_exit"]


class _FinalizerRegistration:
    def __init__(self, callback: Callable[[], None], priority: int) -> None:
        self._callback = callback
        self._priority = priority

    def register(self) -> None:
        multiprocessing.util.Finalize(None, self._callback, exitpriority=self._priority)


# multiprocessing holds after-fork callbacks' objects weakly: keep them alive here.
_registrations: list[_FinalizerRegistration] = []


def run_at_exit(callback: Callable[[], None], *, priority: int) -> None:
    """Call ``callback`` at interpreter exit and at a multiprocessing child's end.

    Among multiprocessing finalizers a higher ``priority`` runs first; ``atexit``
    runs the callbacks registered last first.
    """
    atexit.register(callback)
    registration = _FinalizerRegistration(callback, priority)
    _registrations.append(registration)
    registration.register()
    multiprocessing.util.register_after_fork(registration, _FinalizerRegistration.register)
