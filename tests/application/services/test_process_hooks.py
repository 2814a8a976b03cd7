"""The registry of open services: what a fork and the process's exit do to each."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cleveragents.application.services import process_hooks


class FakeRecorder:
    """Notes the hooks called on it."""

    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async
        self.calls: list[str] = []

    def before_fork(self) -> None:
        self.calls.append("before")

    def after_fork_in_parent(self) -> None:
        self.calls.append("parent")

    def after_fork_in_child(self) -> None:
        self.calls.append("child")


class FakeService:
    """Counts its closes."""

    def __init__(self) -> None:
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def pair() -> Iterator[tuple[FakeService, FakeRecorder, FakeService, FakeRecorder]]:
    """A synchronous and an asynchronous service, registered; discarded afterwards."""
    sync, sync_recorder = FakeService(), FakeRecorder(is_async=False)
    queued, queued_recorder = FakeService(), FakeRecorder(is_async=True)
    process_hooks.register(sync, sync_recorder)
    process_hooks.register(queued, queued_recorder)
    yield sync, sync_recorder, queued, queued_recorder
    process_hooks.discard(sync)
    process_hooks.discard(queued)


def test_the_exit_closes_only_synchronous_services(
    pair: tuple[FakeService, FakeRecorder, FakeService, FakeRecorder],
) -> None:
    """At exit a synchronous service is closed; an asynchronous one is left to its writer."""
    sync, _, queued, _ = pair
    process_hooks._close_sync_services()
    assert (sync.closes, queued.closes) == (1, 0)


def test_a_discarded_service_is_left_alone(
    pair: tuple[FakeService, FakeRecorder, FakeService, FakeRecorder],
) -> None:
    """A service closed (discarded) takes part in neither forks nor the exit."""
    sync, sync_recorder, _, queued_recorder = pair
    process_hooks.discard(sync)
    process_hooks._hold_writes_before_fork()
    process_hooks._resume_writes_after_fork()
    process_hooks._close_sync_services()
    assert (sync.closes, sync_recorder.calls) == (0, [])
    assert queued_recorder.calls == ["before", "parent"]


def test_a_fork_holds_resumes_and_restarts_each_recorder(
    pair: tuple[FakeService, FakeRecorder, FakeService, FakeRecorder],
) -> None:
    """Before the fork writes are held; the parent resumes them, the child restarts."""
    _, sync_recorder, _, queued_recorder = pair
    process_hooks._hold_writes_before_fork()
    process_hooks._resume_writes_after_fork()
    process_hooks._restart_after_fork()
    assert sync_recorder.calls == queued_recorder.calls == ["before", "parent", "child"]


def test_a_service_nobody_holds_leaves_the_registry() -> None:
    """The registry holds services weakly: one dropped is forgotten with its recorder."""
    recorder = FakeRecorder(is_async=False)
    process_hooks.register(FakeService(), recorder)
    gc.collect()
    process_hooks._hold_writes_before_fork()
    process_hooks._resume_writes_after_fork()
    assert recorder.calls == []
