"""End-to-end throughput: entries per second from the first record() until they are committed."""

from __future__ import annotations

from typing import ClassVar

from ._common import MODES, TempService, persisted_per_second


class PersistedThroughput:
    """Persisted entries per second, async (group commit) vs sync (one commit per entry).

    One thread records ``entries`` entries flat out into a warmed-up service on a
    SQLite file; the clock stops when ``flush()`` returns True, and the benchmark
    fails unless exactly that many rows are then committed. Async records 50,000
    entries, five times the default queue, so the figure is the writer's
    sustained rate (the caller waits for room once the queue is full), not the
    speed of filling a queue. Sync records 3,000, each one INSERT + COMMIT.
    """

    params = MODES
    param_names = ("mode",)
    unit = "entries/s"
    entries: ClassVar[dict[str, int]] = {"async": 50_000, "sync": 3_000}
    flush_timeout_s = 120.0
    timeout = 300

    def setup(self, mode: str) -> None:
        self.fixture = TempService(mode)
        self.fixture.warm_up()

    def teardown(self, mode: str) -> None:
        self.fixture.close()

    def track_persisted_per_second(self, mode: str) -> int:
        """Entries recorded and committed per second, first record() to flush() == True."""
        return persisted_per_second(
            self.fixture.service, self.entries[mode], timeout=self.flush_timeout_s
        )
