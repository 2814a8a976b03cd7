"""AuditSpanProcessor against the real OpenTelemetry SDK, on real SQLite and PostgreSQL.

Each test builds a ``TracerProvider`` with the audit processor and an in-memory
exporter behind a ``SimpleSpanProcessor``: the exported spans are the reference the
recorded entries are checked against (trace ids, span ids, parents).
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer

from cleveragents import AuditLogEntry, AuditService
from cleveragents.domain.redaction import MASK
from cleveragents.domain.verification import VerifyStatus
from cleveragents.integrations.otel import AuditSpanProcessor
from tests.conftest import MakeService

FLUSH_S = 20.0


class Traced:
    """A tracer provider wired to an audit service and an in-memory exporter."""

    def __init__(self, audit: AuditService, processor: AuditSpanProcessor, **provider: Any):
        self.audit = audit
        self.processor = processor
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(shutdown_on_exit=False, **provider)
        self.provider.add_span_processor(processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = self.provider.get_tracer("tests.otel")

    def entries(self) -> list[AuditLogEntry]:
        """Every entry committed so far, in the order recorded."""
        assert self.audit.flush(FLUSH_S)
        return self.audit.query(limit=1000)

    def span(self, name: str) -> ReadableSpan:
        """The one exported span called ``name``."""
        (found,) = [s for s in self.exporter.get_finished_spans() if s.name == name]
        return found


@pytest.fixture
def traced(make_service: MakeService, database_url: str) -> Iterator[Callable[..., Traced]]:
    """Make providers with an AuditSpanProcessor on a fresh database; shut down afterwards."""
    made: list[Traced] = []

    def make(*, processor: dict[str, Any] | None = None, **provider: Any) -> Traced:
        audit = make_service(database_url=database_url)
        result = Traced(audit, AuditSpanProcessor(audit, **(processor or {})), **provider)
        made.append(result)
        return result

    yield make
    for result in made:
        result.provider.shutdown()


def hex_ids(span: ReadableSpan) -> dict[str, str]:
    """The ``details["otel"]`` an entry of ``span`` must carry."""
    assert span.context is not None
    ids = {"trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}"}
    if span.parent is not None:
        ids["parent_span_id"] = f"{span.parent.span_id:016x}"
    return ids


def summary(entries: list[AuditLogEntry]) -> list[tuple[str, str | None, str | None, str]]:
    """(event type, resource, correlation id, span name) of each entry."""
    return [(e.event_type.value, e.resource, e.correlation_id, e.details["span"]) for e in entries]


def agent_run(tracer: Tracer) -> None:
    """An agent run as the GenAI semantic conventions describe it (pydantic-ai's shape)."""
    with tracer.start_as_current_span(
        "invoke_agent weather",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.request.temperature": 0.2,
            },
        ) as chat:
            chat.set_attributes(
                {
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.response.finish_reasons": ("tool_call",),
                    "gen_ai.usage.input_tokens": 112,
                    "gen_ai.usage.output_tokens": 18,
                }
            )
        with tracer.start_as_current_span(
            "execute_tool get_weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.arguments": json.dumps(
                    {"city": "Paris", "api_key": "wx-12345-secret"}
                ),
            },
        ) as tool:
            tool.set_attribute("gen_ai.tool.call.result", json.dumps({"celsius": 21}))
        try:
            with tracer.start_as_current_span(
                "chat gpt-4o retry",
                attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
            ):
                raise ConnectionError("rate limited")
        except ConnectionError:
            pass


def test_a_genai_agent_run_becomes_exactly_these_entries(traced: Callable[..., Traced]) -> None:
    """invoke_agent, chat, execute_tool and a failed chat: the exact entries, ids and order."""
    run = traced()
    agent_run(run.tracer)
    entries = run.entries()
    agent, chat, tool, retry = (
        run.span(name)
        for name in (
            "invoke_agent weather",
            "chat gpt-4o",
            "execute_tool get_weather",
            "chat gpt-4o retry",
        )
    )
    trace_id = hex_ids(agent)["trace_id"]
    assert summary(entries) == [
        ("agent.started", "weather", trace_id, "invoke_agent weather"),
        ("llm.request", "gpt-4o", trace_id, "chat gpt-4o"),
        ("llm.response", "gpt-4o", trace_id, "chat gpt-4o"),
        ("tool.invoked", "get_weather", trace_id, "execute_tool get_weather"),
        ("tool.completed", "get_weather", trace_id, "execute_tool get_weather"),
        ("llm.request", "gpt-4o", trace_id, "chat gpt-4o retry"),
        ("llm.failed", "gpt-4o", trace_id, "chat gpt-4o retry"),
        ("agent.completed", "weather", trace_id, "invoke_agent weather"),
    ]
    spans = [agent, chat, chat, tool, tool, retry, retry, agent]
    assert [e.details["otel"] for e in entries] == [hex_ids(s) for s in spans]
    assert "parent_span_id" not in entries[0].details["otel"]
    assert {e.details["otel"]["parent_span_id"] for e in entries[1:7]} == {
        hex_ids(agent)["span_id"]
    }

    response = entries[2].details
    assert response["model"] == "gpt-4o"
    assert response["response_model"] == "gpt-4o-2024-08-06"
    assert response["provider"] == "openai"
    assert response["usage"] == {"input_tokens": 112, "output_tokens": 18}
    assert response["status"] == "unset"
    assert response["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert response["duration_ms"] >= 0

    for invoked_or_completed in entries[3:5]:
        arguments = invoked_or_completed.details["attributes"]["gen_ai.tool.call.arguments"]
        assert arguments == {"city": "Paris", "api_key": MASK}
        assert invoked_or_completed.details["tool"] == "get_weather"
        assert invoked_or_completed.details["tool_call_id"] == "call_1"
    assert entries[4].details["attributes"]["gen_ai.tool.call.result"] == {"celsius": 21}
    assert "wx-12345-secret" not in json.dumps([e.details for e in entries])

    failed = entries[6].details
    assert failed["status"] == "error"
    assert failed["error"] == {
        "type": "ConnectionError",
        "message": "rate limited",
        "description": "ConnectionError: rate limited",
    }
    assert [event["name"] for event in failed["events"]] == ["exception"]
    assert run.audit.verify().status is VerifyStatus.INTACT
    assert run.audit.stats().adapter_failed == 0


def test_a_failure_that_escapes_fails_the_tool_and_the_agent(
    traced: Callable[..., Traced],
) -> None:
    """An exception out of a tool span and its agent span: tool.failed, then agent.failed."""
    run = traced()

    def ops_run() -> None:
        with (
            run.tracer.start_as_current_span(
                "invoke_agent ops", attributes={"gen_ai.operation.name": "invoke_agent"}
            ),
            run.tracer.start_as_current_span(
                "execute_tool rm",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "rm"},
            ),
        ):
            raise PermissionError("denied by policy")

    with pytest.raises(PermissionError):
        ops_run()
    entries = run.entries()
    trace_id = hex_ids(run.span("invoke_agent ops"))["trace_id"]
    assert summary(entries) == [
        ("agent.started", "invoke_agent ops", trace_id, "invoke_agent ops"),
        ("tool.invoked", "rm", trace_id, "execute_tool rm"),
        ("tool.failed", "rm", trace_id, "execute_tool rm"),
        ("agent.failed", "invoke_agent ops", trace_id, "invoke_agent ops"),
    ]
    assert entries[2].details["error"]["message"] == "denied by policy"
    assert entries[3].details["error"]["type"] == "PermissionError"


def test_openinference_span_kinds(traced: Callable[..., Traced]) -> None:
    """AGENT, CHAIN, RETRIEVER, LLM, TOOL, EMBEDDING and GUARDRAIL spans of OpenInference."""
    run = traced()
    tracer = run.tracer

    def kind(name: str, value: str, **attributes: Any) -> Any:
        return tracer.start_as_current_span(
            name, attributes={"openinference.span.kind": value, **attributes}
        )

    with kind("agent", "AGENT", **{"agent.name": "researcher"}):
        with kind("rag", "CHAIN"):
            with kind("search", "RETRIEVER"):
                pass
            with kind("embed", "EMBEDDING", **{"embedding.model_name": "text-embedding-3"}):
                pass
        with kind(
            "ChatOpenAI",
            "LLM",
            **{
                "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai",
                "llm.token_count.prompt": 40,
                "llm.token_count.completion": 9,
                "llm.token_count.total": 49,
            },
        ):
            pass
        with kind("calculator", "tool", **{"tool.name": "calculator"}):  # case differs
            pass
        with kind("moderation", "GUARDRAIL"):
            pass
        with kind("jailbreak", "GUARDRAIL") as guard:
            guard.set_status(Status(StatusCode.ERROR, "jailbreak attempt"))
    entries = run.entries()
    trace_id = hex_ids(run.span("agent"))["trace_id"]
    assert [(e.event_type.value, e.resource) for e in entries] == [
        ("agent.started", "researcher"),
        ("chain.started", "rag"),
        ("retriever.started", "search"),
        ("retriever.completed", "search"),
        ("llm.request", "text-embedding-3"),
        ("llm.response", "text-embedding-3"),
        ("chain.completed", "rag"),
        ("llm.request", "gpt-4o-mini"),
        ("llm.response", "gpt-4o-mini"),
        ("tool.invoked", "calculator"),
        ("tool.completed", "calculator"),
        ("guardrail.passed", "moderation"),
        ("guardrail.triggered", "jailbreak"),
        ("agent.completed", "researcher"),
    ]
    assert {e.correlation_id for e in entries} == {trace_id}
    llm = entries[8].details
    assert llm["usage"] == {"input_tokens": 40, "output_tokens": 9, "total_tokens": 49}
    assert llm["attributes"]["llm.token_count.prompt"] == MASK  # a "token" key to redaction
    assert llm["provider"] == "openai"
    assert entries[12].details["error"] == {"description": "jailbreak attempt"}
    assert entries[2].details["otel"]["parent_span_id"] == hex_ids(run.span("rag"))["span_id"]


def test_traceloop_span_kinds(traced: Callable[..., Traced]) -> None:
    """OpenLLMetry's workflow, task, agent and tool spans, and its LLM spans."""
    run = traced()
    tracer = run.tracer

    def kind(name: str, value: str) -> Any:
        return tracer.start_as_current_span(
            name, attributes={"traceloop.span.kind": value, "traceloop.entity.name": name}
        )

    with kind("support_flow", "workflow"), kind("triage", "agent"):
        with (
            kind("classify", "task"),
            tracer.start_as_current_span(
                "openai.chat",
                attributes={"llm.request.type": "chat", "gen_ai.request.model": "gpt-4o"},
            ),
        ):
            pass
        with kind("lookup_order", "tool"):
            pass
    assert [(e.event_type.value, e.resource) for e in run.entries()] == [
        ("chain.started", "support_flow"),
        ("agent.started", "triage"),
        ("chain.started", "classify"),
        ("llm.request", "gpt-4o"),
        ("llm.response", "gpt-4o"),
        ("chain.completed", "classify"),
        ("tool.invoked", "lookup_order"),
        ("tool.completed", "lookup_order"),
        ("agent.completed", "triage"),
        ("chain.completed", "support_flow"),
    ]


def test_older_genai_spans_without_an_operation_name(traced: Callable[..., Traced]) -> None:
    """gen_ai.tool.name, then gen_ai.agent.name, then gen_ai.request.model/system decide."""
    run = traced()
    for name, attributes in [
        ("running tool", {"gen_ai.tool.name": "lookup", "gen_ai.agent.name": "a"}),
        ("agent run", {"gen_ai.agent.name": "planner", "gen_ai.request.model": "m1"}),
        ("model request", {"gen_ai.request.model": "m2"}),
        ("completion", {"gen_ai.system": "anthropic"}),
    ]:
        with run.tracer.start_as_current_span(name, attributes=attributes):
            pass
    assert [(e.event_type.value, e.resource) for e in run.entries()] == [
        ("tool.invoked", "lookup"),
        ("tool.completed", "lookup"),
        ("agent.started", "planner"),
        ("agent.completed", "planner"),
        ("llm.request", "m2"),
        ("llm.response", "m2"),
        ("llm.request", "completion"),
        ("llm.response", "completion"),
    ]


@pytest.mark.parametrize(
    ("all_spans", "expected"),
    [
        (False, [("tool.invoked", "search"), ("tool.completed", "search")]),
        (
            True,
            [
                ("chain.started", "GET /search"),
                ("tool.invoked", "search"),
                ("tool.completed", "search"),
                ("chain.completed", "GET /search"),
            ],
        ),
    ],
)
def test_other_spans_are_ignored_unless_all_spans(
    traced: Callable[..., Traced], all_spans: bool, expected: list[tuple[str, str]]
) -> None:
    """An HTTP span is no AI span: ignored by default, a chain step with all_spans=True."""
    run = traced(processor={"all_spans": all_spans})
    with (
        run.tracer.start_as_current_span("GET /search", attributes={"http.method": "GET"}),
        run.tracer.start_as_current_span(
            "execute_tool search",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        ),
    ):
        pass
    assert [(e.event_type.value, e.resource) for e in run.entries()] == expected


def test_spans_on_the_audit_writer_thread_are_never_recorded(
    traced: Callable[..., Traced],
) -> None:
    """With all_spans, a database span ended on the writer's thread is ignored (no feedback)."""
    run = traced(processor={"all_spans": True})

    def insert_span() -> None:  # what an instrumented driver does inside the writer
        with run.tracer.start_as_current_span("INSERT audit_log"):
            pass

    writer_like = threading.Thread(target=insert_span, name="cleveragents-audit-writer")
    writer_like.start()
    writer_like.join()
    insert_span()
    assert [e.event_type.value for e in run.entries()] == ["chain.started", "chain.completed"]
    assert len(run.exporter.get_finished_spans()) == 2


def test_a_synchronous_services_own_database_spans_are_never_recorded(
    make_service: MakeService, database_url: str
) -> None:
    """all_spans with a synchronous service and an instrumented driver: no re-entry, no hang."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    audit = make_service(database_url=database_url, audit_async=False)
    run = Traced(audit, AuditSpanProcessor(audit, all_spans=True))

    def traced_statement(*_: Any) -> None:  # what an instrumented driver does per statement
        with run.tracer.start_as_current_span("SQL"):
            pass

    event.listen(Engine, "before_cursor_execute", traced_statement)
    try:
        recording = threading.Thread(
            target=audit.record,
            args=("tool.invoked",),
            kwargs={"details": {"n": 1}},
            daemon=True,  # were it to deadlock, it must not hold the test run's exit
        )
        recording.start()
        recording.join(FLUSH_S)
        assert not recording.is_alive(), "record() re-entered itself through its own spans"
    finally:
        event.remove(Engine, "before_cursor_execute", traced_statement)
        run.provider.shutdown()
    assert [e.event_type.value for e in audit.query()] == ["tool.invoked"]


def test_the_actor_is_the_service_name_or_the_one_given(traced: Callable[..., Traced]) -> None:
    """The resource's service.name is the actor; actor= wins; the SDK's default names none."""
    named = traced(resource=Resource.create({"service.name": "support-bot"}))
    given = traced(processor={"actor": "agent:ops"})
    unnamed = traced()
    for run in (named, given, unnamed):
        with run.tracer.start_as_current_span(
            "chat m", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
        ):
            pass
    actors = [
        [
            e.actor
            for e in run.entries()
            if e.correlation_id == hex_ids(run.span("chat m"))["trace_id"]
        ]
        for run in (named, given, unnamed)
    ]
    assert actors == [["support-bot", "support-bot"], ["agent:ops", "agent:ops"], [None, None]]


def test_values_the_service_refuses_are_made_to_fit(traced: Callable[..., Traced]) -> None:
    """A NaN attribute and a lone surrogate are converted, not lost."""
    run = traced()
    with run.tracer.start_as_current_span(
        "chat m",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.request.temperature": float("nan"),
            "gen_ai.prompt": "bad \ud800 text",
        },
    ):
        pass
    entries = run.entries()
    assert [e.event_type.value for e in entries] == ["llm.request", "llm.response"]
    for entry in entries:
        assert entry.details["attributes"]["gen_ai.request.temperature"] == "nan"
        assert entry.details["attributes"]["gen_ai.prompt"] == "bad \ufffd text"
    assert run.audit.stats().adapter_failed == 0


def test_a_span_that_cannot_be_recorded_is_counted_never_raised(
    traced: Callable[..., Traced],
) -> None:
    """With the service closed, spans still end and export; each lost entry is counted."""
    run = traced()
    run.audit.close()
    with run.tracer.start_as_current_span(
        "execute_tool t", attributes={"gen_ai.operation.name": "execute_tool"}
    ):
        pass
    assert [s.name for s in run.exporter.get_finished_spans()] == ["execute_tool t"]
    assert run.audit.stats().adapter_failed == 2


def test_force_flush_and_shutdown(traced: Callable[..., Traced]) -> None:
    """force_flush commits what was recorded; shutdown flushes, leaves the service open."""
    run = traced()
    with run.tracer.start_as_current_span(
        "t", attributes={"gen_ai.operation.name": "execute_tool"}
    ):
        pass
    assert run.provider.force_flush(timeout_millis=20_000)
    assert run.audit.count() == 2
    run.provider.shutdown()
    run.processor.on_end(run.span("t"))  # after shutdown: ignored
    run.audit.record("session.ended")
    assert [e.event_type.value for e in run.entries()] == [
        "tool.invoked",
        "tool.completed",
        "session.ended",
    ]


def test_importing_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-sdk the import fails naming pip install 'cleveragents-audit[otel]'."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    monkeypatch.delitem(sys.modules, "cleveragents.integrations.otel")
    with pytest.raises(ImportError, match=r"pip install 'cleveragents-audit\[otel\]'"):
        importlib.import_module("cleveragents.integrations.otel")
