"""The OpenAI Agents SDK audited through AuditTracingProcessor, with a scripted model offline."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.tracing import gen_trace_id, generation_span, set_trace_processors
from agents.usage import Usage
from audit_support import all_entries
from behave import given, then, when
from behave.runner import Context
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from cleveragents.integrations.openai_agents import AuditTracingProcessor

#: The model name the scripted model reports.
MODEL_NAME = "scripted-1"
WORKFLOW = "Support desk"

_ids = itertools.count(1)


class ScriptedModel(Model):
    """An offline model: each call answers with the next scripted turn, in a generation span."""

    def __init__(self, turns: Sequence[list[TResponseOutputItem]]) -> None:
        self._turns = list(turns)

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any | None,
    ) -> ModelResponse:
        """The next turn."""
        with generation_span(model=MODEL_NAME, disabled=tracing.is_disabled()) as span:
            span.span_data.input = [{"role": "user", "content": str(input)}]
            turn = self._turns.pop(0)
            span.span_data.output = [item.model_dump() for item in turn]
            span.span_data.usage = {"input_tokens": 10, "output_tokens": 4}
            return ModelResponse(output=turn, usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        """Not used by these scenarios."""
        raise NotImplementedError("the scenarios run without streaming")


def _call(tool: str, arguments: dict[str, Any]) -> ResponseFunctionToolCall:
    number = next(_ids)
    return ResponseFunctionToolCall(
        id=f"fc_{number}",
        call_id=f"call_{number}",
        type="function_call",
        name=tool,
        arguments=json.dumps(arguments),
    )


def _answer(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{next(_ids)}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


@function_tool
def weather(city: str, api_key: str) -> str:
    """The weather in a city, from a service that needs a key."""
    return f"sunny in {city}"


def _add_agent(context: Context, agent: Agent[Any]) -> None:
    if not hasattr(context, "agents"):
        context.agents = {}
    context.agents[agent.name] = agent
    context.agent = agent


@given("the Agents SDK traces into the audit service through an AuditTracingProcessor")
def given_processor(context: Context) -> None:
    # The only processor: the SDK's own exporter to OpenAI is off, nothing leaves the machine.
    set_trace_processors([AuditTracingProcessor(context.service)])
    context.exit_stack.callback(set_trace_processors, [])


@given(
    'an agent "{name}" with the tool "{tool}" whose scripted model calls it with {arguments}'
    ' and then answers "{text}"'
)
def given_agent_with_tool(
    context: Context, name: str, tool: str, arguments: str, text: str
) -> None:
    assert tool == "weather", "the scenarios know one tool"
    model = ScriptedModel([[_call(tool, json.loads(arguments))], [_answer(text)]])
    _add_agent(context, Agent(name=name, model=model, tools=[weather]))


@given('an agent "{name}" whose scripted model answers "{text}"')
def given_agent_answering(context: Context, name: str, text: str) -> None:
    _add_agent(context, Agent(name=name, model=ScriptedModel([[_answer(text)]])))


@given('an agent "{name}" that hands off to "{target}"')
def given_agent_handing_off(context: Context, name: str, target: str) -> None:
    model = ScriptedModel([[_call(f"transfer_to_{target.lower()}", {})]])
    _add_agent(context, Agent(name=name, model=model, handoffs=[context.agents[target]]))


@given('the agent "{name}" has an input guardrail "{guardrail}" that trips on "{word}"')
def given_guardrail(context: Context, name: str, guardrail: str, word: str) -> None:
    def check(
        wrapper: RunContextWrapper[Any], agent: Agent[Any], text: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=word in str(text))

    check.__name__ = guardrail
    context.agents[name].input_guardrails = [input_guardrail(run_in_parallel=False)(check)]


@when('I run the agent on "{text}"')
def when_run(context: Context, text: str) -> None:
    context.trace_id = gen_trace_id()
    config = RunConfig(workflow_name=WORKFLOW, trace_id=context.trace_id)
    context.run_error = None
    try:
        result = asyncio.run(Runner.run(context.agent, text, run_config=config))
    except Exception as exc:
        context.run_error = exc
    else:
        context.final_output = result.final_output
    assert context.service.flush(10.0), "the entries were not committed"
    context.run_entries = all_entries(context.service)


@then('the run answers "{text}"')
def then_answers(context: Context, text: str) -> None:
    assert context.run_error is None, repr(context.run_error)
    assert context.final_output == text, context.final_output


@then("the run fails with {error_type}")
def then_run_fails(context: Context, error_type: str) -> None:
    assert type(context.run_error).__name__ == error_type, repr(context.run_error)


@then("the trail of the run is, in order:")
def then_trail(context: Context) -> None:
    expected = [
        (row["event_type"], row["actor"] or None, row["resource"] or None) for row in context.table
    ]
    actual = [(e.event_type.value, e.actor, e.resource) for e in context.run_entries]
    assert actual == expected, "\n".join(map(str, actual))


@then("every entry of the run has the run's trace id as its correlation id")
def then_correlated(context: Context) -> None:
    assert {e.correlation_id for e in context.run_entries} == {context.trace_id}


@then('the "{event_type}" entry stores the arguments {arguments}')
def then_arguments(context: Context, event_type: str, arguments: str) -> None:
    (entry,) = [e for e in context.run_entries if e.event_type.value == event_type]
    assert entry.details["input"] == json.loads(arguments), entry.details


@then('no entry stores "{text}"')
def then_nowhere(context: Context, text: str) -> None:
    stored = json.dumps([e.details for e in context.run_entries])
    assert text not in stored, "the text is stored"


@then('the "{event_type}" entry stores the error "{message}"')
def then_error(context: Context, event_type: str, message: str) -> None:
    (entry,) = [e for e in context.run_entries if e.event_type.value == event_type]
    assert entry.details["error"]["message"] == message, entry.details
