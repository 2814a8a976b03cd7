"""An offline stand-in for an LLM behind the OpenAI Agents SDK: scripted turns, real spans.

:class:`ScriptedModel` is a real ``agents.models.interface.Model``: each call answers
with the next scripted turn (tool calls, a handoff, a final message, or an
exception), inside a ``generation_span`` filled in as the SDK's own models fill it
(model and config at the start; input, output and usage at the end). Nothing goes
to the network.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import (
    ModelResponse,
    TResponseInputItem,
    TResponseOutputItem,
    TResponseStreamEvent,
)
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.tracing import SpanError, generation_span
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

__all__ = ["INPUT_TOKENS", "MODEL_NAME", "OUTPUT_TOKENS", "ScriptedModel", "answer", "call"]

MODEL_NAME = "scripted-1"
#: The token counts every scripted answer reports.
INPUT_TOKENS = 12
OUTPUT_TOKENS = 5

_call_ids = itertools.count(1)

Turn = list[TResponseOutputItem] | Exception


def call(tool: str, arguments: dict[str, Any]) -> ResponseFunctionToolCall:
    """The model asks for ``tool`` with ``arguments`` (a handoff is a ``transfer_to_*`` tool)."""
    number = next(_call_ids)
    return ResponseFunctionToolCall(
        id=f"fc_{number}",
        call_id=f"call_{number}",
        type="function_call",
        name=tool,
        arguments=orjson.dumps(arguments).decode(),
    )


def answer(text: str) -> ResponseOutputMessage:
    """The model's final message."""
    return ResponseOutputMessage(
        id=f"msg_{next(_call_ids)}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


class ScriptedModel(Model):
    """Answers each call with the next of ``turns``; an exception turn is raised (an API error)."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self._turns = list(turns)
        self.calls = 0

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
        """The next scripted turn, traced as a generation."""
        with generation_span(
            model=MODEL_NAME, model_config={"temperature": 0.0}, disabled=tracing.is_disabled()
        ) as span:
            span.span_data.input = _as_messages(input)
            turn = self._turns.pop(0) if self._turns else AssertionError("model called too often")
            self.calls += 1
            if isinstance(turn, Exception):
                span.set_error(
                    SpanError(message="Error getting response", data={"error": str(turn)})
                )
                raise turn
            span.span_data.output = [item.model_dump() for item in turn]
            span.span_data.usage = {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}
            return ModelResponse(
                output=turn,
                usage=Usage(
                    requests=1,
                    input_tokens=INPUT_TOKENS,
                    output_tokens=OUTPUT_TOKENS,
                    total_tokens=INPUT_TOKENS + OUTPUT_TOKENS,
                ),
                response_id=None,
            )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        """The next scripted turn as one ``response.completed`` event, traced as a generation."""
        response = await self.get_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )
        yield ResponseCompletedEvent(
            type="response.completed",
            sequence_number=0,
            response=Response(
                id="resp_scripted",
                created_at=0,
                model=MODEL_NAME,
                object="response",
                output=response.output,
                tool_choice="auto",
                tools=[],
                top_p=None,
                parallel_tool_calls=False,
                usage=ResponseUsage(
                    input_tokens=INPUT_TOKENS,
                    output_tokens=OUTPUT_TOKENS,
                    total_tokens=INPUT_TOKENS + OUTPUT_TOKENS,
                    input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                    output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
                ),
            ),
        )


def _as_messages(value: str | list[TResponseInputItem]) -> list[Any]:
    return [{"role": "user", "content": value}] if isinstance(value, str) else list(value)
