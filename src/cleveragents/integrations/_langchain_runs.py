"""The LangChain adapter's run table: which root each run belongs to, its name, its timing.

No LangChain import here: the run ids, names and metadata LangChain passes are
plain values. See :class:`RunTracker`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Hashable, Mapping
from typing import Any, Final, NamedTuple
from uuid import UUID

import structlog

from cleveragents.domain.event_types import AuditEventType as T

__all__ = ["KIND_EVENTS", "Entry", "Run", "RunTracker"]

_log = structlog.get_logger("cleveragents.audit.langchain")

# LangChain v1's create_agent marks its runs (and, by inheritance, their children)
# with this metadata key: the outermost run carrying a new value is the agent.
_AGENT_NAME_KEY: Final = "lc_agent_name"

#: A run's kind -> the event types of its start, its end and its failure.
KIND_EVENTS: Final[dict[str, tuple[T, T, T]]] = {
    "chain": (T.CHAIN_STARTED, T.CHAIN_COMPLETED, T.CHAIN_FAILED),
    "agent": (T.AGENT_STARTED, T.AGENT_COMPLETED, T.AGENT_FAILED),
    "llm": (T.LLM_REQUEST, T.LLM_RESPONSE, T.LLM_FAILED),
    "tool": (T.TOOL_INVOKED, T.TOOL_COMPLETED, T.TOOL_FAILED),
    "retriever": (T.RETRIEVER_STARTED, T.RETRIEVER_COMPLETED, T.RETRIEVER_FAILED),
}


class Run:
    """What the handler remembers of a run between its start and its end."""

    __slots__ = (
        "actor",
        "agent_name",
        "handed_off",
        "kind",
        "model",
        "parent",
        "parent_key",
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
        parent_key: Hashable | None,
        resource: str,
        kind: str,
        actor: str | None,
        agent_name: str | None,
        model: str | None,
    ) -> None:
        self.text = text  # the run id, as the details hold it
        self.root = root
        self.parent = parent
        self.parent_key = parent_key
        self.handed_off = False  # a run under it ended by handing control to another node
        self.resource = resource
        self.kind = kind
        self.actor = actor
        self.agent_name = agent_name
        self.model = model
        self.started_ns = time.perf_counter_ns()


class Entry(NamedTuple):
    """One entry, ready for the recorder."""

    event_type: T
    actor: str | None
    resource: str
    details: dict[str, Any]
    correlation_id: str


class RunTracker:
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
        self._runs: dict[Hashable, Run] = {}  # by _key(run_id)
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
    ) -> Entry:
        """Remember a run that starts; its start entry."""
        name = _name_of(serialized, extra)
        metadata = extra.get("metadata")
        marked = metadata.get(_AGENT_NAME_KEY) if isinstance(metadata, Mapping) else None
        run_key, run_text = _key(run_id), str(run_id)
        parent_key = _key(parent_run_id) if parent_run_id is not None else None
        with self._lock:
            parent = self._runs.get(parent_key) if parent_key is not None else None
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
            run = Run(
                run_text, root, parent_text, parent_key, resource, kind, actor, agent_name, model
            )
            self._remember(run_key, run)
        if model is not None:
            details["model"] = model
        details["run_id"] = run_text
        details["parent_run_id"] = parent_text
        for key in ("tags", "metadata"):
            value = extra.get(key)
            if value:
                details[key] = value
        return Entry(KIND_EVENTS[kind][0], actor, resource, details, root)

    def _remember(self, run_key: Hashable, run: Run) -> None:
        """Keep ``run`` under ``run_key`` and in its root's tree (the lock is held)."""
        self._runs[run_key] = run
        tree = self._trees.get(run.root)
        if tree is None:
            self._trees[run.root] = {run_key}
        else:
            tree.add(run_key)
        if len(self._runs) > self._max_open_runs:
            self._forget_oldest_tree()

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
        handoff: bool = False,
    ) -> tuple[Entry, Run | None]:
        """Forget a run that ended; its end (or failure) entry, and what was remembered.

        ``handoff``: the run ended by handing control to another node of a parent
        graph (LangGraph's ``Command(graph=Command.PARENT)``). The run that handed
        off first is recorded as ``agent.handoff``; the runs the command then passes
        through on its way up, as completed.
        """
        run_key = _key(run_id)
        with self._lock:
            run = self._runs.pop(run_key, None)
            if handoff and run is not None and run.parent_key is not None:
                parent = self._runs.get(run.parent_key)
                if parent is not None:
                    parent.handed_off = True
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
        if handoff and not (run is not None and run.handed_off):
            event_type = T.AGENT_HANDOFF
        else:
            event_type = KIND_EVENTS[kind][2 if failed else 1]
        return Entry(event_type, actor, resource, details, root), run


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
