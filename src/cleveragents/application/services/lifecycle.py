"""The service's close and flush in their other forms: context managers, and for asyncio.

``aflush()`` and ``aclose()`` wait in a daemon thread of their own, never in the
loop's default executor: a stuck database would hold its few threads, which asyncio
also needs (``to_thread``, ``getaddrinfo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

__all__ = ["Lifecycle", "in_own_thread"]

_T = TypeVar("_T")


async def in_own_thread(name: str, call: Callable[..., _T], *args: object) -> _T:
    """Run ``call(*args)`` in a new daemon thread and await its result on the running loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: tuple[_T, None] | tuple[None, BaseException]) -> None:
        if done.cancelled():
            return
        result, error = outcome
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        outcome: tuple[_T, None] | tuple[None, BaseException]
        try:
            outcome = (context.run(call, *args), None)
        except BaseException as exc:
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


class Lifecycle:
    """``with`` and ``async with`` blocks, :meth:`aflush` and :meth:`aclose`, over
    ``flush()`` and ``close()``."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry recorded before this call is committed."""
        raise NotImplementedError

    def close(self) -> None:
        """Close; idempotent."""
        raise NotImplementedError

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for asyncio code: waits in a thread of its own, never on the loop.

        Not in the loop's default executor, whose few threads a stuck database would hold.
        """
        return await in_own_thread("cleveragents-audit-aflush", self.flush, timeout)

    async def aclose(self) -> None:
        """:meth:`close` for asyncio code: drains in a thread of its own, never on the loop.

        A task cancelled while it waits leaves the close to finish in that thread.
        """
        await in_own_thread("cleveragents-audit-aclose", self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
