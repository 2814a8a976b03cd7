"""What LangChain's callbacks carry, as an entry's details: messages, documents, responses.

Compact and readable: a message is its type and content (and its tool calls), a
document its text and metadata; ``to_jsonable`` does the rest when recording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult

from cleveragents.integrations._langchain_runs import Run

__all__ = [
    "error_details",
    "handoff_details",
    "message_details",
    "model_requested",
    "response_details",
    "unpack",
]

# Nested containers the LangChain values are unpacked to (to_jsonable goes deeper).
_MAX_UNPACK_DEPTH: Final = 8
# A streamed message's type, as the type of the message it is a piece of.
_CHUNK_TYPES: Final = {
    "AIMessageChunk": "ai",
    "HumanMessageChunk": "human",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "ChatMessageChunk": "chat",
    "FunctionMessageChunk": "function",
}
# Values unpack returns as they are, without looking further.
_LEAVES: Final = frozenset({str, int, float, bool, type(None)})


def error_details(error: BaseException) -> dict[str, str]:
    """An error as its type's name and its message."""
    return {"type": type(error).__name__, "message": str(error)}


def handoff_details(error: BaseException) -> dict[str, Any] | None:
    """Where a LangGraph ``ParentCommand`` sends control (None for any other error).

    LangGraph raises it through the callbacks of every run between a node that
    returns ``Command(graph=Command.PARENT, goto=...)`` (a hand-off to another
    agent of the parent graph) and that graph: it is not a failure.
    """
    if not any(kind.__name__ == "ParentCommand" for kind in type(error).__mro__):
        return None
    command = error.args[0] if error.args else None
    return {
        "goto": unpack(getattr(command, "goto", None)),
        "graph": getattr(command, "graph", None),
        "update": unpack(getattr(command, "update", None)),
    }


def unpack(value: Any, depth: int = 0) -> Any:
    """LangChain's values in a compact, readable form (to_jsonable does the rest)."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict or kind is list or kind is tuple:
        if depth >= _MAX_UNPACK_DEPTH:
            return value
        if kind is dict:
            return {key: unpack(item, depth + 1) for key, item in value.items()}
        return [unpack(item, depth + 1) for item in value]
    if isinstance(value, BaseMessage):
        return message_details(value)
    if isinstance(value, Document):
        document: dict[str, Any] = {"page_content": value.page_content}
        if value.metadata:
            document["metadata"] = value.metadata
        if value.id is not None:
            document["id"] = value.id
        return document
    return value


def message_details(message: BaseMessage) -> dict[str, Any]:
    """A message as its type, content and what identifies its tool calls."""
    kind = message.type
    out: dict[str, Any] = {"type": _CHUNK_TYPES.get(kind, kind), "content": message.content}
    if message.name:
        out["name"] = message.name
    if isinstance(message, AIMessage):
        if message.tool_calls:
            out["tool_calls"] = [
                {"name": call["name"], "args": call["args"], "id": call.get("id")}
                for call in message.tool_calls
            ]
        if message.invalid_tool_calls:
            out["invalid_tool_calls"] = message.invalid_tool_calls
    elif isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        out["status"] = message.status
    return out


def model_requested(serialized: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> str | None:
    """The model a request names: its invocation parameters, else LangSmith's metadata."""
    params = extra.get("invocation_params")
    if isinstance(params, Mapping):
        for key in ("model", "model_name", "model_id"):
            value = params.get(key)
            if isinstance(value, str) and value:
                return value
    metadata = extra.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get("ls_model_name")
        if isinstance(value, str) and value:
            return value
    return None


def response_details(response: LLMResult, details: dict[str, Any], run: Run | None) -> None:
    """Generations, model name, token usage and finish reasons of an LLM response."""
    generations: list[list[Any]] = []
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    has_usage = False
    model: str | None = None
    finish: list[str] = []
    for candidates in response.generations:
        outputs: list[Any] = []
        for generation in candidates:
            if isinstance(generation, ChatGeneration):
                message = generation.message
                outputs.append(message_details(message))
                metadata = message.response_metadata
                model = model or _first_text(metadata, ("model_name", "model"))
                reason = metadata.get("finish_reason") or metadata.get("stop_reason")
                if isinstance(reason, str):
                    finish.append(reason)
                counts = getattr(message, "usage_metadata", None)
                if counts:
                    has_usage = True
                    for key in usage:
                        usage[key] += int(counts.get(key) or 0)
            elif isinstance(generation, Generation):
                outputs.append(generation.text)
                info = generation.generation_info or {}
                reason = info.get("finish_reason")
                if isinstance(reason, str):
                    finish.append(reason)
        generations.append(outputs)
    llm_output = response.llm_output or {}
    model = model or _first_text(llm_output, ("model_name", "model"))
    if not has_usage:  # OpenAI-style llm_output: {"token_usage": {"prompt_tokens": ...}}
        has_usage = _output_usage(llm_output, usage)
    model = model or (run.model if run is not None else None)
    if model is not None:
        details["model"] = model
    if has_usage:
        details["usage"] = usage
    if finish:
        details["finish_reasons"] = finish
    details["generations"] = generations


def _output_usage(llm_output: Mapping[str, Any], usage: dict[str, int]) -> bool:
    """Fill ``usage`` from an OpenAI-style ``llm_output``; True when it gave a count."""
    counts = llm_output.get("token_usage") or llm_output.get("usage")
    found = False
    if isinstance(counts, Mapping):
        for ours, theirs in (
            ("input_tokens", "prompt_tokens"),
            ("output_tokens", "completion_tokens"),
            ("total_tokens", "total_tokens"),
        ):
            value = counts.get(theirs, counts.get(ours))
            if isinstance(value, int):
                found = True
                usage[ours] = value
    return found


def _first_text(values: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """The first non-empty text under one of ``keys``."""
    for key in keys:
        value = values.get(key)
        if isinstance(value, str) and value:
            return value
    return None
