"""The one bisection helper: halving a failing batch until the refused items stand alone.

A fake store that refuses chosen items stands in for a sink; the database's own use
of the helper (the replay's insert) is tested against real databases in
``tests/infrastructure/persistence/test_database.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cleveragents.infrastructure.bisection import bisect_failures


class RefusedError(Exception):
    """The fake store's refusal of a batch holding a bad item."""


class FakeStore:
    """Commits a batch unless it holds one of ``bad``; records every attempt."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.attempts: list[list[int]] = []
        self.committed: list[int] = []

    def try_write(self, items: Sequence[int]) -> RefusedError | None:
        self.attempts.append(list(items))
        refused = [item for item in items if item in self.bad]
        if refused:
            return RefusedError(f"refused {refused[0]}")
        self.committed.extend(items)
        return None


def test_a_batch_that_commits_is_written_once_and_nothing_fails() -> None:
    """With no bad item, one attempt commits every item and no failure is returned."""
    store = FakeStore(bad=set())
    assert bisect_failures(range(8), store.try_write) == []
    assert store.attempts == [list(range(8))]
    assert store.committed == list(range(8))


@pytest.mark.parametrize("bad", [{0}, {7}, {3, 11}, {0, 1, 2}, set(range(16))])
def test_the_bad_items_are_isolated_and_every_good_one_commits(bad: set[int]) -> None:
    """Each bad item fails alone, with the error that refused it; all the others commit."""
    store = FakeStore(bad=bad)
    failures = bisect_failures(list(range(16)), store.try_write)
    assert [item for item, _ in failures] == sorted(bad)
    assert all(str(error) == f"refused {item}" for item, error in failures)
    assert sorted(store.committed) == [n for n in range(16) if n not in bad]


def test_failures_keep_the_items_order_and_no_item_is_tried_in_an_empty_batch() -> None:
    """Halves are tried left then right, and never empty."""
    store = FakeStore(bad={1, 4})
    failures = bisect_failures(list(range(5)), store.try_write)
    assert [item for item, _ in failures] == [1, 4]
    assert all(store.attempts)
    assert store.committed == [0, 2, 3]


def test_an_error_that_splitting_cannot_help_fails_the_whole_batch_at_once() -> None:
    """When can_split says no (a transient error past its deadline), no halving is tried."""
    store = FakeStore(bad={2})
    failures = bisect_failures(list(range(6)), store.try_write, can_split=lambda error: False)
    assert [item for item, _ in failures] == list(range(6))
    assert store.attempts == [list(range(6))]


def test_try_write_may_raise_to_end_the_whole_search() -> None:
    """An exception from try_write (the replay's transient errors) is not caught."""

    def try_write(items: Sequence[int]) -> RefusedError | None:
        if len(items) == 1:
            raise ConnectionError("the database went away")
        return RefusedError("refused")

    with pytest.raises(ConnectionError):
        bisect_failures(list(range(4)), try_write)


def test_no_items_means_no_attempt() -> None:
    """An empty batch is never handed to try_write."""
    store = FakeStore(bad=set())
    assert bisect_failures([], store.try_write) == []
    assert store.attempts == []


def test_a_range_of_indices_bisects_into_ranges() -> None:
    """Over a range (the replay bisects indices into its rows), the halves are ranges too."""
    seen: list[Sequence[int]] = []

    def try_write(indices: Sequence[int]) -> RefusedError | None:
        seen.append(indices)
        return RefusedError("refused") if 5 in indices else None

    failures = bisect_failures(range(3, 9), try_write)
    assert [index for index, _ in failures] == [5]
    assert all(isinstance(indices, range) for indices in seen)
