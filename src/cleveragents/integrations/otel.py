"""Audit any OpenTelemetry-instrumented agent: an SDK ``SpanProcessor`` that records AI spans.

Setup (``pip install 'cleveragents-audit[otel]'``)::

    from cleveragents.integrations.otel import AuditSpanProcessor
    audit = AuditService(Settings(database_url="sqlite:///audit.db"))
    trace.get_tracer_provider().add_span_processor(AuditSpanProcessor(audit))

Each span is classified from its attributes, first match wins:

1. ``gen_ai.operation.name`` (the GenAI semantic conventions: pydantic-ai, the
   OpenTelemetry GenAI instrumentations): ``chat``, ``text_completion``,
   ``generate_content``, ``embeddings`` are LLM calls; ``execute_tool`` a tool;
   ``invoke_agent``, ``create_agent`` an agent; ``retrieval`` a retriever; any
   other value (``invoke_workflow``, ...) a chain step.
2. ``openinference.span.kind`` (OpenInference instrumentations): ``LLM``,
   ``EMBEDDING``; ``TOOL``; ``AGENT``; ``RETRIEVER``, ``RERANKER``; ``GUARDRAIL``;
   ``CHAIN``, ``EVALUATOR``, ``PROMPT`` and any other value: a chain step.
3. ``traceloop.span.kind`` (Traceloop / OpenLLMetry): ``workflow``, ``task``:
   chain; ``agent``; ``tool``. Its LLM spans carry ``llm.request.type``.
4. Older GenAI spans without an operation name: ``gen_ai.tool.name`` makes a
   tool, ``gen_ai.agent.name`` an agent, ``gen_ai.request.model`` or
   ``gen_ai.system`` an LLM call.

Any other span (HTTP, database, the application's own) is not an AI span and is
ignored, unless the processor is made with ``all_spans=True``: then it is a chain
step too, except on the audit writer's own thread (an instrumented database
driver there would otherwise turn every commit into entries for the next).

A span's start records the family's first event (``llm.request``, ``tool.invoked``,
``agent.started``, ``chain.started``, ``retriever.started``) with the attributes
the span started with; its end records the second (``llm.response``, ...) with all
its attributes, status, duration, events, token usage, or, when its status is
ERROR, the failure (``llm.failed``, ``tool.failed``, ...). A guardrail records
only at its end: ``guardrail.passed``, or ``guardrail.triggered`` when its status
is ERROR.

Every entry's ``correlation_id`` is the span's trace id (32 hex digits), and its
``details["otel"]`` holds ``trace_id``, ``span_id`` and ``parent_span_id``, from
the span itself (not from the context current when the processor runs).
Attribute values that are JSON text (tool arguments and results, messages) are
stored parsed, so that redaction sees their keys.

The processor never raises into the SDK: a span it cannot record is logged and
counted in ``stats().adapter_failed``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from cleveragents.infrastructure.trace_context import in_audit_io
from cleveragents.integrations._otel_families import (
    AGENT,
    BY_OPENINFERENCE_KIND,
    BY_OPERATION,
    BY_REQUEST_TYPE,
    BY_TRACELOOP_KIND,
    CHAIN,
    LLM,
    PROVIDER_KEYS,
    SUBJECT_DETAIL,
    SUBJECT_KEYS,
    TOOL,
    USAGE_KEYS,
    Family,
)
from cleveragents.integrations._support import AdapterRecorder

try:
    from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
    from opentelemetry.trace import SpanContext, StatusCode
except ImportError as _missing:
    raise ImportError(
        "cleveragents.integrations.otel needs the OpenTelemetry SDK: "
        "pip install 'cleveragents-audit[otel]'"
    ) from _missing

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource

    from cleveragents.application.services.audit_service import AuditService

__all__ = ["AuditSpanProcessor"]

#: The name failures are logged and counted under.
ADAPTER_NAME: Final = "otel"
_ERROR: Final = StatusCode.ERROR
_OK: Final = StatusCode.OK
# The audit writer's thread: its spans (an instrumented database driver) are never
# recorded, or each commit would make entries for the next one, for ever.
_WRITER_THREAD_NAME: Final = "cleveragents-audit-writer"
# The SDK's default service name, which names no one.
_UNNAMED_SERVICE: Final = "unknown_service"


class AuditSpanProcessor(SpanProcessor):
    """Records the AI spans of an OpenTelemetry ``TracerProvider`` in an audit trail.

    Args:
        audit: the service entries go to; the processor flushes it but never closes it.
        all_spans: also record spans that are not AI spans, as ``chain.*`` entries.
        actor: every entry's actor; by default the ``service.name`` of the span's
            resource (none when it is the SDK's ``unknown_service``).
    """

    def __init__(
        self, audit: AuditService, *, all_spans: bool = False, actor: str | None = None
    ) -> None:
        self._recorder = AdapterRecorder(audit, ADAPTER_NAME)
        self._audit = audit
        self._all_spans = all_spans
        self._actor = actor
        self._shut_down = False
        # The last resource seen and its actor: a provider has one resource.
        self._actor_of: tuple[object, str | None] = (None, None)

    # -- the SpanProcessor interface ------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Record the start of an AI span (a guardrail records only at its end)."""
        if self._shut_down:
            return
        try:
            attributes = _attributes_of(span)
            family = self._family(attributes)
            if family is None or family.started is None:
                return
            details, resource = _subject_details(span, family, attributes)
            if attributes:
                details["attributes"] = _attributes_json(attributes)
            self._recorder.record_json(
                family.started,
                actor=self._actor_for(span.resource),
                resource=_text(resource),
                details=details,
                correlation_id=details["otel"]["trace_id"],
            )
        except Exception as exc:
            self._failed(exc)

    def on_end(self, span: ReadableSpan) -> None:
        """Record the end of an AI span: completed, or failed when its status is ERROR."""
        if self._shut_down:
            return
        try:
            attributes = _attributes_of(span)
            family = self._family(attributes)
            if family is None:
                return
            status, events = span.status, _events_of(span)
            code = status.status_code
            failed = code is _ERROR
            details, resource = _subject_details(span, family, attributes)
            details["status"] = "error" if failed else "ok" if code is _OK else "unset"
            start_ns, end_ns = span.start_time, span.end_time
            if start_ns is not None and end_ns is not None:
                details["duration_ms"] = (end_ns - start_ns) // 1000 / 1000  # to the µs
            if family is LLM:
                _add_llm_results(details, attributes)
            if failed:
                details["error"] = _error(events, status.description)
            if attributes:
                details["attributes"] = _attributes_json(attributes)
            if events:
                details["events"] = [
                    {"name": event.name, "attributes": dict(event.attributes or {})}
                    for event in events
                ]
            self._recorder.record_json(
                family.failed if failed else family.completed,
                actor=self._actor_for(span.resource),
                resource=_text(resource),
                details=details,
                correlation_id=details["otel"]["trace_id"],
            )
        except Exception as exc:
            self._failed(exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until the entries recorded so far are committed; False on timeout or failure."""
        try:
            return self._audit.flush(timeout_millis / 1000)
        except Exception as exc:
            self._failed(exc)
            return False

    def shutdown(self) -> None:
        """Flush the service (it stays open: it is the caller's) and ignore later spans."""
        self._shut_down = True
        try:
            self._audit.flush(self._audit.settings.audit_close_timeout_s)
        except Exception as exc:
            self._failed(exc)

    # -- what a span becomes -------------------------------------------------------------

    def _family(self, attributes: Mapping[str, object]) -> Family | None:
        """The kind of entries a span with these attributes makes; None: not recorded."""
        operation = attributes.get("gen_ai.operation.name")
        if operation is not None:
            return BY_OPERATION.get(operation, CHAIN)
        kind = attributes.get("openinference.span.kind")
        if kind is not None:  # upper case by the spec; some instrumentations differ
            return BY_OPENINFERENCE_KIND.get(kind) or BY_OPENINFERENCE_KIND.get(
                str(kind).upper(), CHAIN
            )
        kind = attributes.get("traceloop.span.kind")
        if kind is not None:
            return BY_TRACELOOP_KIND.get(kind, CHAIN)
        kind = attributes.get("llm.request.type")
        if kind is not None:
            return BY_REQUEST_TYPE.get(kind, LLM)
        if "gen_ai.tool.name" in attributes:
            return TOOL
        if "gen_ai.agent.name" in attributes:  # an agent span names its model too
            return AGENT
        if "gen_ai.request.model" in attributes or "gen_ai.system" in attributes:
            return LLM
        if (
            self._all_spans
            and threading.current_thread().name != _WRITER_THREAD_NAME
            and not in_audit_io()  # a synchronous record()'s own write
        ):
            return CHAIN
        return None

    def _actor_for(self, resource: Resource | None) -> str | None:
        if self._actor is not None:
            return self._actor
        seen, actor = self._actor_of
        if resource is seen:
            return actor
        name = resource.attributes.get("service.name") if resource is not None else None
        actor = name if isinstance(name, str) and not name.startswith(_UNNAMED_SERVICE) else None
        self._actor_of = (resource, actor)
        return actor

    def _failed(self, exc: BaseException) -> None:
        # Never raise into the SDK, not even about a failure to account for a failure.
        with contextlib.suppress(Exception):
            self._audit.note_adapter_failure(ADAPTER_NAME, exc)


def _attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """A copy of the span's attributes.

    The SDK keeps them in a ``BoundedAttributes`` whose mapping interface is
    Python code behind a lock: copying its plain dict is several times faster.
    Any other mapping is copied through the public ``attributes``.
    """
    raw = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(raw) is dict:
        return raw.copy()
    return dict(span.attributes or {})


def _events_of(span: ReadableSpan) -> Sequence[Event]:
    """The span's events; most spans have none, which is known without copying them."""
    return span.events if getattr(span, "_events", True) else ()


def _span_ids(context: SpanContext | None, parent: SpanContext | None) -> dict[str, str]:
    """The span's trace id, span id and (when it has one) parent span id, in hex."""
    if context is None:
        raise ValueError("the span has no span context")
    ids = {  # to_bytes().hex(): several times faster than format(), same text
        "trace_id": context.trace_id.to_bytes(16, "big").hex(),
        "span_id": context.span_id.to_bytes(8, "big").hex(),
    }
    if parent is not None:
        ids["parent_span_id"] = parent.span_id.to_bytes(8, "big").hex()
    return ids


def _subject_details(
    span: ReadableSpan, family: Family, attributes: Mapping[str, object]
) -> tuple[dict[str, Any], object]:
    """The details every entry of ``span`` starts with (ids, name, subject); its resource.

    The resource is what the span acted on (model, tool, agent), else the span's name.
    """
    details: dict[str, Any] = {"otel": _span_ids(span.context, span.parent), "span": span.name}
    subject = _first(attributes, SUBJECT_KEYS[family.name])
    detail = SUBJECT_DETAIL.get(family.name)
    if detail is not None and subject is not None:
        details[detail] = subject
    if family is LLM:
        provider = _first(attributes, PROVIDER_KEYS)
        if provider is not None:
            details["provider"] = provider
    elif family is TOOL:
        call_id = attributes.get("gen_ai.tool.call.id")
        if call_id is not None:
            details["tool_call_id"] = call_id
    return details, span.name if subject is None else subject


def _text(value: object) -> str:
    return value if type(value) is str else str(value)


def _first(attributes: Mapping[str, object], keys: Sequence[str]) -> object:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            return value
    return None


def _add_llm_results(details: dict[str, Any], attributes: Mapping[str, object]) -> None:
    """An LLM span's response model and token usage, under names redaction leaves alone."""
    get = attributes.get
    response_model = get("gen_ai.response.model")
    if response_model is not None:
        details["response_model"] = response_model
    usage: dict[str, object] = {}
    for name, keys in USAGE_KEYS:
        for key in keys:
            value = get(key)
            if value is not None:
                usage[name] = value
                break
    if usage:
        details["usage"] = usage


def _error(events: Sequence[Event], description: str | None) -> dict[str, object]:
    """What went wrong: the last recorded exception's type and message, the status text."""
    error: dict[str, object] = {}
    for event in reversed(events):
        if event.name == "exception" and event.attributes:
            error["type"] = event.attributes.get("exception.type")
            error["message"] = event.attributes.get("exception.message")
            break
    if description:
        error["description"] = description
    return error


def _attributes_json(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes as details: values that are JSON text (arguments, messages) parsed."""
    for key, value in attributes.items():
        if type(value) is str and value[:1] in "{[" and value:
            with contextlib.suppress(orjson.JSONDecodeError):  # if not JSON: kept as text
                attributes[key] = orjson.loads(value)
    return attributes
