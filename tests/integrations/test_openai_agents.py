"""AuditTracingProcessor: real Agents SDK runs (scripted model, real tools) become exact entries."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.tracing import (
    agent_span,
    custom_span,
    function_span,
    gen_trace_id,
    response_span,
    set_trace_processors,
    set_tracing_disabled,
    trace,
)
from openai.types.responses import Response, ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from structlog.testing import capture_logs

from cleveragents import AuditEventType, AuditService
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.redaction import MASK
from cleveragents.integrations.openai_agents import AuditTracingProcessor
from tests.conftest import MakeService
from tests.integrations.agents_fakes import (
    INPUT_TOKENS,
    MODEL_NAME,
    OUTPUT_TOKENS,
    ScriptedModel,
    answer,
    call,
)
from tests.support import GENEROUS_S

#: A secret the model passes to a tool; it must be stored nowhere.
SECRET = "sk-live0123456789abcdefghijklmnop"


@pytest.fixture
def audit(make_service: MakeService, database_url: str) -> AuditService:
    """An asynchronous service on a fresh database."""
    return make_service(database_url=database_url)


@pytest.fixture
def processor(
    audit: AuditService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AuditTracingProcessor]:
    """The only trace processor of the SDK (its OpenAI exporter is off), for this test."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA", raising=False)
    set_tracing_disabled(False)
    tracing_processor = AuditTracingProcessor(audit)
    set_trace_processors([tracing_processor])
    yield tracing_processor
    set_trace_processors([])


def trail(audit: AuditService, trace_id: str) -> list[AuditLogEntry]:
    """The committed entries of one trace, in order."""
    assert audit.flush(20.0)
    return audit.query(correlation_id=trace_id, limit=1000)


def shape(entries: list[AuditLogEntry]) -> list[tuple[str, str | None, str | None]]:
    """(event type, actor, resource) of each entry."""
    return [(entry.event_type.value, entry.actor, entry.resource) for entry in entries]


@function_tool
def weather(city: str, api_key: str) -> str:
    """The weather in a city, from a service that needs a key."""
    return f"sunny in {city}"


@function_tool
def broken(city: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"no station in {city}")


@input_guardrail(run_in_parallel=False)
def on_topic(
    context: RunContextWrapper[Any], agent: Agent[Any], text: Any
) -> GuardrailFunctionOutput:
    """Trips on the word 'bomb'."""
    return GuardrailFunctionOutput(
        output_info={"checked": True}, tripwire_triggered="bomb" in str(text)
    )


def support_desk() -> tuple[Agent[Any], ScriptedModel, ScriptedModel]:
    """Triage calls the weather tool with a secret, then hands off to Billing, which answers."""
    billing_model = ScriptedModel([[answer("Your invoice is paid.")]])
    billing = Agent(name="Billing", model=billing_model)
    triage_model = ScriptedModel(
        [
            [call("weather", {"city": "Paris", "api_key": SECRET})],
            [call("transfer_to_billing", {})],
        ]
    )
    triage = Agent(
        name="Triage",
        model=triage_model,
        tools=[weather],
        handoffs=[billing],
        input_guardrails=[on_topic],
    )
    return triage, triage_model, billing_model


SUPPORT_DESK_SHAPE = [
    ("chain.started", None, "Support desk"),
    ("agent.started", "Triage", "Triage"),
    ("guardrail.passed", "Triage", "on_topic"),
    ("llm.request", "Triage", MODEL_NAME),
    ("llm.response", "Triage", MODEL_NAME),
    ("tool.invoked", "Triage", "weather"),
    ("tool.completed", "Triage", "weather"),
    ("llm.request", "Triage", MODEL_NAME),
    ("llm.response", "Triage", MODEL_NAME),
    ("agent.handoff", "Triage", "Billing"),
    ("agent.completed", "Triage", "Triage"),
    ("agent.started", "Billing", "Billing"),
    ("llm.request", "Billing", MODEL_NAME),
    ("llm.response", "Billing", MODEL_NAME),
    ("agent.completed", "Billing", "Billing"),
    ("chain.completed", None, "Support desk"),
]


def test_a_run_with_a_tool_a_guardrail_and_a_handoff_is_recorded_exactly(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """Runner.run: every trace and span becomes its entry, in order, under the trace id."""
    triage, _, billing_model = support_desk()
    trace_id = gen_trace_id()
    config = RunConfig(workflow_name="Support desk", trace_id=trace_id, group_id="chat-7")

    result = asyncio.run(Runner.run(triage, "Is my invoice paid?", run_config=config))

    assert result.final_output == "Your invoice is paid."
    assert billing_model.calls == 1
    entries = trail(audit, trace_id)
    assert shape(entries) == SUPPORT_DESK_SHAPE
    assert audit.count() == len(SUPPORT_DESK_SHAPE)  # nothing outside the trace
    by_type = {entry.event_type: entry for entry in entries}
    assert entries[0].details == {"group_id": "chat-7", "metadata": None}
    invoked = by_type[AuditEventType.TOOL_INVOKED]
    assert invoked.details["input"] == {"city": "Paris", "api_key": MASK}
    completed = by_type[AuditEventType.TOOL_COMPLETED]
    assert completed.details["output"] == "sunny in Paris"
    assert completed.details["span_id"] == invoked.details["span_id"]
    handoff = by_type[AuditEventType.AGENT_HANDOFF]
    assert handoff.details["from_agent"] == "Triage"
    assert handoff.details["to_agent"] == "Billing"
    response = entries[4]
    assert response.details["usage"] == {
        "input_tokens": INPUT_TOKENS,
        "output_tokens": OUTPUT_TOKENS,
    }
    assert response.details["input"] == [{"role": "user", "content": "Is my invoice paid?"}]
    request = entries[3]
    assert request.details["model_config"] == {"temperature": 0.0}
    agent_started = entries[1]
    assert agent_started.details["parent_id"] is not None  # the run's task span
    triage_done = entries[10]
    assert triage_done.details["span_id"] == agent_started.details["span_id"]
    assert triage_done.details["handoffs"] == ["Billing"]
    assert triage_done.details["tools"] == ["weather"]
    stored = orjson.dumps([entry.details for entry in entries]).decode()
    assert SECRET not in stored
    assert audit.stats().adapter_failed == 0


def test_concurrent_runs_in_threads_keep_their_entries_apart(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """Four runs at once, one per thread: each trace holds exactly its own run's entries."""
    trace_ids = [gen_trace_id() for _ in range(4)]
    errors: list[BaseException] = []

    def one_run(trace_id: str) -> None:
        triage, _, _ = support_desk()
        config = RunConfig(workflow_name="Support desk", trace_id=trace_id)
        try:
            Runner.run_sync(triage, "Is my invoice paid?", run_config=config)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_run, args=(trace_id,)) for trace_id in trace_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GENEROUS_S)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    for trace_id in trace_ids:
        assert shape(trail(audit, trace_id)) == SUPPORT_DESK_SHAPE
    assert audit.count() == 4 * len(SUPPORT_DESK_SHAPE)


def test_run_sync_with_a_triggered_guardrail_records_the_failure(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """Runner.run_sync: the tripwire is guardrail.triggered, then agent.failed and chain.failed."""
    model = ScriptedModel([[answer("never said")]])
    agent = Agent(name="Guarded", model=model, input_guardrails=[on_topic])
    trace_id = gen_trace_id()

    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(agent, "how to build a bomb", run_config=RunConfig(trace_id=trace_id))

    assert model.calls == 0
    entries = trail(audit, trace_id)
    assert shape(entries) == [
        ("chain.started", None, "Agent workflow"),
        ("agent.started", "Guarded", "Guarded"),
        ("guardrail.triggered", "Guarded", "on_topic"),
        ("agent.failed", "Guarded", "Guarded"),
        ("chain.failed", None, "Agent workflow"),
    ]
    error = {"message": "Guardrail tripwire triggered", "data": {"guardrail": "on_topic"}}
    assert entries[3].details["error"] == error
    assert entries[4].details == {"error": error}


def test_a_failing_tool_is_tool_failed_and_the_run_goes_on(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """The SDK hands a tool's error to the model: tool.failed, then the agent completes."""
    model = ScriptedModel([[call("broken", {"city": "Oslo"})], [answer("No data for Oslo.")]])
    agent = Agent(name="Forecaster", model=model, tools=[broken])
    trace_id = gen_trace_id()

    result = Runner.run_sync(agent, "Weather in Oslo?", run_config=RunConfig(trace_id=trace_id))

    assert result.final_output == "No data for Oslo."
    entries = trail(audit, trace_id)
    assert [entry.event_type.value for entry in entries] == [
        "chain.started",
        "agent.started",
        "llm.request",
        "llm.response",
        "tool.invoked",
        "tool.failed",
        "llm.request",
        "llm.response",
        "agent.completed",
        "chain.completed",
    ]
    failed = entries[5]
    assert failed.resource == "broken"
    assert failed.details["error"]["message"] == "Error running tool (non-fatal)"
    assert failed.details["error"]["data"]["tool_name"] == "broken"
    assert failed.details["span_id"] == entries[4].details["span_id"]


def test_a_failing_model_is_llm_failed_agent_failed_and_chain_failed(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """An exception from the model: llm.failed with its error, and the run's failure."""
    model = ScriptedModel([ConnectionError("the model endpoint is down")])
    agent = Agent(name="Solo", model=model)
    trace_id = gen_trace_id()

    with pytest.raises(ConnectionError):
        Runner.run_sync(agent, "hello", run_config=RunConfig(trace_id=trace_id))

    entries = trail(audit, trace_id)
    assert shape(entries) == [
        ("chain.started", None, "Agent workflow"),
        ("agent.started", "Solo", "Solo"),
        ("llm.request", "Solo", MODEL_NAME),
        ("llm.failed", "Solo", MODEL_NAME),
        ("agent.failed", "Solo", "Solo"),
        ("chain.failed", None, "Agent workflow"),
    ]
    assert entries[3].details["error"] == {
        "message": "Error getting response",
        "data": {"error": "the model endpoint is down"},
    }


def test_a_streamed_run_is_recorded_like_a_plain_one(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """Runner.run_streamed through the model's stream_response gives the same entries."""
    triage, _, _ = support_desk()
    trace_id = gen_trace_id()
    config = RunConfig(workflow_name="Support desk", trace_id=trace_id)

    async def run() -> Any:
        streamed = Runner.run_streamed(triage, "Is my invoice paid?", run_config=config)
        async for _ in streamed.stream_events():
            pass
        return streamed.final_output

    assert asyncio.run(run()) == "Your invoice is paid."
    assert shape(trail(audit, trace_id)) == SUPPORT_DESK_SHAPE


def test_custom_spans_are_chains_of_the_trace(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """A user's custom_span is chain.started / chain.completed (or chain.failed) with its data."""
    with trace("Nightly report") as report:
        with custom_span("fetch rows", {"table": "orders"}) as fetch:
            fetch.span_data.data["rows"] = 3
        with custom_span("render", {}) as render:
            render.set_error({"message": "template missing", "data": None})

    entries = trail(audit, report.trace_id)
    assert shape(entries) == [
        ("chain.started", None, "Nightly report"),
        ("chain.started", None, "fetch rows"),
        ("chain.completed", None, "fetch rows"),
        ("chain.started", None, "render"),
        ("chain.failed", None, "render"),
        ("chain.completed", None, "Nightly report"),
    ]
    assert entries[2].details["data"] == {"table": "orders", "rows": 3}
    assert entries[2].details["parent_id"] is None
    assert entries[4].details["error"] == {"message": "template missing", "data": None}


def test_a_response_span_is_llm_request_and_llm_response_with_model_and_usage(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """The Responses API model's span: model, response id and token counts in llm.response."""
    response = Response(
        id="resp_42",
        created_at=0,
        model="gpt-test",
        object="response",
        output=[],
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=False,
        usage=ResponseUsage(
            input_tokens=7,
            output_tokens=3,
            total_tokens=10,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        ),
    )
    with trace("Responses") as run, response_span() as span:
        span.span_data.response = response
        span.span_data.input = "hi"

    entries = trail(audit, run.trace_id)
    assert shape(entries)[1:3] == [("llm.request", None, None), ("llm.response", None, "gpt-test")]
    details = entries[2].details
    assert details["response_id"] == "resp_42"
    assert details["input"] == "hi"
    assert details["usage"]["input_tokens"] == 7
    assert details["usage"]["output_tokens"] == 3


def test_shutdown_writes_pending_tool_calls_and_flushes_but_never_closes(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """shutdown() and force_flush() commit what is recorded; the service stays the caller's."""
    with trace("Interrupted") as run:
        tool = function_span("slow_tool", input='{"q": 1}')
        tool.start()
        processor.force_flush()
        assert audit.count(correlation_id=run.trace_id) == 1  # chain.started, committed
        processor.shutdown(timeout=10.0)
        assert audit.count(correlation_id=run.trace_id) == 2
        tool.finish()

    entries = trail(audit, run.trace_id)
    assert [entry.event_type.value for entry in entries] == [
        "chain.started",
        "tool.invoked",
        "tool.completed",
        "chain.completed",
    ]
    assert entries[1].details["input"] == {"q": 1}
    assert not audit.closed
    audit.record("session.ended")  # still open


def test_spans_that_never_end_are_written_and_forgotten_at_the_trace_end(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """A cancelled run's unfinished agent and tool spans: tool.invoked kept, nothing remembered."""
    with trace("Cancelled") as run:
        agent = agent_span("support")
        agent.start()
        tool = function_span("slow_tool", input='{"q": 1}')
        tool.start()
        assert processor.open_spans() == 2
    assert processor.open_spans() == 0
    entries = trail(audit, run.trace_id)
    assert [entry.event_type.value for entry in entries] == [
        "chain.started",
        "agent.started",
        "tool.invoked",
        "chain.completed",
    ]


def test_after_the_service_is_closed_the_run_goes_on_and_the_losses_are_counted(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """Recording fails (closed service): the SDK never sees it; stats().adapter_failed counts."""
    audit.close()
    model = ScriptedModel([[answer("fine")]])

    with capture_logs() as logs:
        result = Runner.run_sync(Agent(name="Solo", model=model), "hello")

    assert result.final_output == "fine"
    # chain.started, agent.started, llm.request, llm.response, agent.completed, chain.completed
    assert audit.stats().adapter_failed == 6
    failures = [log for log in logs if log["event"] == "audit_adapter_failed"]
    assert [log["event_type"] for log in failures] == [
        "chain.started",
        "agent.started",
        "llm.request",
        "llm.response",
        "agent.completed",
        "chain.completed",
    ]
    assert {log["adapter"] for log in failures} == {"openai-agents"}
    assert {log["log_level"] for log in failures} == {"error"}
    assert "AuditServiceClosedError" in failures[0]["error"]
    processor.shutdown()  # a closed service: nothing to flush, no error


def test_a_nested_span_writes_the_tool_invocation_first(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """tool.invoked comes before anything nested in the tool (an agent used as a tool)."""
    with (
        trace("Nested") as run,
        function_span("ask_expert", input='{"q": "why"}'),
        custom_span("expert thinking", {}),
    ):
        pass

    assert [entry.event_type.value for entry in trail(audit, run.trace_id)] == [
        "chain.started",
        "tool.invoked",
        "chain.started",
        "chain.completed",
        "tool.completed",
        "chain.completed",
    ]


def test_values_that_are_not_json_are_converted_not_lost(
    audit: AuditService, processor: AuditTracingProcessor
) -> None:
    """A tool output with a time and bytes is stored as ISO text and base64; odd input kept."""
    with trace("Conversions") as run, function_span("export", input="not json {") as tool:
        tool.span_data.output = {"at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "raw": b"\x00\x01"}

    entries = trail(audit, run.trace_id)
    assert entries[1].details["input"] == "not json {"
    assert entries[2].details["output"] == {"at": "2026-01-02T03:04:00+00:00", "raw": "AAE="}
    assert audit.stats().adapter_failed == 0


def test_the_processor_wants_an_audit_service() -> None:
    """Anything else is refused at construction."""
    with pytest.raises(TypeError, match="audit must be an AuditService, not str"):
        AuditTracingProcessor("sqlite:///audit.db")  # type: ignore[arg-type]


def test_without_the_sdk_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """No openai-agents installed: the ImportError says which extra to install."""
    monkeypatch.setitem(sys.modules, "agents", None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "agents.tracing", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "cleveragents.integrations.openai_agents")

    with pytest.raises(ImportError, match=r"pip install 'cleveragents-audit\[openai-agents\]'"):
        importlib.import_module("cleveragents.integrations.openai_agents")
