"""The demo: a realistic agent run's events, through the bus, into the audit trail.

It emits the same run through a :class:`ReactiveEventBus` twice, once into an
asynchronous service and once into a synchronous one, and measures how long the
emitting thread spends per event in each.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cleveragents.application.event_bus import ReactiveEventBus
from cleveragents.application.services.audit_service import AuditService
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.event_types import AuditEventType as T
from cleveragents.domain.events import DomainEvent

__all__ = ["DemoResult", "agent_run", "run_demo"]

_TOOLS = (
    ("web.search", {"query": "quarterly revenue 2026 ACME", "max_results": 5}),
    ("fs.read", {"path": "/workspace/reports/q3.csv", "bytes": 18_422}),
    ("python.exec", {"code_sha256": "9f2c1e...", "timeout_s": 30}),
    ("shell.run", {"argv": ["rm", "-rf", "/workspace/tmp"], "cwd": "/workspace"}),
)


def agent_run(run: int, correlation_id: str) -> Iterator[DomainEvent]:
    """The events of one agent run: a session, an agent, LLM calls and tool calls."""
    user, agent = f"user:alice-{run % 7}", f"agent:analyst-{run % 3}"
    session = f"session:{correlation_id[:8]}"

    def event(kind: T, actor: str, resource: str, **payload: object) -> DomainEvent:
        return DomainEvent(kind.value, payload, actor, resource, correlation_id)

    yield event(T.SESSION_STARTED, user, session, client="cli", ip="203.0.113.7")
    yield event(T.AGENT_STARTED, agent, session, goal="summarise Q3 revenue", max_steps=8)
    yield event(T.CONFIG_CHANGED, user, f"{agent}/temperature", old=0.7, new=0.2)
    for step, (tool, args) in enumerate(_TOOLS):
        yield event(
            T.LLM_REQUEST, agent, "model:gpt-5-mini", step=step, prompt_tokens=812 + 97 * step
        )
        yield event(
            T.LLM_RESPONSE,
            agent,
            "model:gpt-5-mini",
            step=step,
            completion_tokens=143,
            latency_ms=640 + 13 * step,
            finish_reason="tool_calls",
        )
        if tool == "shell.run":
            yield event(T.PERMISSION_DENIED, agent, f"tool:{tool}", rule="no-destructive-shell")
            continue
        yield event(T.PERMISSION_GRANTED, agent, f"tool:{tool}", rule="default-allow")
        yield event(T.TOOL_INVOKED, agent, f"tool:{tool}", args=args)
        if tool == "python.exec" and run % 5 == 4:
            yield event(T.TOOL_FAILED, agent, f"tool:{tool}", error="TimeoutError", exit_code=124)
        else:
            yield event(T.TOOL_COMPLETED, agent, f"tool:{tool}", duration_ms=35 + 11 * step)
    yield event(T.AGENT_COMPLETED, agent, session, steps=len(_TOOLS), total_tokens=5_731)
    yield event(T.SESSION_ENDED, user, session, duration_s=42.5)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What one mode of the demo measured."""

    mode: str
    events: int
    emit_us: list[float]
    persist_s: float
    last_run: list[AuditLogEntry]

    @property
    def p50_us(self) -> float:
        """Median time the emitting thread spent per event."""
        return statistics.median(self.emit_us)

    @property
    def p99_us(self) -> float:
        """99th percentile of the time per event."""
        ordered = sorted(self.emit_us)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_demo(
    settings: Settings, *, runs: int, is_async: bool, progress: Callable[[int], None]
) -> DemoResult:
    """Emit ``runs`` agent runs through a bus into a service; measure the emitting thread."""
    service = AuditService(settings.model_copy(update={"audit_async": is_async}))
    try:
        bus = ReactiveEventBus()
        detach = service.attach(bus)
        emit_ns: list[int] = []
        correlation_id = ""
        started = time.perf_counter()
        for run in range(runs):
            correlation_id = str(uuid.uuid4())
            for event in agent_run(run, correlation_id):
                before = time.perf_counter_ns()
                bus.emit(event)
                emit_ns.append(time.perf_counter_ns() - before)
            progress(1)
        service.flush()
        persist_s = time.perf_counter() - started
        detach()
        last_run = service.query(correlation_id=correlation_id, limit=100)
    finally:
        service.close()
    return DemoResult(
        mode="async" if is_async else "sync",
        events=len(emit_ns),
        emit_us=[ns / 1000 for ns in emit_ns],
        persist_s=persist_s,
        last_run=last_run,
    )
