"""Audit the OpenAI Agents SDK: a ``TracingProcessor`` that turns traces and spans into entries.

Three lines::

    from agents import add_trace_processor
    from cleveragents.integrations.openai_agents import AuditTracingProcessor
    add_trace_processor(AuditTracingProcessor(audit))

Every entry of a trace carries the trace id as ``correlation_id``; span entries keep
``span_id`` and ``parent_id`` in their details. The actor is the agent the span runs
under (the SDK's agent and turn spans say which).

=====================  ===========================================================
SDK trace or span      entries
=====================  ===========================================================
trace                  ``chain.started``; ``chain.completed`` (``chain.failed`` if an
                       agent or the run's task failed); the workflow name is the resource
agent                  ``agent.started``; ``agent.completed`` or ``agent.failed``
generation, response   ``llm.request`` (model, config); ``llm.response`` (input,
                       output, usage) or ``llm.failed``
function (a tool)      ``tool.invoked`` (the arguments); ``tool.completed`` (the
                       output) or ``tool.failed``
handoff                ``agent.handoff`` (from the actor to the resource)
guardrail              ``guardrail.triggered`` or ``guardrail.passed``
custom                 ``chain.started``; ``chain.completed`` or ``chain.failed``
task, turn             none: the trace and the agent say it; their errors make the
                       trace's and the agent's last entry a failure
others (MCP listing,   none
speech, transcription)
=====================  ===========================================================

The SDK fills in a tool call's arguments only after it announced the function span,
so ``tool.invoked`` is written once they are there: before the first span nested in
the tool, or when the tool ends. Likewise a model's input is known only at the end
of its span, so it is in ``llm.response``.

Nothing here raises into the SDK: an event that cannot be recorded is logged and
counted in ``stats().adapter_failed``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import structlog

from cleveragents.application.services.audit_service import AuditService
from cleveragents.domain.event_types import AuditEventType
from cleveragents.integrations._support import AdapterRecorder

try:
    from agents.tracing import Span, Trace, TracingProcessor
    from agents.tracing.span_data import (
        AgentSpanData,
        CustomSpanData,
        FunctionSpanData,
        GenerationSpanData,
        GuardrailSpanData,
        HandoffSpanData,
        ResponseSpanData,
        TaskSpanData,
        TurnSpanData,
    )
except ImportError as exc:
    raise ImportError(
        "cleveragents.integrations.openai_agents needs the OpenAI Agents SDK:"
        " pip install 'cleveragents-audit[openai-agents]'"
    ) from exc

__all__ = ["AuditTracingProcessor"]

_log = structlog.get_logger("cleveragents.audit")

#: The name failures are counted and logged under.
ADAPTER_NAME = "openai-agents"

_E = AuditEventType


class AuditTracingProcessor(TracingProcessor):
    """Records the SDK's traces and spans in ``audit``; see the module docstring for the map.

    Register it with ``agents.add_trace_processor`` (next to the SDK's exporter) or
    ``agents.set_trace_processors([...])`` (instead of it). The service stays the
    caller's: :meth:`shutdown` and :meth:`force_flush` flush it, never close it.
    Thread-safe, as the SDK requires.
    """

    def __init__(self, audit: AuditService) -> None:
        if not isinstance(audit, AuditService):
            raise TypeError(f"audit must be an AuditService, not {type(audit).__name__}")
        self._recorder = AdapterRecorder(audit, ADAPTER_NAME)
        # Open agent and turn spans: span id -> the agent's name (the actor of their children).
        self._agents: dict[str, str] = {}
        # Function spans whose tool.invoked waits for the arguments: span id -> span.
        self._pending_tools: dict[str, Span[Any]] = {}
        # Errors of turn spans, for their agent's end: agent span id -> error.
        self._agent_errors: dict[str, Any] = {}
        # Traces with a failed agent or task: trace id -> the first error.
        self._trace_errors: dict[str, Any] = {}
        # The agent and turn spans of each open trace, forgotten at its end even if a
        # span never ended (a cancelled run): trace id -> span ids.
        self._trace_spans: dict[str, list[str]] = {}

    # -- traces --------------------------------------------------------------------------

    def on_trace_start(self, trace: Trace) -> None:
        """``chain.started``, the workflow name as the resource."""
        try:
            details = {
                "group_id": getattr(trace, "group_id", None),
                "metadata": getattr(trace, "metadata", None),
            }
            self._record(_E.CHAIN_STARTED, None, trace.name, details, trace.trace_id)
        except Exception as exc:
            self._failed(exc, _E.CHAIN_STARTED)

    def on_trace_end(self, trace: Trace) -> None:
        """``chain.completed``, or ``chain.failed`` when an agent or the run's task failed."""
        try:
            self._forget_trace(trace.trace_id)
            error = self._trace_errors.pop(trace.trace_id, None)
            event = _E.CHAIN_COMPLETED if error is None else _E.CHAIN_FAILED
            details = {} if error is None else {"error": error}
            self._record(event, None, trace.name, details, trace.trace_id)
        except Exception as exc:
            self._failed(exc, _E.CHAIN_COMPLETED)

    # -- spans ---------------------------------------------------------------------------

    def on_span_start(self, span: Span[Any]) -> None:
        """The start entry of ``span``'s kind (see the module docstring)."""
        try:
            parent_id = span.parent_id
            if parent_id is not None and parent_id in self._pending_tools:
                self._tool_invoked(parent_id)  # a span nested in a tool: its arguments are set
            data = span.span_data
            kind = type(data)
            if kind is AgentSpanData:
                self._agents[span.span_id] = data.name
                self._trace_spans.setdefault(span.trace_id, []).append(span.span_id)
                self._span(_E.AGENT_STARTED, span, data.name, data.name, {})
            elif kind is TurnSpanData:
                self._agents[span.span_id] = data.agent_name
                self._trace_spans.setdefault(span.trace_id, []).append(span.span_id)
            elif kind is GenerationSpanData:
                config = {"model": data.model, "model_config": data.model_config}
                self._span(_E.LLM_REQUEST, span, self._actor(span), data.model, config)
            elif kind is ResponseSpanData:
                self._span(_E.LLM_REQUEST, span, self._actor(span), None, {})
            elif kind is FunctionSpanData:
                self._pending_tools[span.span_id] = span
            elif kind is CustomSpanData:
                self._span(_E.CHAIN_STARTED, span, self._actor(span), data.name, {})
        except Exception as exc:
            self._failed(exc, None)

    def on_span_end(self, span: Span[Any]) -> None:
        """The end entry of ``span``'s kind (see the module docstring)."""
        try:
            data = span.span_data
            kind = type(data)
            if kind is FunctionSpanData:
                self._tool_end(span, data)
            elif kind is GenerationSpanData:
                self._generation_end(span, data)
            elif kind is AgentSpanData:
                self._agent_end(span, data)
            elif kind is TurnSpanData:
                self._agents.pop(span.span_id, None)
                if span.error is not None and span.parent_id is not None:
                    self._agent_errors.setdefault(span.parent_id, span.error)
            elif kind is ResponseSpanData:
                self._response_end(span, data)
            elif kind is HandoffSpanData:
                details = {"from_agent": data.from_agent, "to_agent": data.to_agent}
                if span.error is not None:
                    details["error"] = span.error
                self._span(_E.AGENT_HANDOFF, span, data.from_agent, data.to_agent, details)
            elif kind is GuardrailSpanData:
                event = _E.GUARDRAIL_TRIGGERED if data.triggered else _E.GUARDRAIL_PASSED
                self._span(event, span, self._actor(span), data.name, {})
            elif kind is CustomSpanData:
                event = _E.CHAIN_COMPLETED if span.error is None else _E.CHAIN_FAILED
                details = {"data": data.data}
                self._span(event, span, self._actor(span), data.name, _ended(span, details))
            elif kind is TaskSpanData and span.error is not None:
                self._trace_errors.setdefault(span.trace_id, span.error)
        except Exception as exc:
            self._failed(exc, None)

    def _agent_end(self, span: Span[Any], data: AgentSpanData) -> None:
        self._agents.pop(span.span_id, None)
        error = span.error or self._agent_errors.pop(span.span_id, None)
        details: dict[str, Any] = {
            "handoffs": data.handoffs,
            "tools": data.tools,
            "output_type": data.output_type,
        }
        if error is None:
            self._span(_E.AGENT_COMPLETED, span, data.name, data.name, details)
            return
        details["error"] = error
        self._trace_errors.setdefault(span.trace_id, error)
        self._span(_E.AGENT_FAILED, span, data.name, data.name, details)

    def _generation_end(self, span: Span[Any], data: GenerationSpanData) -> None:
        details: dict[str, Any] = {
            "model": data.model,
            "usage": data.usage,
            "input": data.input,
            "output": data.output,
        }
        event = _E.LLM_RESPONSE if span.error is None else _E.LLM_FAILED
        self._span(event, span, self._actor(span), data.model, _ended(span, details))

    def _response_end(self, span: Span[Any], data: ResponseSpanData) -> None:
        response = data.response
        model = None if response is None else response.model
        usage: Any = data.usage
        if usage is None and response is not None:
            usage = response.usage
        details: dict[str, Any] = {
            "model": model,
            "response_id": None if response is None else response.id,
            "usage": usage,
            "input": data.input,
            "output": None if response is None else response.output,
        }
        event = _E.LLM_RESPONSE if span.error is None else _E.LLM_FAILED
        self._span(event, span, self._actor(span), model, _ended(span, details))

    def _tool_end(self, span: Span[Any], data: FunctionSpanData) -> None:
        self._tool_invoked(span.span_id)
        details = {"output": data.output}
        event = _E.TOOL_COMPLETED if span.error is None else _E.TOOL_FAILED
        self._span(event, span, self._actor(span), data.name, _ended(span, details))

    def _forget_trace(self, trace_id: str) -> None:
        """At a trace's end: write its tool calls still waiting, forget its open spans."""
        for span_id, span in list(self._pending_tools.items()):
            if span.trace_id == trace_id:
                self._tool_invoked(span_id)
        for span_id in self._trace_spans.pop(trace_id, ()):
            self._agents.pop(span_id, None)
            self._agent_errors.pop(span_id, None)

    def _tool_invoked(self, span_id: str) -> None:
        """``tool.invoked`` for a function span still waiting for it (at most once)."""
        span = self._pending_tools.pop(span_id, None)
        if span is None:
            return
        data: FunctionSpanData = span.span_data
        details: dict[str, Any] = {"input": _arguments(data.input), "started_at": span.started_at}
        if data.mcp_data is not None:
            details["mcp_data"] = data.mcp_data
        self._span(_E.TOOL_INVOKED, span, self._actor(span), data.name, details)

    # -- helpers -------------------------------------------------------------------------

    def _actor(self, span: Span[Any]) -> str | None:
        parent_id = span.parent_id
        return None if parent_id is None else self._agents.get(parent_id)

    def _span(
        self,
        event_type: AuditEventType,
        span: Span[Any],
        actor: str | None,
        resource: str | None,
        details: dict[str, Any],
    ) -> None:
        details["span_id"] = span.span_id
        details["parent_id"] = span.parent_id
        self._record(event_type, actor, resource, details, span.trace_id)

    def _record(
        self,
        event_type: AuditEventType,
        actor: str | None,
        resource: str | None,
        details: dict[str, Any],
        correlation_id: str,
    ) -> None:
        """Record the values as they are; converted (made JSON, clipped) if record() refuses them.

        The SDK's span data is JSON already (its own exporter sends it as such), so
        the conversion is rarely needed: trying without it first is the fast path.
        """
        self._recorder.record_json(
            event_type,
            actor=actor,
            resource=resource,
            details=details,
            correlation_id=correlation_id,
        )

    def _failed(self, exc: BaseException, event_type: AuditEventType | None) -> None:
        with contextlib.suppress(Exception):
            self._recorder.audit.note_adapter_failure(
                ADAPTER_NAME, exc, event_type=None if event_type is None else event_type.value
            )

    # -- lifecycle -----------------------------------------------------------------------

    def open_spans(self) -> int:
        """How many agent, turn and tool spans the processor remembers now (started, not ended)."""
        return len(self._agents) + len(self._pending_tools)

    def shutdown(self, timeout: float | None = None) -> None:
        """Write the tool calls still waiting for ``tool.invoked``, then flush the service.

        The service stays open: it is the caller's to close.
        """
        for span_id in list(self._pending_tools):
            try:
                self._tool_invoked(span_id)
            except Exception as exc:
                self._failed(exc, _E.TOOL_INVOKED)
        self._flush(timeout)

    def force_flush(self) -> None:
        """Wait until every entry recorded so far is committed; the service stays open."""
        self._flush(None)

    def _flush(self, timeout: float | None) -> None:
        audit = self._recorder.audit
        if audit.closed:  # closed by its owner (its close drained the queue): nothing to wait for
            return
        try:
            done = audit.flush(timeout)
        except Exception as exc:
            _log.warning("audit_adapter_flush_failed", adapter=ADAPTER_NAME, error=repr(exc))
            return
        if not done:
            _log.warning("audit_adapter_flush_incomplete", adapter=ADAPTER_NAME, timeout_s=timeout)


def _ended(span: Span[Any], details: dict[str, Any]) -> dict[str, Any]:
    """``details`` with the span's error, when it has one."""
    error = span.error
    if error is not None:
        details["error"] = error
    return details


def _arguments(value: object) -> object:
    """A tool's JSON arguments as an object (so secrets under their keys are redacted)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed: object = orjson.loads(value)
            return parsed
    return value
