"""What the hash chain costs the writer, and how fast ``verify`` reads a trail.

``ChainCost`` runs the library's own queue and writer twice in one process, in
alternating rounds, on two fresh SQLite files: once into the chain (the
library's sink: lock, head, hashes, insert, head update) and once into a plain
group-committed INSERT of the same rows, without seq or hashes (what the writer
did before the chain existed). Only the sink differs, so the ratio is the
chain's cost. The contract: the chain costs at most 15 % of throughput.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.redaction import DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS, Redactor
from cleveragents.domain.rows import ROW_FIELDS, EntryRow
from cleveragents.infrastructure.audit_queue import AuditQueue
from cleveragents.infrastructure.persistence.bulk import sqlite_time_text
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from cleveragents.infrastructure.persistence.errors import is_transient
from cleveragents.infrastructure.writer import AuditWriter, RetryPolicy

from ._common import ACTOR, CORRELATION_ID, DETAILS, EVENT_TYPE, RESOURCE, TempService

_PLAIN_INSERT = (
    f"INSERT INTO audit_log ({', '.join(ROW_FIELDS)}) VALUES ({', '.join('?' * len(ROW_FIELDS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)


class _UnchainedSink:
    """The same rows, group-committed without seq, hashes or the chain's lock."""

    def __init__(self, database: AuditDatabase) -> None:
        self._database = database

    def write_batch(self, rows: Sequence[EntryRow]) -> None:
        params = [(*row[:6], sqlite_time_text(row[6]), *row[7:]) for row in rows]
        with self._database.transaction() as connection:
            connection.exec_driver_sql(_PLAIN_INSERT, params)


class _Pipeline:
    """A queue and a writer into ``sink``, fed by this thread as record() would."""

    def __init__(self, sink: Any) -> None:
        self.queue = AuditQueue(10_000)
        self.writer = AuditWriter(
            self.queue,
            sink,
            batch_size=500,
            retry=RetryPolicy(),
            is_transient=is_transient,
            exit_timeout_s=60,
        )
        self.writer.start()
        self.writer_id = new_event_id()
        self.redactor = Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)

    def persisted_per_second(self, entries: int) -> float:
        """Rows built as record() builds them (default redaction, encoding, id, time) and
        queued, until flush() is True; per second."""
        put = self.queue.put
        redact = self.redactor.redact
        start = time.perf_counter()
        for _ in range(entries):
            put(
                (
                    new_event_id(),
                    EVENT_TYPE.value,
                    ACTOR,
                    RESOURCE,
                    encode_details(redact(DETAILS)),
                    CORRELATION_ID,
                    datetime.now(UTC),
                    self.writer_id,
                )
            )
        if not self.writer.flush(120):
            raise RuntimeError("flush() failed")
        return entries / (time.perf_counter() - start)

    def close(self) -> None:
        self.writer.stop(60)


class ChainCost:
    """Persisted entries/s with the chain and without, 6 alternating rounds of 20,000 each."""

    rounds = 6
    entries_per_round = 20_000
    timeout = 600
    unit = "entries/s"

    def setup(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="cleveragents-bench-")
        root = Path(self._directory.name)
        self.chained_db = open_database(f"sqlite:///{root / 'chained.db'}")
        self.plain_db = open_database(f"sqlite:///{root / 'plain.db'}")
        self.chained = _Pipeline(self.chained_db)
        self.plain = _Pipeline(_UnchainedSink(self.plain_db))
        for pipeline in (self.chained, self.plain):  # warm up
            pipeline.persisted_per_second(1_000)
        chained: list[float] = []
        plain: list[float] = []
        for _ in range(self.rounds):
            chained.append(self.chained.persisted_per_second(self.entries_per_round))
            plain.append(self.plain.persisted_per_second(self.entries_per_round))
        self.chained_rate = statistics.median(chained)
        self.plain_rate = statistics.median(plain)

    def teardown(self) -> None:
        self.chained.close()
        self.plain.close()
        self.chained_db.dispose()
        self.plain_db.dispose()
        self._directory.cleanup()

    def track_chained_persisted_per_second(self) -> float:
        """Median over the rounds, into the chain."""
        return round(self.chained_rate)

    def track_unchained_persisted_per_second(self) -> float:
        """Median over the rounds, plain INSERT."""
        return round(self.plain_rate)

    def track_chain_cost_percent(self) -> float:
        """Throughput lost to the chain: 100 x (1 - chained / unchained)."""
        return round(100 * (1 - self.chained_rate / self.plain_rate), 1)

    track_chain_cost_percent.unit = "%"  # type: ignore[attr-defined]


class VerifySpeed:
    """``verify`` of a 100,000-entry trail (one writer) on a SQLite file: rows per second."""

    entries = 100_000
    timeout = 600
    unit = "rows/s"

    def setup(self) -> None:
        self.fixture = TempService("async")
        record = self.fixture.service.record
        for _ in range(self.entries):
            record(
                EVENT_TYPE,
                actor=ACTOR,
                resource=RESOURCE,
                details=DETAILS,
                correlation_id=CORRELATION_ID,
            )
        if not self.fixture.service.flush(timeout=300):
            raise RuntimeError(f"flush failed: {self.fixture.service.stats()}")

    def teardown(self) -> None:
        self.fixture.close()

    def track_verify_rows_per_second(self) -> float:
        """Rows checked per second by a full verify (hashes, links, accounting)."""
        start = time.perf_counter()
        report = self.fixture.service.verify()
        elapsed = time.perf_counter() - start
        if report.entries < self.entries or not report.intact:
            raise RuntimeError(f"unexpected verify report: {report.to_dict()}")
        return round(report.entries / elapsed)
