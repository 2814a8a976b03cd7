"""An OpenTelemetry tracer provider with the audit span processor, and the spans it sees."""

from __future__ import annotations

import json

from behave import given, then, when
from behave.runner import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

from cleveragents.integrations.otel import AuditSpanProcessor


def _trace_id(span: Span) -> str:
    return f"{span.get_span_context().trace_id:032x}"


@given("a tracer provider with the audit span processor")
def given_provider(context: Context) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(AuditSpanProcessor(context.service))
    context.exit_stack.callback(provider.shutdown)
    context.tracer = provider.get_tracer("features.otel")
    context.spans = {}


@when(
    'the agent "{agent}" asks "{model}" and calls the tool "{tool}" with the arguments {arguments}'
)
def when_agent_runs(context: Context, agent: str, model: str, tool: str, arguments: str) -> None:
    tracer = context.tracer
    with tracer.start_as_current_span(
        f"invoke_agent {agent}",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent},
    ) as root:
        with tracer.start_as_current_span(
            f"chat {model}",
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
        ) as chat:
            chat.set_attribute("gen_ai.usage.input_tokens", 50)
            chat.set_attribute("gen_ai.usage.output_tokens", 12)
        with tracer.start_as_current_span(
            f"execute_tool {tool}",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.arguments": arguments,
            },
        ):
            pass
    context.root_span = root


@when('a call to "{model}" fails with "{message}"')
def when_call_fails(context: Context, model: str, message: str) -> None:
    try:
        with context.tracer.start_as_current_span(
            f"chat {model}",
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
        ) as span:
            context.root_span = span
            raise TimeoutError(message)
    except TimeoutError:
        pass


@when('I record a "{event_type}" entry inside the span "{name}"')
def when_record_inside_span(context: Context, event_type: str, name: str) -> None:
    with context.tracer.start_as_current_span(name) as span:
        context.entry = context.service.record(event_type, details={"rule": "r1"})
    context.spans[name] = span


@then("the trail holds these entries, all with the trace id as correlation id:")
def then_trail_holds(context: Context) -> None:
    entries = context.service.query()
    expected = [(row["event_type"], row["resource"]) for row in context.table]
    assert [(e.event_type.value, e.resource) for e in entries] == expected, entries
    trace_id = _trace_id(context.root_span)
    assert [e.correlation_id for e in entries] == [trace_id] * len(entries), entries
    context.entries = entries


@then('no stored entry contains "{text}"')
def then_no_entry_contains(context: Context, text: str) -> None:
    stored = json.dumps([e.details for e in context.service.query()])
    assert text not in stored, stored
    assert "[REDACTED]" in stored, stored


@then('the "{event_type}" entry\'s error message is "{message}"')
def then_error_message(context: Context, event_type: str, message: str) -> None:
    (entry,) = [e for e in context.entries if e.event_type.value == event_type]
    assert entry.details["error"]["message"] == message, entry.details


@then('the stored entry\'s details hold the trace id and span id of "{name}"')
def then_details_hold_ids(context: Context, name: str) -> None:
    span = context.spans[name]
    stored = context.service.get(context.entry.event_id)
    assert stored is not None
    assert stored.details == {
        "rule": "r1",
        "otel": {
            "trace_id": _trace_id(span),
            "span_id": f"{span.get_span_context().span_id:016x}",
        },
    }, stored.details
