"""Running a small LangGraph agent with the LangChain audit handler (offline, fake model)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from audit_support import FLUSH_TIMEOUT_S, all_entries
from behave import then, when
from behave.runner import Context
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from cleveragents import AuditLogEntry
from cleveragents.integrations.langchain import AsyncAuditCallbackHandler, AuditCallbackHandler

API_KEY = "sk-live-0a1b2c3d4e5f6a7b8c9d0e1f2a3b"


@tool
def get_weather(city: str, api_key: str) -> str:
    """The weather in a city (the key authorises the call)."""
    return f"sunny in {city}"


def weather_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """agent -> tools -> agent: the model calls get_weather once, then answers."""
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {
                            "name": "get_weather",
                            "args": {"city": "Paris", "api_key": API_KEY},
                            "id": "call_1",
                        }
                    ],
                ),
                AIMessage(content="It is sunny in Paris."),
            ]
        )
    )

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "__end__"

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", "__end__"])
    graph.add_edge("tools", "agent")
    return graph.compile()


def run_agent(context: Context, *, use_async_handler: bool) -> None:
    context.root_run_id = uuid.uuid4()
    handler: Any = (
        AsyncAuditCallbackHandler(context.service)
        if use_async_handler
        else AuditCallbackHandler(context.service)
    )
    config: Any = {"callbacks": [handler], "run_id": context.root_run_id}
    question = {"messages": [HumanMessage("What is the weather in Paris?")]}
    result = asyncio.run(weather_agent().ainvoke(question, config=config))
    context.answer = result["messages"][-1].content


def run_entries(context: Context) -> list[AuditLogEntry]:
    assert context.service.flush(timeout=FLUSH_TIMEOUT_S), context.service.stats()
    return all_entries(context.service)


@when("I run the weather agent with the LangChain audit handler")
def when_run_agent(context: Context) -> None:
    run_agent(context, use_async_handler=False)


@when("I run the weather agent with ainvoke and the async LangChain audit handler")
def when_run_agent_async(context: Context) -> None:
    run_agent(context, use_async_handler=True)


@then('the agent answered "{answer}"')
def then_answered(context: Context, answer: str) -> None:
    assert context.answer == answer, context.answer


@then("the trail holds these entries, each with the run's root id as correlation id:")
def then_trail_holds(context: Context) -> None:
    entries = run_entries(context)
    got = [(e.event_type.value, e.resource) for e in entries]
    expected = [(row["event type"], row["resource"]) for row in context.table]
    assert got == expected, got
    assert {e.correlation_id for e in entries} == {str(context.root_run_id)}


@then("the trail holds {count:d} entries under the run's root id")
def then_trail_count(context: Context, count: int) -> None:
    entries = run_entries(context)
    assert len(entries) == count, [e.event_type.value for e in entries]
    assert {e.correlation_id for e in entries} == {str(context.root_run_id)}


@then('the "{event_type}" entry has the input {details}')
def then_entry_input(context: Context, event_type: str, details: str) -> None:
    (entry,) = [e for e in run_entries(context) if e.event_type.value == event_type]
    assert entry.details["input"] == json.loads(details), entry.details


@then("no stored entry contains the API key")
def then_no_key(context: Context) -> None:
    stored = json.dumps([e.details for e in run_entries(context)])
    assert API_KEY not in stored
    assert "[REDACTED]" in stored
