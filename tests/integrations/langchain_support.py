"""A small LangGraph agent with a fake chat model and a real tool, for the adapter's tests.

The graph is the usual tool-calling loop: an ``agent`` node asks the chat model,
``tools_condition`` routes a reply with tool calls to a ``tools`` node
(LangGraph's ``ToolNode``), whose result goes back to the agent, until the model
answers without tool calls. The model is LangChain's ``GenericFakeChatModel``
replaying scripted replies, so everything runs offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from cleveragents import AuditLogEntry, AuditService

#: The API key the model passes to the tool: the trail must never hold it.
SECRET_API_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a"


@tool
def get_weather(city: str, api_key: str) -> str:
    """The weather in a city (the key authorises the call)."""
    if not api_key:
        raise ValueError("no api key")
    return f"sunny, 21 C in {city}"


def weather_replies(model_name: str = "fake-weather-1") -> list[AIMessage]:
    """The model's two replies: a call of get_weather, then the answer."""
    return [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "get_weather",
                    "args": {"city": "Paris", "api_key": SECRET_API_KEY},
                    "id": "call_1",
                }
            ],
            usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
            response_metadata={"model_name": model_name, "finish_reason": "tool_calls"},
        ),
        AIMessage(
            content="It is sunny in Paris.",
            usage_metadata={"input_tokens": 30, "output_tokens": 6, "total_tokens": 36},
            response_metadata={"model_name": model_name, "finish_reason": "stop"},
        ),
    ]


def weather_graph(
    replies: Sequence[AIMessage] | None = None, *, name: str | None = None, is_async: bool = False
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent loop over a fake chat model that replays ``replies``.

    With ``is_async`` the agent node is a coroutine (``ainvoke`` of the model), to be
    run by the graph's ``ainvoke``.
    """
    model = GenericFakeChatModel(messages=iter(replies or weather_replies()))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def agent_async(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    if is_async:
        graph.add_node("agent", agent_async)
    else:
        graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name=name) if name is not None else graph.compile()


#: (event type, resource) of the weather graph's run, in the order recorded.
WEATHER_RUN: list[tuple[str, str]] = [
    ("chain.started", "chain:LangGraph"),
    ("chain.started", "chain:agent"),
    ("llm.request", "llm:GenericFakeChatModel"),
    ("llm.response", "llm:GenericFakeChatModel"),
    ("chain.started", "chain:tools_condition"),
    ("chain.completed", "chain:tools_condition"),
    ("chain.completed", "chain:agent"),
    ("chain.started", "chain:tools"),
    ("tool.invoked", "tool:get_weather"),
    ("tool.completed", "tool:get_weather"),
    ("chain.completed", "chain:tools"),
    ("chain.started", "chain:agent"),
    ("llm.request", "llm:GenericFakeChatModel"),
    ("llm.response", "llm:GenericFakeChatModel"),
    ("chain.started", "chain:tools_condition"),
    ("chain.completed", "chain:tools_condition"),
    ("chain.completed", "chain:agent"),
    ("chain.completed", "chain:LangGraph"),
]


def committed(audit: AuditService, **filters: Any) -> list[AuditLogEntry]:
    """Every entry committed so far (after a flush), oldest first."""
    assert audit.flush(timeout=30), audit.stats()
    return audit.query(limit=10_000, **filters)


def kinds(entries: Sequence[AuditLogEntry]) -> list[tuple[str, str | None]]:
    """(event type, resource) of each entry."""
    return [(entry.event_type.value, entry.resource) for entry in entries]
