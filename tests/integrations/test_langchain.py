"""The LangChain/LangGraph adapter against the real packages, offline, into real databases."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult, Generation, LLMResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
from structlog.testing import capture_logs

from cleveragents import AuditEventType, AuditLogEntry
from cleveragents.integrations.langchain import (
    EVENT_TYPES,
    AsyncAuditCallbackHandler,
    AuditCallbackHandler,
)
from tests.conftest import MakeService
from tests.integrations.langchain_support import (
    SECRET_API_KEY,
    WEATHER_RUN,
    committed,
    get_weather,
    kinds,
    weather_graph,
)

QUESTION = "What is the weather in Paris?"


def by_run(entries: list[AuditLogEntry]) -> dict[str, AuditLogEntry]:
    """The start entry of each run, by run id."""
    starts = ("chain.started", "agent.started", "llm.request", "tool.invoked", "retriever.started")
    return {e.details["run_id"]: e for e in entries if e.event_type.value in starts}


def assert_weather_run(entries: list[AuditLogEntry], root: uuid.UUID) -> None:
    """The entries of one weather graph run: order, correlation, tree, redaction, usage."""
    assert kinds(entries) == WEATHER_RUN
    assert {e.correlation_id for e in entries} == {str(root)}
    assert {e.actor for e in entries} == {"chain:LangGraph"}
    starts = by_run(entries)
    assert entries[0].details["run_id"] == str(root)
    assert entries[0].details["parent_run_id"] is None
    assert entries[0].details["inputs"] == {"messages": [{"type": "human", "content": QUESTION}]}
    for entry in entries[1:-1]:  # every run but the root hangs from a run started before it
        parent = starts[entry.details["parent_run_id"]]
        assert parent.id < entry.id
    assert entries[-1].details["run_id"] == str(root)
    for entry in entries:  # every end names the run its start opened, with the same resource
        assert starts[entry.details["run_id"]].resource == entry.resource
    agent, llm, tool_start, tool_end = entries[1], entries[2], entries[8], entries[9]
    assert agent.details["parent_run_id"] == str(root)
    assert llm.details["parent_run_id"] == agent.details["run_id"]
    assert starts[tool_start.details["parent_run_id"]].resource == "chain:tools"
    assert tool_start.details["input"] == {"city": "Paris", "api_key": "[REDACTED]"}
    assert tool_start.details["tool_call_id"] == "call_1"
    assert tool_end.details["output"] == {
        "type": "tool",
        "content": "sunny, 21 C in Paris",
        "name": "get_weather",
        "tool_call_id": "call_1",
        "status": "success",
    }
    first, last = entries[3].details, entries[13].details
    assert first["model"] == "fake-weather-1"
    assert first["usage"] == {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    assert first["finish_reasons"] == ["tool_calls"]
    assert first["generations"] == [
        [
            {
                "type": "ai",
                "content": "",
                "tool_calls": [
                    {
                        "name": "get_weather",
                        "args": {"city": "Paris", "api_key": "[REDACTED]"},
                        "id": "call_1",
                    }
                ],
            }
        ]
    ]
    assert last["generations"] == [[{"type": "ai", "content": "It is sunny in Paris."}]]
    assert last["usage"] == {"input_tokens": 30, "output_tokens": 6, "total_tokens": 36}
    assert llm.details["metadata"]["langgraph_node"] == "agent"
    assert agent.details["tags"] == ["graph:step:1"]
    assert all(e.details["duration_ms"] >= 0 for e in entries if "completed" in e.event_type)
    stored = json.dumps([e.details for e in entries])
    assert SECRET_API_KEY not in stored
    assert SECRET_API_KEY[:12] not in stored


def test_langgraph_run_is_recorded_exactly(make_service: MakeService, database_url: str) -> None:
    """A LangGraph agent with a fake chat model and a real tool: every entry, in order."""
    audit = make_service(database_url=database_url)
    handler = AuditCallbackHandler(audit)
    root = uuid.uuid4()
    result = weather_graph().invoke(
        {"messages": [HumanMessage(QUESTION)]},
        config={"callbacks": [handler], "run_id": root},
    )
    assert result["messages"][-1].content == "It is sunny in Paris."
    assert_weather_run(committed(audit), root)
    assert handler.open_runs() == 0
    assert audit.stats().adapter_failed == 0


def test_async_handler_under_ainvoke(make_service: MakeService, database_url: str) -> None:
    """AsyncAuditCallbackHandler records the same run under ainvoke, through arecord."""
    audit = make_service(database_url=database_url)
    handler = AsyncAuditCallbackHandler(audit)
    root = uuid.uuid4()

    async def run() -> dict[str, Any]:
        return await weather_graph(is_async=True).ainvoke(
            {"messages": [HumanMessage(QUESTION)]},
            config={"callbacks": [handler], "run_id": root},
        )

    result = asyncio.run(run())
    assert result["messages"][-1].content == "It is sunny in Paris."
    assert_weather_run(committed(audit), root)
    assert handler.open_runs() == 0


def test_async_handler_with_a_synchronous_service(
    make_service: MakeService, sqlite_url: str
) -> None:
    """With a synchronous service, each entry is committed when its callback returns."""
    audit = make_service(database_url=sqlite_url, audit_async=False)
    handler = AsyncAuditCallbackHandler(audit)
    seen: list[int] = []

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(audit.count())  # the chain.started of this run is already committed
        return {"answer": state["question"].upper()}

    asyncio.run(RunnableLambda(node).ainvoke({"question": "hi"}, config={"callbacks": [handler]}))
    assert seen == [1]
    assert kinds(committed(audit)) == [
        ("chain.started", "chain:node"),
        ("chain.completed", "chain:node"),
    ]


def test_async_service_with_the_sync_handler_under_ainvoke(
    make_service: MakeService, sqlite_url: str
) -> None:
    """The sync handler also works under ainvoke (LangChain runs it in its executor)."""
    audit = make_service(database_url=sqlite_url)
    root = uuid.uuid4()
    asyncio.run(
        weather_graph(is_async=True).ainvoke(
            {"messages": [HumanMessage(QUESTION)]},
            config={"callbacks": [AuditCallbackHandler(audit)], "run_id": root},
        )
    )
    assert_weather_run(committed(audit), root)


def test_async_handler_under_invoke(make_service: MakeService, sqlite_url: str) -> None:
    """The async handler also serves a synchronous invoke (LangChain runs its coroutines)."""
    audit = make_service(database_url=sqlite_url)
    root = uuid.uuid4()
    weather_graph().invoke(
        {"messages": [HumanMessage(QUESTION)]},
        config={"callbacks": [AsyncAuditCallbackHandler(audit)], "run_id": root},
    )
    assert_weather_run(committed(audit), root)


def test_a_streamed_reply_is_recorded_whole(make_service: MakeService, sqlite_url: str) -> None:
    """astream with the async handler: one llm.response holding the whole reply, as "ai"."""
    audit = make_service(database_url=sqlite_url)
    model = GenericFakeChatModel(messages=iter([AIMessage("hello there world")]))

    async def stream() -> list[Any]:
        config: RunnableConfig = {"callbacks": [AsyncAuditCallbackHandler(audit)]}
        return [chunk async for chunk in model.astream("hi", config=config)]

    assert len(asyncio.run(stream())) > 1
    request, response = committed(audit)
    assert kinds([request, response]) == [
        ("llm.request", "llm:GenericFakeChatModel"),
        ("llm.response", "llm:GenericFakeChatModel"),
    ]
    assert response.details["generations"] == [[{"type": "ai", "content": "hello there world"}]]


def test_non_json_inputs_are_recorded(make_service: MakeService, sqlite_url: str) -> None:
    """Messages, bytes, times and other objects in a chain's input are recorded as JSON."""
    audit = make_service(database_url=sqlite_url)

    class Ticket:
        def __str__(self) -> str:
            return "ticket #42"

    inputs = {
        "message": HumanMessage("hello"),
        "blob": b"\x00\x01",
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "ticket": Ticket(),
        "nested": [{"messages": (AIMessage("hi"),)}],
    }
    output = RunnableLambda(lambda x: HumanMessage(str(len(x)))).invoke(
        inputs, config={"callbacks": [AuditCallbackHandler(audit)]}
    )
    assert output.content == "5"
    started, completed = committed(audit)
    assert started.details["inputs"] == {
        "message": {"type": "human", "content": "hello"},
        "blob": "AAE=",
        "when": "2026-01-02T03:04:05+00:00",
        "ticket": "ticket #42",
        "nested": [{"messages": [{"type": "ai", "content": "hi"}]}],
    }
    assert completed.details["outputs"] == {"type": "human", "content": "5"}
    assert audit.stats().adapter_failed == 0


def test_a_message_as_the_whole_input(make_service: MakeService, sqlite_url: str) -> None:
    """A chat model invoked with a message list records the messages and the reply."""
    audit = make_service(database_url=sqlite_url)
    model = GenericFakeChatModel(messages=iter([AIMessage("pong")]))
    root = uuid.uuid4()
    model.invoke(
        [HumanMessage("ping")], config={"callbacks": [AuditCallbackHandler(audit)], "run_id": root}
    )
    request, response = committed(audit)
    assert (request.event_type.value, response.event_type.value) == ("llm.request", "llm.response")
    assert request.details["messages"] == [[{"type": "human", "content": "ping"}]]
    assert request.correlation_id == response.correlation_id == str(root)
    assert request.actor == "llm:GenericFakeChatModel"
    assert response.details["generations"] == [[{"type": "ai", "content": "pong"}]]


def test_tool_failure(make_service: MakeService, sqlite_url: str) -> None:
    """A tool that raises: tool.invoked, then tool.failed with the error's type and message."""
    audit = make_service(database_url=sqlite_url)
    with pytest.raises(ValueError, match="no api key"):
        get_weather.invoke(
            {"city": "Oslo", "api_key": ""}, config={"callbacks": [AuditCallbackHandler(audit)]}
        )
    invoked, failed = committed(audit)
    assert kinds([invoked, failed]) == [
        ("tool.invoked", "tool:get_weather"),
        ("tool.failed", "tool:get_weather"),
    ]
    assert failed.details["error"] == {"type": "ValueError", "message": "no api key"}
    assert invoked.correlation_id == failed.correlation_id == invoked.details["run_id"]


def test_chain_and_llm_failures(make_service: MakeService, sqlite_url: str) -> None:
    """A chat model that fails inside a chain: llm.failed, then chain.failed."""
    audit = make_service(database_url=sqlite_url)

    class Unreachable(GenericFakeChatModel):
        def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
            raise ConnectionError("upstream returned 503")

    model = Unreachable(messages=iter([]))
    chain = RunnableLambda(lambda text: model.invoke(text)).with_config(run_name="ask")
    with pytest.raises(ConnectionError):
        chain.invoke("hello?", config={"callbacks": [AuditCallbackHandler(audit)]})
    entries = committed(audit)
    assert kinds(entries) == [
        ("chain.started", "chain:ask"),
        ("llm.request", "llm:Unreachable"),
        ("llm.failed", "llm:Unreachable"),
        ("chain.failed", "chain:ask"),
    ]
    error = {"type": "ConnectionError", "message": "upstream returned 503"}
    assert entries[2].details["error"] == entries[3].details["error"] == error
    assert len({e.correlation_id for e in entries}) == 1


def test_text_llm_and_openai_style_usage(make_service: MakeService, sqlite_url: str) -> None:
    """A text-completion LLM: prompts and texts; usage and model read from llm_output too."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit)
    FakeListLLM(responses=["forty-two"]).invoke("6 x 7?", config={"callbacks": [handler]})
    run_id = uuid.uuid4()
    handler.on_llm_start(
        {"name": "OpenAI"}, ["hi"], run_id=run_id, invocation_params={"model": "gpt-x"}
    )
    handler.on_llm_end(
        LLMResult(
            generations=[[Generation(text="hello", generation_info={"finish_reason": "stop"})]],
            llm_output={
                "token_usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            },
        ),
        run_id=run_id,
    )
    fake_request, fake_response, request, response = committed(audit)
    assert fake_request.details["prompts"] == ["6 x 7?"]
    assert fake_request.resource == "llm:FakeListLLM"
    assert fake_response.details["generations"] == [["forty-two"]]
    assert request.details["model"] == "gpt-x"
    assert response.details == {
        "run_id": str(run_id),
        "parent_run_id": None,
        "duration_ms": response.details["duration_ms"],
        "model": "gpt-x",  # the response names none: the request's
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        "finish_reasons": ["stop"],
        "generations": [["hello"]],
    }


class _Library(BaseRetriever):
    """A retriever over two documents; the query "explode" fails."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if query == "explode":
            raise LookupError("index offline")
        return [
            Document("Paris is the capital of France.", metadata={"source": "atlas"}, id="d1"),
            Document("It rains in Brest."),
        ]


def test_retriever(make_service: MakeService, sqlite_url: str) -> None:
    """Retriever start, end (with the documents) and error."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit)
    retriever = _Library()
    assert len(retriever.invoke("capital", config={"callbacks": [handler]})) == 2
    with pytest.raises(LookupError):
        retriever.invoke("explode", config={"callbacks": [handler]})
    entries = committed(audit)
    assert kinds(entries) == [
        ("retriever.started", "retriever:_Library"),
        ("retriever.completed", "retriever:_Library"),
        ("retriever.started", "retriever:_Library"),
        ("retriever.failed", "retriever:_Library"),
    ]
    assert entries[0].details["query"] == "capital"
    assert entries[1].details["documents"] == [
        {
            "page_content": "Paris is the capital of France.",
            "metadata": {"source": "atlas"},
            "id": "d1",
        },
        {"page_content": "It rains in Brest."},
    ]
    assert entries[3].details["error"] == {"type": "LookupError", "message": "index offline"}
    assert entries[0].correlation_id != entries[2].correlation_id


def test_agent_runs(make_service: MakeService, sqlite_url: str) -> None:
    """A graph named in agent_names, or marked by lc_agent_name, is recorded as agent.*."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit, agent_names={"weather_agent"})
    weather_graph(name="weather_agent").invoke(
        {"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]}
    )
    named = committed(audit)
    assert kinds(named)[0] == ("agent.started", "agent:weather_agent")
    assert kinds(named)[-1] == ("agent.completed", "agent:weather_agent")
    assert kinds(named)[1:-1] == WEATHER_RUN[1:-1]  # the nodes stay chains
    assert {e.actor for e in named} == {"agent:weather_agent"}

    marked: RunnableConfig = {"callbacks": [handler], "metadata": {"lc_agent_name": "support"}}
    weather_graph().invoke({"messages": [HumanMessage(QUESTION)]}, config=marked)
    entries = committed(audit, after_id=named[-1].id)
    assert kinds(entries)[0] == ("agent.started", "agent:support")
    assert kinds(entries)[-1] == ("agent.completed", "agent:support")
    assert kinds(entries)[1:-1] == WEATHER_RUN[1:-1]  # they inherit the mark: still chains


def test_a_hand_off_to_the_parent_graph(make_service: MakeService, sqlite_url: str) -> None:
    """Command(graph=PARENT): agent.handoff for the node, completed for the runs above."""
    audit = make_service(database_url=sqlite_url)

    class State(TypedDict):
        x: str

    def hop(state: State) -> Command[str]:
        return Command(graph=Command.PARENT, goto="other", update={"x": "handed"})

    def other(state: State) -> State:
        return {"x": state["x"] + "!"}

    inner = StateGraph(State)
    inner.add_node("hop", hop)
    inner.add_edge(START, "hop")
    outer = StateGraph(State)
    outer.add_node("team", inner.compile(name="team"))
    outer.add_node("other", other)
    outer.add_edge(START, "team")
    root = uuid.uuid4()
    result = outer.compile().invoke(
        {"x": "a"}, config={"callbacks": [AuditCallbackHandler(audit)], "run_id": root}
    )
    assert result == {"x": "handed!"}
    entries = committed(audit)
    assert [
        (kind, resource) for kind, resource in kinds(entries) if "team" not in str(resource)
    ] == [
        ("chain.started", "chain:LangGraph"),
        ("chain.started", "chain:hop"),
        ("agent.handoff", "chain:hop"),
        ("chain.started", "chain:other"),
        ("chain.completed", "chain:other"),
        ("chain.completed", "chain:LangGraph"),
    ]
    handoff = next(e for e in entries if e.event_type.value == "agent.handoff")
    assert handoff.details["handoff"] == {
        "goto": "other",
        "graph": "__parent__",
        "update": {"x": "handed"},
    }
    team_ends = [e for e in entries if e.resource == "chain:team" and "started" not in e.event_type]
    assert team_ends
    assert {e.event_type.value for e in team_ends} == {"chain.completed"}
    assert all(e.details["handoff"]["goto"] == "other" for e in team_ends)
    assert not [e for e in entries if e.event_type.value.endswith("failed")]
    assert {e.correlation_id for e in entries} == {str(root)}


def test_an_interrupt_is_recorded_as_the_node_stopping(
    make_service: MakeService, sqlite_url: str
) -> None:
    """interrupt(): the node's chain.failed names GraphInterrupt; the graph completes."""
    audit = make_service(database_url=sqlite_url)

    class State(TypedDict):
        x: str

    def ask(state: State) -> State:
        return {"x": str(interrupt("approve?"))}

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    app = graph.compile(checkpointer=InMemorySaver())
    config: RunnableConfig = {
        "configurable": {"thread_id": "t1"},
        "callbacks": [AuditCallbackHandler(audit)],
    }
    app.invoke({"x": "a"}, config)
    assert app.invoke(Command(resume="yes"), config) == {"x": "yes"}
    entries = committed(audit)
    assert kinds(entries) == [
        ("chain.started", "chain:LangGraph"),
        ("chain.started", "chain:ask"),
        ("chain.failed", "chain:ask"),
        ("chain.completed", "chain:LangGraph"),
        ("chain.started", "chain:LangGraph"),
        ("chain.started", "chain:ask"),
        ("chain.completed", "chain:ask"),
        ("chain.completed", "chain:LangGraph"),
    ]
    assert entries[2].details["error"]["type"] == "GraphInterrupt"
    assert "approve?" in entries[2].details["error"]["message"]


def test_actor_given(make_service: MakeService, sqlite_url: str) -> None:
    """An actor passed to the handler is the actor of every entry."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit, actor="user:alice")
    weather_graph().invoke({"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]})
    assert {e.actor for e in committed(audit)} == {"user:alice"}


def test_concurrent_runs_keep_their_own_correlation(
    make_service: MakeService, sqlite_url: str
) -> None:
    """batch() runs 40 roots on LangChain's thread pool: each run's entries stay together."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit)

    def ask(city: str, config: RunnableConfig) -> str:
        return str(get_weather.invoke({"city": city, "api_key": "k"}, config=config))

    cities = [f"city-{i}" for i in range(40)]
    outputs = RunnableLambda(ask).batch(
        cities, config={"callbacks": [handler], "max_concurrency": 8}
    )
    assert outputs == [f"sunny, 21 C in {city}" for city in cities]
    entries = committed(audit)
    runs: dict[str, list[AuditLogEntry]] = {}
    for entry in entries:
        runs.setdefault(str(entry.correlation_id), []).append(entry)
    assert len(runs) == 40
    for correlation_id, run in runs.items():
        assert [e.event_type.value for e in run] == [
            "chain.started",
            "tool.invoked",
            "tool.completed",
            "chain.completed",
        ]
        assert run[0].details["run_id"] == correlation_id
        assert run[1].details["parent_run_id"] == correlation_id
        assert run[1].details["input"]["city"] == run[2].details["output"].split()[-1]
    assert handler.open_runs() == 0


def test_failed_records_are_counted_never_raised(
    make_service: MakeService, sqlite_url: str
) -> None:
    """With the service closed, the run goes on; each lost entry is logged and counted."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit)
    audit.close()
    with capture_logs() as logs:
        result = weather_graph().invoke(
            {"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]}
        )
    assert result["messages"][-1].content == "It is sunny in Paris."
    assert audit.stats().adapter_failed == len(WEATHER_RUN)
    failures = [log for log in logs if log["event"] == "audit_adapter_failed"]
    assert [log["event_type"] for log in failures] == [kind for kind, _ in WEATHER_RUN]
    assert {log["adapter"] for log in failures} == {"langchain"}
    assert all("AuditServiceClosedError" in log["error"] for log in failures)
    assert handler.open_runs() == 0


def test_async_handler_failures_are_counted(make_service: MakeService, sqlite_url: str) -> None:
    """The async handler also counts a closed service's refusals instead of raising."""
    audit = make_service(database_url=sqlite_url)
    handler = AsyncAuditCallbackHandler(audit)
    audit.close()
    result = asyncio.run(
        weather_graph(is_async=True).ainvoke(
            {"messages": [HumanMessage(QUESTION)]}, config={"callbacks": [handler]}
        )
    )
    assert result["messages"][-1].content == "It is sunny in Paris."
    assert audit.stats().adapter_failed == len(WEATHER_RUN)


def test_a_callback_that_cannot_be_understood_is_counted(
    make_service: MakeService, sqlite_url: str
) -> None:
    """A callback whose arguments break the handler is counted, never raised."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit)
    run_id = uuid.uuid4()
    with capture_logs() as logs:
        handler.on_retriever_end(None, run_id=run_id)  # type: ignore[arg-type]
    assert audit.stats().adapter_failed == 1
    assert logs[0]["event_type"] == "on_retriever_end"
    assert "TypeError" in logs[0]["error"]


def test_runs_are_forgotten(make_service: MakeService, sqlite_url: str) -> None:
    """A root's unfinished children are forgotten with it; at most max_open_runs are kept."""
    audit = make_service(database_url=sqlite_url)
    handler = AuditCallbackHandler(audit, max_open_runs=3)
    root, child = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start({"name": "outer"}, {}, run_id=root)
    handler.on_tool_start({"name": "t"}, "x", run_id=child, parent_run_id=root)
    assert handler.open_runs() == 2
    handler.on_chain_end({}, run_id=root)  # the child never ended
    assert handler.open_runs() == 0
    roots = [uuid.uuid4() for _ in range(5)]
    with capture_logs() as logs:
        for run_id in roots:
            handler.on_chain_start({"name": "r"}, {}, run_id=run_id)
    assert handler.open_runs() == 3
    assert [log["root_run_id"] for log in logs] == [str(roots[0]), str(roots[1])]
    handler.on_chain_end({}, run_id=roots[0])  # forgotten: still recorded, by its ids
    entries = committed(audit)
    assert kinds(entries[-1:]) == [("chain.completed", "chain:unknown")]
    assert entries[-1].correlation_id == str(roots[0])
    assert audit.stats().adapter_failed == 0


def test_constructor_arguments_are_checked(make_service: MakeService, sqlite_url: str) -> None:
    """Bad arguments fail at the constructor, naming the argument."""
    audit = make_service(database_url=sqlite_url)
    with pytest.raises(TypeError, match="actor must be a str"):
        AuditCallbackHandler(audit, actor=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_open_runs must be at least 1"):
        AsyncAuditCallbackHandler(audit, max_open_runs=0)
    with pytest.raises(TypeError, match="agent_names"):
        AuditCallbackHandler(audit, agent_names="AgentExecutor")


def test_the_handler_says_it_never_raises(make_service: MakeService, sqlite_url: str) -> None:
    """raise_error is False, as LangChain reads it."""
    audit = make_service(database_url=sqlite_url)
    assert AuditCallbackHandler(audit).raise_error is False
    assert AsyncAuditCallbackHandler(audit).raise_error is False


def test_import_without_langchain_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without langchain-core, importing the adapter names the extra to install."""
    for name in list(sys.modules):
        if name == "langchain_core" or name.startswith("langchain_core."):
            monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "cleveragents.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'cleveragents-audit\[langchain\]'"):
        importlib.import_module("cleveragents.integrations.langchain")


def test_settings_redaction_off_keeps_what_langchain_gave(
    make_service: MakeService, sqlite_url: str
) -> None:
    """The adapter masks nothing itself: redaction is the service's, and its settings rule."""
    audit = make_service(database_url=sqlite_url, audit_redact=False)
    get_weather.invoke(
        {"city": "Rome", "api_key": SECRET_API_KEY},
        config={"callbacks": [AuditCallbackHandler(audit)]},
    )
    assert committed(audit)[0].details["input"]["api_key"] == SECRET_API_KEY


def test_the_readme_documents_every_event_type_the_handler_emits() -> None:
    """Each event type of EVENT_TYPES is in the README's LangChain table."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### LangChain and LangGraph") :]
    section = section[: section.index("\n## ")]
    table = [
        line for line in section.splitlines() if line.startswith("| `on_") or "agent run" in line
    ]
    documented = {kind for line in table for kind in AuditEventType if f"`{kind.value}`" in line}
    emitted = {kind for group in EVENT_TYPES.values() for kind in group}
    assert documented == emitted
