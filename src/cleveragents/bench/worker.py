"""One contender of the benchmark, in a process of its own; prints its figures as JSON.

``python -m cleveragents.bench.worker CONTENDER DATABASE_URL ENTRIES``, where
CONTENDER is ``limit``, ``seed``, ``async`` or ``sync``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cleveragents.domain.details import encode_details
from cleveragents.domain.event_types import AuditEventType
from cleveragents.domain.ids import new_event_id

__all__ = ["DETAILS", "PACED_RATE_PER_S", "run"]

#: The entry every contender records: a tool call with a ~200-byte details object.
DETAILS: dict[str, Any] = {
    "tool": "web.search",
    "args": {"query": "quarterly revenue 2026 ACME corp", "max_results": 5},
    "step": 3,
    "latency_ms": 640.5,
    "ok": True,
    "model": "gpt-5-mini",
    "prompt_tokens": 812,
    "tags": ["finance", "q3"],
}
PACED_RATE_PER_S = 5_000
_KIND = AuditEventType.TOOL_INVOKED
_ACTOR, _RESOURCE, _CORRELATION = "agent:analyst-1", "tool:web.search", "run-42"

Record = Callable[[], object]


def _latencies(record: Record, count: int, *, rate_per_s: float | None) -> list[int]:
    """Time ``count`` calls of ``record`` (ns each), flat out or at ``rate_per_s``."""
    clock = time.perf_counter_ns
    timings = [0] * count
    started = clock()
    interval_ns = 0 if rate_per_s is None else int(1e9 / rate_per_s)
    for i in range(count):
        if interval_ns:
            due = started + i * interval_ns
            while clock() < due:
                pass
        before = clock()
        record()
        timings[i] = clock() - before
    return timings


def _percentiles(timings_ns: list[int]) -> dict[str, float]:
    ordered = sorted(timings_ns)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return ordered[min(last, int(q * len(ordered)))] / 1000

    return {
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": ordered[-1] / 1000,
    }


def _run_limit(url: str, entries: int) -> dict[str, Any]:
    """Raw DBAPI bulk insert of the same rows: sqlite3 executemany, or psycopg COPY."""
    from cleveragents.infrastructure.persistence.bulk import sqlite_time_text
    from cleveragents.infrastructure.persistence.database import open_database

    database = open_database(url)  # creates the table, with its indexes
    details = encode_details(DETAILS)
    rows = [
        (new_event_id(), _KIND.value, _ACTOR, _RESOURCE, details, _CORRELATION, datetime.now(UTC))
        for _ in range(entries)
    ]
    raw = database.engine.raw_connection()
    started = time.perf_counter()
    cursor = raw.cursor()
    columns = "event_id, event_type, actor, resource, details, correlation_id, created_at"
    for start in range(0, entries, 1000):
        chunk = rows[start : start + 1000]
        if database.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY audit_log ({columns}, details_json) FROM STDIN") as copy:
                for row in chunk:
                    copy.write_row((*row, details))
        else:
            cursor.executemany(
                f"INSERT INTO audit_log ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (event_id, kind, actor, resource, text, correlation, sqlite_time_text(created))
                    for event_id, kind, actor, resource, text, correlation, created in chunk
                ],
            )
        raw.commit()
    elapsed = time.perf_counter() - started
    raw.close()
    database.dispose()
    return {"persisted_per_s": entries / elapsed}


def _run_service(kind: str, url: str, entries: int) -> dict[str, Any]:
    from cleveragents.application.services.audit_service import AuditService
    from cleveragents.bench.seed import SeedAuditService
    from cleveragents.config.settings import Settings

    def open_service() -> Any:
        if kind == "seed":
            return SeedAuditService(url)
        return AuditService(Settings(database_url=url, audit_async=kind == "async"), session=None)

    def make_record(service: Any) -> Record:
        def record() -> object:
            return service.record(
                _KIND,
                actor=_ACTOR,
                resource=_RESOURCE,
                details=DETAILS,
                correlation_id=_CORRELATION,
            )

        return record

    service = open_service()
    try:
        record = make_record(service)
        started = time.perf_counter()
        flat = _latencies(record, entries, rate_per_s=None)
        service.flush()
        persisted_per_s = entries / (time.perf_counter() - started)
    finally:
        service.close()
    service = open_service()  # the seed's flush stops its writer: a fresh one for the paced run
    try:
        paced = _latencies(
            make_record(service), min(entries, PACED_RATE_PER_S), rate_per_s=PACED_RATE_PER_S
        )
        service.flush()
    finally:
        service.close()
    return {
        "persisted_per_s": persisted_per_s,
        "flat": _percentiles(flat),
        "paced": _percentiles(paced),
    }


def run(contender: str, url: str, entries: int) -> dict[str, Any]:
    """Measure one contender; add its peak RSS."""
    if contender == "limit":
        figures = _run_limit(url, entries)
    elif contender in ("seed", "async", "sync"):
        figures = _run_service(contender, url, entries)
    else:
        raise ValueError(f"unknown contender {contender!r}")
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


if __name__ == "__main__":
    name, database_url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.stdout.write(json.dumps(run(name, database_url, count)) + "\n")
