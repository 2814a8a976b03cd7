"""LangChain and LangGraph: a callback handler that records every run into the audit trail.

::

    from cleveragents.integrations.langchain import AuditCallbackHandler

    handler = AuditCallbackHandler(audit)
    graph.invoke(inputs, config={"callbacks": [handler]})

Every callback becomes one entry (chains, agents, chat models and LLMs, tools,
retrievers: see :data:`EVENT_TYPES`). The run id of the run the user invoked (the
root of the run tree) is the ``correlation_id`` of all its entries; ``run_id`` and
``parent_run_id`` are kept in the details. Inputs and outputs (messages, documents,
pydantic models, ...) are made JSON; secrets in them are masked by the service's
redaction. The handler never raises into LangChain: a failure is logged and counted
in ``stats().adapter_failed``. :class:`AsyncAuditCallbackHandler` is the same for
asyncio code (``ainvoke``, ``astream``): it records through ``AuditService.arecord``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

try:
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult
except ImportError as exc:
    raise ImportError(
        "cleveragents.integrations.langchain needs langchain-core, which is not installed:"
        " pip install 'cleveragents-audit[langchain]'"
    ) from exc

from cleveragents.domain.event_types import AuditEventType as T
from cleveragents.integrations._langchain_runs import Entry, RunTracker
from cleveragents.integrations._langchain_values import (
    error_details,
    handoff_details,
    model_requested,
    response_details,
    unpack,
)
from cleveragents.integrations._support import AdapterRecorder

if TYPE_CHECKING:
    from cleveragents.application.services.audit_service import AuditService

__all__ = [
    "DEFAULT_AGENT_NAMES",
    "DEFAULT_MAX_OPEN_RUNS",
    "EVENT_TYPES",
    "AsyncAuditCallbackHandler",
    "AuditCallbackHandler",
]

#: The name the handlers give the service when they account for a failure.
_ADAPTER = "langchain"

#: Chain runs with one of these names are agent runs (``agent.*``, ``agent:<name>``).
DEFAULT_AGENT_NAMES: Final = frozenset({"AgentExecutor"})

#: Runs the handler remembers at once (started, not yet ended); beyond, the oldest
#: root's runs are forgotten (their later entries keep their parent as correlation).
DEFAULT_MAX_OPEN_RUNS: Final = 10_000

#: Which callback records which event type.
EVENT_TYPES: Final[Mapping[str, tuple[T, ...]]] = {
    "on_chain_start / on_chain_end / on_chain_error": (
        T.CHAIN_STARTED,
        T.CHAIN_COMPLETED,
        T.CHAIN_FAILED,
    ),
    "the same, for an agent run": (T.AGENT_STARTED, T.AGENT_COMPLETED, T.AGENT_FAILED),
    "on_chat_model_start, on_llm_start / on_llm_end / on_llm_error": (
        T.LLM_REQUEST,
        T.LLM_RESPONSE,
        T.LLM_FAILED,
    ),
    "on_tool_start / on_tool_end / on_tool_error": (
        T.TOOL_INVOKED,
        T.TOOL_COMPLETED,
        T.TOOL_FAILED,
    ),
    "on_retriever_start / on_retriever_end / on_retriever_error": (
        T.RETRIEVER_STARTED,
        T.RETRIEVER_COMPLETED,
        T.RETRIEVER_FAILED,
    ),
    "on_chain_error, on_tool_error with LangGraph's ParentCommand (a hand-off)": (T.AGENT_HANDOFF,),
}


# -- the handlers ---------------------------------------------------------------------


class _Core:
    """What both handlers do with a callback: the entry it becomes."""

    __slots__ = ("recorder", "tracker")

    def __init__(
        self,
        audit: AuditService,
        actor: str | None,
        agent_names: Collection[str],
        max_open_runs: int,
    ) -> None:
        self.recorder = AdapterRecorder(audit, _ADAPTER)
        self.tracker = RunTracker(actor, agent_names, max_open_runs)

    def entry(self, build: Callable[[], Entry], callback: str) -> Entry | None:
        """``build()``, or None when it failed (logged and counted, never raised)."""
        try:
            return build()
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.recorder.audit.note_adapter_failure(_ADAPTER, exc, event_type=callback)
            return None

    # Each method below returns the entry of one callback.

    def chain_start(
        self, serialized: Any, inputs: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        return self.tracker.start(
            "chain", serialized, run_id, parent_run_id, kw, {"inputs": unpack(inputs)}
        )

    def chain_end(self, outputs: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any) -> Entry:
        details = {"outputs": unpack(outputs)}
        return self.tracker.end("chain", run_id, parent_run_id, kw, details, failed=False)[0]

    def failure(
        self, kind: str, error: BaseException, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        handoff = handoff_details(error)
        if handoff is not None:
            details = {"handoff": handoff}
            return self.tracker.end(
                kind, run_id, parent_run_id, kw, details, failed=False, handoff=True
            )[0]
        details = {"error": error_details(error)}
        return self.tracker.end(kind, run_id, parent_run_id, kw, details, failed=True)[0]

    def chat_model_start(
        self,
        serialized: Any,
        messages: list[list[BaseMessage]],
        run_id: UUID,
        parent_run_id: UUID | None,
        kw: Any,
    ) -> Entry:
        details = {"messages": unpack(messages)}
        model = model_requested(serialized, kw)
        return self.tracker.start(
            "llm", serialized, run_id, parent_run_id, kw, details, model=model
        )

    def llm_start(
        self, serialized: Any, prompts: list[str], run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        details: dict[str, Any] = {"prompts": list(prompts)}
        model = model_requested(serialized, kw)
        return self.tracker.start(
            "llm", serialized, run_id, parent_run_id, kw, details, model=model
        )

    def llm_end(
        self, response: LLMResult, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        details: dict[str, Any] = {}
        entry, run = self.tracker.end("llm", run_id, parent_run_id, kw, details, failed=False)
        response_details(response, details, run)
        return entry

    def tool_start(
        self,
        serialized: Any,
        input_str: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        kw: Any,
    ) -> Entry:
        inputs = kw.get("inputs")
        details: dict[str, Any] = {"input": unpack(inputs) if inputs is not None else input_str}
        tool_call_id = kw.get("tool_call_id")
        if tool_call_id is not None:
            details["tool_call_id"] = tool_call_id
        return self.tracker.start("tool", serialized, run_id, parent_run_id, kw, details)

    def tool_end(self, output: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any) -> Entry:
        details = {"output": unpack(output)}
        return self.tracker.end("tool", run_id, parent_run_id, kw, details, failed=False)[0]

    def retriever_start(
        self, serialized: Any, query: str, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        details: dict[str, Any] = {"query": query}
        return self.tracker.start("retriever", serialized, run_id, parent_run_id, kw, details)

    def retriever_end(
        self, documents: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> Entry:
        details = {"documents": unpack(list(documents))}
        return self.tracker.end("retriever", run_id, parent_run_id, kw, details, failed=False)[0]


# The callbacks, made into methods of both handlers below: each with the _Core method
# that builds its entry and its docstring. LangChain passes a start the serialized
# object and its payload by position, an end or error its value; the rest (run ids,
# tags, metadata, inputs, name, ...) by keyword.
_Start = Callable[[_Core, Any, Any, UUID, "UUID | None", Any], Entry]
_End = Callable[[_Core, Any, UUID, "UUID | None", Any], Entry]
_STARTS: Final[dict[str, tuple[_Start, str]]] = {
    "on_chain_start": (
        _Core.chain_start,
        "``chain.started`` (``agent.started`` for an agent run).",
    ),
    "on_chat_model_start": (
        _Core.chat_model_start,
        "``llm.request`` of a chat model: the messages and the model.",
    ),
    "on_llm_start": (
        _Core.llm_start,
        "``llm.request`` of a text-completion LLM: the prompts and the model.",
    ),
    "on_tool_start": (_Core.tool_start, "``tool.invoked``: the tool's arguments."),
    "on_retriever_start": (_Core.retriever_start, "``retriever.started``: the query."),
}
_ENDS: Final[dict[str, tuple[_End, str]]] = {
    "on_chain_end": (_Core.chain_end, "``chain.completed`` (``agent.completed``)."),
    "on_llm_end": (_Core.llm_end, "``llm.response``: the generations, the model, the token usage."),
    "on_tool_end": (_Core.tool_end, "``tool.completed``: the tool's output."),
    "on_retriever_end": (_Core.retriever_end, "``retriever.completed``: the documents."),
}
_ERRORS: Final = {
    "on_chain_error": "chain",
    "on_llm_error": "llm",
    "on_tool_error": "tool",
    "on_retriever_error": "retriever",
}


def _builder(callback: str, core: _Core, args: tuple[Any, ...], kw: dict[str, Any]) -> Entry:
    """The entry of ``callback`` called with ``args`` and keywords ``kw`` (run ids included)."""
    run_id: UUID = kw.pop("run_id")
    parent_run_id: UUID | None = kw.pop("parent_run_id", None)
    if callback in _STARTS:
        serialized, payload = args
        return _STARTS[callback][0](core, serialized, payload, run_id, parent_run_id, kw)
    (value,) = args
    if callback in _ENDS:
        return _ENDS[callback][0](core, value, run_id, parent_run_id, kw)
    return core.failure(_ERRORS[callback], value, run_id, parent_run_id, kw)


def _sync_callback(callback: str, doc: str) -> Callable[..., None]:
    def method(self: AuditCallbackHandler, *args: Any, **kw: Any) -> None:
        core = self._core
        entry = core.entry(lambda: _builder(callback, core, args, kw), callback)
        if entry is not None:
            core.recorder.record_json(  # converted only if record() refuses it
                entry.event_type,
                actor=entry.actor,
                resource=entry.resource,
                details=entry.details,
                correlation_id=entry.correlation_id,
            )

    method.__name__ = method.__qualname__ = callback
    method.__doc__ = doc
    return method


def _async_callback(callback: str, doc: str) -> Callable[..., Awaitable[None]]:
    async def method(self: AsyncAuditCallbackHandler, *args: Any, **kw: Any) -> None:
        core = self._core
        entry = core.entry(lambda: _builder(callback, core, args, kw), callback)
        if entry is not None:
            await core.recorder.arecord_json(  # converted only if arecord() refuses it
                entry.event_type,
                actor=entry.actor,
                resource=entry.resource,
                details=entry.details,
                correlation_id=entry.correlation_id,
            )

    method.__name__ = method.__qualname__ = callback
    method.__doc__ = doc
    return method


def _callbacks() -> dict[str, str]:
    """Every callback the handlers implement, with its docstring."""
    errors = {name: f"``{kind}.failed``." for name, kind in _ERRORS.items()}
    errors["on_chain_error"] = "``chain.failed`` (``agent.failed``)."
    return {
        **{name: doc for name, (_, doc) in _STARTS.items()},
        **{name: doc for name, (_, doc) in _ENDS.items()},
        **errors,
    }


class _Handler:
    """What both handlers share: the service, the run table, the options."""

    def __init__(
        self,
        audit: AuditService,
        *,
        actor: str | None = None,
        agent_names: Collection[str] = DEFAULT_AGENT_NAMES,
        max_open_runs: int = DEFAULT_MAX_OPEN_RUNS,
    ) -> None:
        self._core = _Core(audit, actor, agent_names, max_open_runs)

    @property
    def audit(self) -> AuditService:
        """The service entries go to."""
        return self._core.recorder.audit

    def open_runs(self) -> int:
        """How many runs the handler remembers now (started, not ended)."""
        return self._core.tracker.open_runs()


class AuditCallbackHandler(_Handler, BaseCallbackHandler):
    """Records a LangChain or LangGraph run into an :class:`AuditService`.

    Pass it in ``config={"callbacks": [handler]}`` (or to a constructor's
    ``callbacks``). One handler may serve many runs, concurrently and from any
    thread. For asyncio code, use :class:`AsyncAuditCallbackHandler`, which does not
    block the event loop even when the service's queue is full.

    The callbacks (``on_chain_start``, ``on_tool_end``, ...) are made from the
    tables above, one per entry of :data:`EVENT_TYPES`.

    Args:
        audit: The service entries go to.
        actor: The ``actor`` of every entry. None (the default): the root run's
            resource, e.g. ``chain:LangGraph`` or ``agent:support``, so entries of
            different graphs and agents are told apart.
        agent_names: Chain runs with one of these names are agent runs
            (``agent.started`` / ``agent.completed`` / ``agent.failed``, resource
            ``agent:<name>``), as is the outermost run carrying a new
            ``lc_agent_name`` in its metadata (set by LangChain's ``create_agent``).
        max_open_runs: Most runs remembered between their start and end.
    """

    raise_error = False  # the handler never raises; this says so to LangChain too


class AsyncAuditCallbackHandler(_Handler, AsyncCallbackHandler):
    """:class:`AuditCallbackHandler` for asyncio code: records through ``arecord``.

    LangChain awaits its callbacks on the event loop (``ainvoke``, ``astream``,
    LangGraph's async nodes); this handler never blocks it, even when the service's
    queue is full with overflow ``block`` or the service is synchronous. The same
    entries, arguments and guarantees as :class:`AuditCallbackHandler`.
    """

    raise_error = False


for _name, _doc in _callbacks().items():
    setattr(AuditCallbackHandler, _name, _sync_callback(_name, _doc))
    setattr(AsyncAuditCallbackHandler, _name, _async_callback(_name, _doc))
del _name, _doc
