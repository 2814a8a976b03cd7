"""What the OpenTelemetry adapter costs the agent's thread.

``AuditSpanProcessor.on_end`` runs synchronously in the thread that ends a span,
so its whole time is what the adapter adds to one span end (and ``on_start`` to
one span start). The spans are real ``ReadableSpan`` objects made by the SDK: a
GenAI ``chat`` span with usage (14 attributes) and an ``execute_tool`` span with
JSON arguments and result; the processor records into an asynchronous service on
a SQLite file, flushed between rounds so the queue never fills. A plain
``record()`` of the benchmark entry is measured in the same rounds, for scale.

The trace context: what carrying the current span's ids adds to ``record()``,
side by side in one process, in alternating rounds: the setting off, OpenTelemetry
not imported (``opentelemetry.trace`` hidden from ``sys.modules`` for the round:
the code path of a process that never imported it), imported with no span
current, and a span current.

Run ``python -m benchmarks.bench_otel`` for a printed summary.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from cleveragents.infrastructure import trace_context
from cleveragents.integrations.otel import AuditSpanProcessor

from ._common import TempService, percentile_us, record_latencies_ns

SPAN_KINDS = ("chat", "tool")
CONTEXTS = ("setting_off", "not_imported", "no_span", "span")

# name, attributes at start, attributes set before the end
_SPANS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "chat": (
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
            "server.address": "api.openai.com",
            "server.port": 443,
        },
        {
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.response.id": "chatcmpl-9f8e7d6c5b4a",
            "gen_ai.response.finish_reasons": ("tool_calls",),
            "gen_ai.usage.input_tokens": 1234,
            "gen_ai.usage.output_tokens": 56,
            "gen_ai.conversation.id": "conv-42",
            "gen_ai.agent.name": "analyst",
        },
    ),
    "tool": (
        "execute_tool web.search",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "web.search",
            "gen_ai.tool.call.id": "call_7f3c2a9e",
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.arguments": json.dumps(
                {"query": "quarterly revenue growth ACME Corp 2024", "max_results": 10}
            ),
        },
        {"gen_ai.tool.call.result": json.dumps({"hits": 10, "top": "acme.com/q3"})},
    ),
}

ROUNDS = 10
CALLS_PER_ROUND = 2_000
FLUSH_TIMEOUT_S = 60.0


class _Collect(SpanProcessor):
    """Keeps every ended span."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def make_spans(kind: str, count: int) -> tuple[list[ReadableSpan], list[Span]]:
    """``count`` ended spans of ``kind`` as the SDK hands them to on_end, and ``count``
    started (not ended) ones as it hands them to on_start."""
    name, at_start, before_end = _SPANS[kind]
    collect = _Collect()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("benchmarks.bench_otel")
    started: list[Span] = []
    for _ in range(count):
        with tracer.start_as_current_span(name, attributes=at_start) as span:
            span.set_attributes(before_end)
        started.append(tracer.start_span(name, attributes=at_start))  # type: ignore[arg-type]
    return collect.spans, started


def _latencies_ns(call: Callable[[Any], None], items: list[Any]) -> list[int]:
    clock = time.perf_counter_ns
    samples = [0] * len(items)
    for i, item in enumerate(items):
        start = clock()
        call(item)
        samples[i] = clock() - start
    return samples


class _Adapter:
    """An async service on a temporary file, an AuditSpanProcessor on it, and spans."""

    def __init__(self, kind: str) -> None:
        self.ended, self.started = make_spans(kind, CALLS_PER_ROUND)
        self.fixture = TempService("async")
        self.fixture.warm_up()
        self.processor = AuditSpanProcessor(self.fixture.service)

    def rounds(self) -> dict[str, list[int]]:
        """ROUNDS rounds of on_end, on_start and record(); sorted samples of each."""
        service = self.fixture.service
        before = service.count()
        samples: dict[str, list[int]] = {"on_end": [], "on_start": [], "record": []}
        for _ in range(ROUNDS):
            samples["on_end"] += _latencies_ns(self.processor.on_end, self.ended)
            self._flush()
            samples["on_start"] += _latencies_ns(self.processor.on_start, self.started)
            self._flush()
            samples["record"] += record_latencies_ns(service, CALLS_PER_ROUND)
            self._flush()
        recorded = service.count() - before
        if recorded != 3 * ROUNDS * CALLS_PER_ROUND or service.stats().adapter_failed:
            raise RuntimeError(f"entries were lost: {recorded} persisted, {service.stats()}")
        for values in samples.values():
            values.sort()
        return samples

    def _flush(self) -> None:
        if not self.fixture.service.flush(timeout=FLUSH_TIMEOUT_S):
            raise RuntimeError(f"flush failed: {self.fixture.service.stats()}")

    def close(self) -> None:
        self.fixture.close()


class SpanEndLatency:
    """Single on_end / on_start calls with real SDK spans; record() alongside, for scale.

    10 rounds of 2,000 calls of each, the queue flushed between rounds.
    """

    params = SPAN_KINDS
    param_names = ("span",)
    unit = "us"

    def setup(self, kind: str) -> None:
        self.adapter = _Adapter(kind)

    def teardown(self, kind: str) -> None:
        self.adapter.close()

    def track_on_end_p50_us(self, kind: str) -> float:
        """Median of what the processor adds to one span end, in microseconds."""
        return percentile_us(self.adapter.rounds()["on_end"], 50)

    def track_on_end_p99_us(self, kind: str) -> float:
        """99th percentile of what the processor adds to one span end."""
        return percentile_us(self.adapter.rounds()["on_end"], 99)

    def track_on_start_p50_us(self, kind: str) -> float:
        """Median of what the processor adds to one span start."""
        return percentile_us(self.adapter.rounds()["on_start"], 50)

    def track_record_p50_us(self, kind: str) -> float:
        """Median of one plain record() in the same rounds: the scale of the figures above."""
        return percentile_us(self.adapter.rounds()["record"], 50)


@contextmanager
def _without_opentelemetry() -> Iterator[None]:
    """Hide ``opentelemetry.trace`` from sys.modules, as if never imported."""
    module = sys.modules.pop("opentelemetry.trace")
    cached = trace_context._get_current_span
    trace_context._get_current_span = None
    try:
        yield
    finally:
        sys.modules["opentelemetry.trace"] = module
        trace_context._get_current_span = cached


class _Contexts:
    """Two async services (trace context on and off) and a span to make current."""

    def __init__(self) -> None:
        self.on = TempService("async")
        try:
            self.off = TempService("async", audit_otel_context=False)
        except BaseException:
            self.on.close()
            raise
        self.on.warm_up()
        self.off.warm_up()
        provider = TracerProvider(shutdown_on_exit=False)
        self.span = provider.get_tracer("benchmarks.bench_otel").start_span("request")

    def rounds(self) -> dict[str, list[int]]:
        """ROUNDS alternating rounds of record() in each context; sorted samples."""
        samples: dict[str, list[int]] = {context: [] for context in CONTEXTS}
        for _ in range(ROUNDS):
            samples["setting_off"] += record_latencies_ns(self.off.service, CALLS_PER_ROUND)
            with _without_opentelemetry():
                samples["not_imported"] += record_latencies_ns(self.on.service, CALLS_PER_ROUND)
            samples["no_span"] += record_latencies_ns(self.on.service, CALLS_PER_ROUND)
            with trace.use_span(self.span):
                samples["span"] += record_latencies_ns(self.on.service, CALLS_PER_ROUND)
            for fixture in (self.on, self.off):
                if not fixture.service.flush(timeout=FLUSH_TIMEOUT_S):
                    raise RuntimeError(f"flush failed: {fixture.service.stats()}")
        for values in samples.values():
            values.sort()
        return samples

    def close(self) -> None:
        # TempService.close() checks that no writer thread is left: stop both writers first.
        try:
            self.off.service.close()
            self.on.close()
        finally:
            self.off.close()


class TraceContextCost:
    """record() p50 with the trace context: off, not imported, no span current, a span current.

    Alternating rounds (10 x 2,000 calls each) in one process.
    """

    params = CONTEXTS
    param_names = ("context",)
    unit = "us"

    def setup(self, context: str) -> None:
        self.contexts = _Contexts()

    def teardown(self, context: str) -> None:
        self.contexts.close()

    def track_record_p50_us(self, context: str) -> float:
        """Median of one record() in this context, in microseconds."""
        return percentile_us(self.contexts.rounds()[context], 50)


def main() -> None:
    """Print every figure of this module from one run of each setup."""
    for kind in SPAN_KINDS:
        adapter = _Adapter(kind)
        try:
            samples = adapter.rounds()
        finally:
            adapter.close()
        end, start, record = samples["on_end"], samples["on_start"], samples["record"]
        print(
            f"{kind:5} span: on_end p50 {percentile_us(end, 50):6.2f} us, "
            f"p99 {percentile_us(end, 99):7.2f} us; "
            f"on_start p50 {percentile_us(start, 50):6.2f} us, "
            f"p99 {percentile_us(start, 99):7.2f} us; plain record() p50 "
            f"{percentile_us(record, 50):6.2f} us"
        )
    contexts = _Contexts()
    try:
        samples = contexts.rounds()
    finally:
        contexts.close()
    figures = ", ".join(
        f"{context} {percentile_us(samples[context], 50):.2f}" for context in CONTEXTS
    )
    print(f"record() p50 us with the trace context: {figures}")


if __name__ == "__main__":
    main()
