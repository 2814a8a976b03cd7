"""Finding the rows a store refuses, so that they cannot hold the others back.

One helper for both places that write batches: the writer, whose batch is split
on a lasting error (:mod:`cleveragents.infrastructure.write_retry`), and the
replay's insert (``AuditDatabase.insert_new``). A batch that fails is halved, and
each half tried on its own, until every failing item is alone: the good ones
commit, the refused ones are returned with their error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["bisect_failures"]

_Item = TypeVar("_Item")
_Error = TypeVar("_Error", bound=BaseException)


def bisect_failures(
    items: Sequence[_Item],
    try_write: Callable[[Sequence[_Item]], _Error | None],
    *,
    can_split: Callable[[_Error], bool] = lambda error: True,
) -> list[tuple[_Item, _Error]]:
    """Write ``items`` with ``try_write``, halving on failure; the items that failed.

    ``try_write`` writes its items in one transaction and returns the error that
    stopped it, or None (it may raise instead, to end the whole search). An item
    fails with its error when it failed alone, or when ``can_split`` says that
    splitting cannot help (a transient error that outlasted its deadline). Items
    keep their order; ``try_write`` is never called with no items.
    """
    if not items:
        return []
    error = try_write(items)
    if error is None:
        return []
    if len(items) == 1 or not can_split(error):
        return [(item, error) for item in items]
    middle = len(items) // 2
    return bisect_failures(items[:middle], try_write, can_split=can_split) + bisect_failures(
        items[middle:], try_write, can_split=can_split
    )
