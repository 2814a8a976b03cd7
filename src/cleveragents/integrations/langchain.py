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
import threading
import time
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from uuid import UUID

try:
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, Generation, LLMResult
except ImportError as exc:  # pragma: no cover - exercised in a test by hiding the package
    raise ImportError(
        "cleveragents.integrations.langchain needs langchain-core, which is not installed:"
        " pip install 'cleveragents-audit[langchain]'"
    ) from exc

import structlog

from cleveragents.domain.event_types import AuditEventType as T
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

_log = structlog.get_logger("cleveragents.audit.langchain")

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
}

# LangChain v1's create_agent marks its runs (and, by inheritance, their children)
# with this metadata key: the outermost run carrying a new value is the agent.
_AGENT_NAME_KEY: Final = "lc_agent_name"
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
# Values _unpack returns as they are, without looking further.
_LEAVES: Final = frozenset({str, int, float, bool, type(None)})

_KIND_EVENTS: Final[dict[str, tuple[T, T, T]]] = {
    "chain": (T.CHAIN_STARTED, T.CHAIN_COMPLETED, T.CHAIN_FAILED),
    "agent": (T.AGENT_STARTED, T.AGENT_COMPLETED, T.AGENT_FAILED),
    "llm": (T.LLM_REQUEST, T.LLM_RESPONSE, T.LLM_FAILED),
    "tool": (T.TOOL_INVOKED, T.TOOL_COMPLETED, T.TOOL_FAILED),
    "retriever": (T.RETRIEVER_STARTED, T.RETRIEVER_COMPLETED, T.RETRIEVER_FAILED),
}


class _Run:
    """What the handler remembers of a run between its start and its end."""

    __slots__ = (
        "actor",
        "agent_name",
        "kind",
        "model",
        "parent",
        "resource",
        "root",
        "started_ns",
        "text",
    )

    def __init__(
        self,
        text: str,
        root: str,
        parent: str | None,
        resource: str,
        kind: str,
        actor: str | None,
        agent_name: str | None,
        model: str | None,
    ) -> None:
        self.text = text  # the run id, as the details hold it
        self.root = root
        self.parent = parent
        self.resource = resource
        self.kind = kind
        self.actor = actor
        self.agent_name = agent_name
        self.model = model
        self.started_ns = time.perf_counter_ns()


class _Entry(NamedTuple):
    """One entry, ready for the recorder."""

    event_type: T
    actor: str | None
    resource: str
    details: dict[str, Any]
    correlation_id: str


class _RunTracker:
    """Turns callbacks into entries: the run tree, names, timings. Thread-safe.

    Sync handlers are called from LangChain's thread pools, so the run table is
    guarded by a lock held only for dictionary operations. A run is remembered from
    its start to its end; when a root run ends, every run under it still remembered
    (a child whose end never came) is forgotten with it, so memory stays bounded by
    the runs open at once, at most ``max_open_runs``. Runs are keyed by their id as
    text, which the details need anyway (and whose hash, unlike a UUID's, is cached).
    """

    def __init__(self, actor: str | None, agent_names: Collection[str], max_open_runs: int) -> None:
        if actor is not None and not isinstance(actor, str):
            raise TypeError(f"actor must be a str or None, not {type(actor).__name__}")
        if isinstance(max_open_runs, bool) or not isinstance(max_open_runs, int):
            raise TypeError(f"max_open_runs must be an int, not {type(max_open_runs).__name__}")
        if max_open_runs < 1:
            raise ValueError(f"max_open_runs must be at least 1, got {max_open_runs}")
        if isinstance(agent_names, str) or not all(isinstance(n, str) for n in agent_names):
            raise TypeError("agent_names must be a collection of str (not one str)")
        self._actor = actor
        self._agent_names = frozenset(agent_names)
        self._max_open_runs = max_open_runs
        self._lock = threading.Lock()
        self._runs: dict[Hashable, _Run] = {}  # by _key(run_id)
        self._trees: dict[str, set[Hashable]] = {}  # root -> its runs still remembered

    def open_runs(self) -> int:
        """How many runs are remembered now (started and not ended)."""
        with self._lock:
            return len(self._runs)

    # -- starts --------------------------------------------------------------------

    def start(
        self,
        kind: str,
        serialized: Mapping[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        extra: Mapping[str, Any],
        details: dict[str, Any],
        *,
        model: str | None = None,
    ) -> _Entry:
        """Remember a run that starts; its start entry."""
        name = _name_of(serialized, extra)
        metadata = extra.get("metadata")
        marked = metadata.get(_AGENT_NAME_KEY) if isinstance(metadata, Mapping) else None
        run_key, run_text = _key(run_id), str(run_id)
        with self._lock:
            parent = self._runs.get(_key(parent_run_id)) if parent_run_id is not None else None
            inherited = parent.agent_name if parent is not None else None
            agent_name = marked if isinstance(marked, str) else inherited
            if kind == "chain" and (
                name in self._agent_names or (agent_name is not None and agent_name != inherited)
            ):
                kind = "agent"
                name = name if name in self._agent_names else agent_name or name
            resource = f"{kind}:{name}"
            parent_text: str | None
            if parent is not None:
                root, actor, parent_text = parent.root, parent.actor, parent.text
            else:  # a root run; or a parent never seen (forgotten, or started elsewhere)
                parent_text = str(parent_run_id) if parent_run_id is not None else None
                root = parent_text if parent_text is not None else run_text
                actor = self._actor if self._actor is not None else resource
            self._runs[run_key] = _Run(
                run_text, root, parent_text, resource, kind, actor, agent_name, model
            )
            tree = self._trees.get(root)
            if tree is None:
                self._trees[root] = {run_key}
            else:
                tree.add(run_key)
            if len(self._runs) > self._max_open_runs:
                self._forget_oldest_tree()
        if model is not None:
            details["model"] = model
        details["run_id"] = run_text
        details["parent_run_id"] = parent_text
        for key in ("tags", "metadata"):
            value = extra.get(key)
            if value:
                details[key] = value
        return _Entry(_KIND_EVENTS[kind][0], actor, resource, details, root)

    def _forget_oldest_tree(self) -> None:
        """Forget the runs of the root seen first (the lock is held)."""
        root = next(iter(self._trees))
        runs = self._trees.pop(root)
        for run_key in runs:
            self._runs.pop(run_key, None)
        _log.warning(
            "audit_langchain_runs_forgotten",
            root_run_id=root,
            runs=len(runs),
            max_open_runs=self._max_open_runs,
        )

    # -- ends ----------------------------------------------------------------------

    def end(
        self,
        kind: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        extra: Mapping[str, Any],
        details: dict[str, Any],
        *,
        failed: bool,
    ) -> tuple[_Entry, _Run | None]:
        """Forget a run that ended; its end (or failure) entry, and what was remembered."""
        run_key = _key(run_id)
        with self._lock:
            run = self._runs.pop(run_key, None)
            if run is not None:
                tree = self._trees.get(run.root)
                if tree is not None:
                    tree.discard(run_key)
                    if run.root == run.text or not tree:  # the root ended: forget its tree
                        for orphan in self._trees.pop(run.root):
                            self._runs.pop(orphan, None)
        if run is not None:
            details["duration_ms"] = round((time.perf_counter_ns() - run.started_ns) / 1e6, 3)
            resource, root, actor, kind = run.resource, run.root, run.actor, run.kind
            run_text, parent_text = run.text, run.parent
        else:  # its start was never seen (or was forgotten): the best names there are
            resource = f"{kind}:{_name_of(None, extra)}"
            run_text = str(run_id)
            parent_text = str(parent_run_id) if parent_run_id is not None else None
            root = parent_text if parent_text is not None else run_text
            actor = self._actor
        details["run_id"] = run_text
        details["parent_run_id"] = parent_text
        event_type = _KIND_EVENTS[kind][2 if failed else 1]
        return _Entry(event_type, actor, resource, details, root), run


# -- what the callbacks carry, as details ----------------------------------------------


def _key(run_id: UUID) -> Hashable:
    """A run id as a key of the run table: its int (a UUID's own hash is slow Python)."""
    return run_id.int if type(run_id) is UUID else run_id


def _name_of(serialized: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> str:
    """The run's name: the ``name`` LangChain passes, else the serialized object's."""
    name = extra.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized:
        named = serialized.get("name")
        if isinstance(named, str) and named:
            return named
        path = serialized.get("id")
        if isinstance(path, list) and path and isinstance(path[-1], str):
            return path[-1]
    return "unknown"


def _error(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": str(error)}


def _unpack(value: Any, depth: int = 0) -> Any:
    """LangChain's values in a compact, readable form (to_jsonable does the rest)."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict or kind is list or kind is tuple:
        if depth >= _MAX_UNPACK_DEPTH:
            return value
        if kind is dict:
            return {key: _unpack(item, depth + 1) for key, item in value.items()}
        return [_unpack(item, depth + 1) for item in value]
    if isinstance(value, BaseMessage):
        return _message(value)
    if isinstance(value, Document):
        document: dict[str, Any] = {"page_content": value.page_content}
        if value.metadata:
            document["metadata"] = value.metadata
        if value.id is not None:
            document["id"] = value.id
        return document
    return value


def _message(message: BaseMessage) -> dict[str, Any]:
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


def _model_requested(serialized: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> str | None:
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


def _response_details(response: LLMResult, details: dict[str, Any], run: _Run | None) -> None:
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
                outputs.append(_message(message))
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
        counts = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(counts, Mapping):
            for ours, theirs in (
                ("input_tokens", "prompt_tokens"),
                ("output_tokens", "completion_tokens"),
                ("total_tokens", "total_tokens"),
            ):
                value = counts.get(theirs, counts.get(ours))
                if isinstance(value, int):
                    has_usage = True
                    usage[ours] = value
    model = model or (run.model if run is not None else None)
    if model is not None:
        details["model"] = model
    if has_usage:
        details["usage"] = usage
    if finish:
        details["finish_reasons"] = finish
    details["generations"] = generations


def _first_text(values: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, str) and value:
            return value
    return None


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
        self.tracker = _RunTracker(actor, agent_names, max_open_runs)

    def entry(self, build: Callable[[], _Entry], callback: str) -> _Entry | None:
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
    ) -> _Entry:
        return self.tracker.start(
            "chain", serialized, run_id, parent_run_id, kw, {"inputs": _unpack(inputs)}
        )

    def chain_end(self, outputs: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any) -> _Entry:
        details = {"outputs": _unpack(outputs)}
        return self.tracker.end("chain", run_id, parent_run_id, kw, details, failed=False)[0]

    def failure(
        self, kind: str, error: BaseException, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> _Entry:
        details = {"error": _error(error)}
        return self.tracker.end(kind, run_id, parent_run_id, kw, details, failed=True)[0]

    def chat_model_start(
        self,
        serialized: Any,
        messages: list[list[BaseMessage]],
        run_id: UUID,
        parent_run_id: UUID | None,
        kw: Any,
    ) -> _Entry:
        details = {"messages": _unpack(messages)}
        model = _model_requested(serialized, kw)
        return self.tracker.start(
            "llm", serialized, run_id, parent_run_id, kw, details, model=model
        )

    def llm_start(
        self, serialized: Any, prompts: list[str], run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> _Entry:
        details: dict[str, Any] = {"prompts": list(prompts)}
        model = _model_requested(serialized, kw)
        return self.tracker.start(
            "llm", serialized, run_id, parent_run_id, kw, details, model=model
        )

    def llm_end(
        self, response: LLMResult, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> _Entry:
        details: dict[str, Any] = {}
        entry, run = self.tracker.end("llm", run_id, parent_run_id, kw, details, failed=False)
        _response_details(response, details, run)
        return entry

    def tool_start(
        self,
        serialized: Any,
        input_str: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        kw: Any,
    ) -> _Entry:
        inputs = kw.get("inputs")
        details: dict[str, Any] = {"input": _unpack(inputs) if inputs is not None else input_str}
        tool_call_id = kw.get("tool_call_id")
        if tool_call_id is not None:
            details["tool_call_id"] = tool_call_id
        return self.tracker.start("tool", serialized, run_id, parent_run_id, kw, details)

    def tool_end(self, output: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any) -> _Entry:
        details = {"output": _unpack(output)}
        return self.tracker.end("tool", run_id, parent_run_id, kw, details, failed=False)[0]

    def retriever_start(
        self, serialized: Any, query: str, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> _Entry:
        details: dict[str, Any] = {"query": query}
        return self.tracker.start("retriever", serialized, run_id, parent_run_id, kw, details)

    def retriever_end(
        self, documents: Any, run_id: UUID, parent_run_id: UUID | None, kw: Any
    ) -> _Entry:
        details = {"documents": _unpack(list(documents))}
        return self.tracker.end("retriever", run_id, parent_run_id, kw, details, failed=False)[0]


class AuditCallbackHandler(BaseCallbackHandler):
    """Records a LangChain or LangGraph run into an :class:`AuditService`.

    Pass it in ``config={"callbacks": [handler]}`` (or to a constructor's
    ``callbacks``). One handler may serve many runs, concurrently and from any
    thread. For asyncio code, use :class:`AsyncAuditCallbackHandler`, which does not
    block the event loop even when the service's queue is full.

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

    def _record(self, build: Callable[[], _Entry], callback: str) -> None:
        entry = self._core.entry(build, callback)
        if entry is not None:
            self._core.recorder.record(
                entry.event_type,
                actor=entry.actor,
                resource=entry.resource,
                details=entry.details,
                correlation_id=entry.correlation_id,
            )

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.started`` (``agent.started`` for an agent run)."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        self._record(
            lambda: core.chain_start(serialized, inputs, run_id, parent_run_id, kw),
            "on_chain_start",
        )

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.completed`` (``agent.completed``)."""
        core = self._core
        self._record(lambda: core.chain_end(outputs, run_id, parent_run_id, kwargs), "on_chain_end")

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.failed`` (``agent.failed``)."""
        core = self._core
        self._record(
            lambda: core.failure("chain", error, run_id, parent_run_id, kwargs), "on_chain_error"
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.request`` of a chat model: the messages and the model."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        self._record(
            lambda: core.chat_model_start(serialized, messages, run_id, parent_run_id, kw),
            "on_chat_model_start",
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.request`` of a text-completion LLM: the prompts and the model."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        self._record(
            lambda: core.llm_start(serialized, prompts, run_id, parent_run_id, kw),
            "on_llm_start",
        )

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.response``: the generations, the model, the token usage."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        self._record(lambda: core.llm_end(response, run_id, parent_run_id, kw), "on_llm_end")

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.failed``."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        self._record(lambda: core.failure("llm", error, run_id, parent_run_id, kw), "on_llm_error")

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.invoked``: the tool's arguments."""
        kw = {"tags": tags, "metadata": metadata, "inputs": inputs, **kwargs}
        core = self._core
        self._record(
            lambda: core.tool_start(serialized, input_str, run_id, parent_run_id, kw),
            "on_tool_start",
        )

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.completed``: the tool's output."""
        core = self._core
        self._record(lambda: core.tool_end(output, run_id, parent_run_id, kwargs), "on_tool_end")

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.failed``."""
        core = self._core
        self._record(
            lambda: core.failure("tool", error, run_id, parent_run_id, kwargs), "on_tool_error"
        )

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.started``: the query."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        self._record(
            lambda: core.retriever_start(serialized, query, run_id, parent_run_id, kw),
            "on_retriever_start",
        )

    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.completed``: the documents."""
        core = self._core
        self._record(
            lambda: core.retriever_end(documents, run_id, parent_run_id, kwargs),
            "on_retriever_end",
        )

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.failed``."""
        core = self._core
        self._record(
            lambda: core.failure("retriever", error, run_id, parent_run_id, kwargs),
            "on_retriever_error",
        )


class AsyncAuditCallbackHandler(AsyncCallbackHandler):
    """:class:`AuditCallbackHandler` for asyncio code: records through ``arecord``.

    LangChain awaits its callbacks on the event loop (``ainvoke``, ``astream``,
    LangGraph's async nodes); this handler never blocks it, even when the service's
    queue is full with overflow ``block`` or the service is synchronous. The same
    entries, arguments and guarantees as :class:`AuditCallbackHandler`.
    """

    raise_error = False

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

    async def _record(self, build: Callable[[], _Entry], callback: str) -> None:
        entry = self._core.entry(build, callback)
        if entry is not None:
            await self._core.recorder.arecord(
                entry.event_type,
                actor=entry.actor,
                resource=entry.resource,
                details=entry.details,
                correlation_id=entry.correlation_id,
            )

    async def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.started`` (``agent.started`` for an agent run)."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        await self._record(
            lambda: core.chain_start(serialized, inputs, run_id, parent_run_id, kw),
            "on_chain_start",
        )

    async def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.completed`` (``agent.completed``)."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.chain_end(outputs, run_id, parent_run_id, kw), "on_chain_end"
        )

    async def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``chain.failed`` (``agent.failed``)."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.failure("chain", error, run_id, parent_run_id, kw), "on_chain_error"
        )

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.request`` of a chat model: the messages and the model."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        await self._record(
            lambda: core.chat_model_start(serialized, messages, run_id, parent_run_id, kw),
            "on_chat_model_start",
        )

    async def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.request`` of a text-completion LLM: the prompts and the model."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        await self._record(
            lambda: core.llm_start(serialized, prompts, run_id, parent_run_id, kw),
            "on_llm_start",
        )

    async def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.response``: the generations, the model, the token usage."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(lambda: core.llm_end(response, run_id, parent_run_id, kw), "on_llm_end")

    async def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``llm.failed``."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.failure("llm", error, run_id, parent_run_id, kw), "on_llm_error"
        )

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.invoked``: the tool's arguments."""
        kw = {"tags": tags, "metadata": metadata, "inputs": inputs, **kwargs}
        core = self._core
        await self._record(
            lambda: core.tool_start(serialized, input_str, run_id, parent_run_id, kw),
            "on_tool_start",
        )

    async def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.completed``: the tool's output."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(lambda: core.tool_end(output, run_id, parent_run_id, kw), "on_tool_end")

    async def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``tool.failed``."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.failure("tool", error, run_id, parent_run_id, kw), "on_tool_error"
        )

    async def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.started``: the query."""
        kw = {"tags": tags, "metadata": metadata, **kwargs}
        core = self._core
        await self._record(
            lambda: core.retriever_start(serialized, query, run_id, parent_run_id, kw),
            "on_retriever_start",
        )

    async def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.completed``: the documents."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.retriever_end(documents, run_id, parent_run_id, kw),
            "on_retriever_end",
        )

    async def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``retriever.failed``."""
        kw = {"tags": tags, **kwargs}
        core = self._core
        await self._record(
            lambda: core.failure("retriever", error, run_id, parent_run_id, kw),
            "on_retriever_error",
        )
