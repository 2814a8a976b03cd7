"""What AuditTracingProcessor adds to one span end of the OpenAI Agents SDK.

``on_span_end`` is called directly with real, finished SDK span objects (``SpanImpl``
with the SDK's own span data), as the SDK calls it when a span ends, into an
asynchronous service on a SQLite file. What it costs is everything the SDK waits
for: the mapping to an entry, the conversion to JSON, ``record()`` (redaction,
validation, encoding, enqueue). Three span kinds:

- ``agent``: an agent span ending (``agent.completed``: tools, handoffs, output type);
- ``function``: a tool call ending (``tool.completed`` with its output), its
  ``tool.invoked`` already written, as in a run;
- ``generation``: a model call ending (``llm.response`` with a two-message input,
  a tool-call output and the token usage).

Rounds of 2,000 calls, each round flushed before the next, so the figure is the
processor's own cost with the writer draining alongside, never waits for room in a
full queue (``bench_record`` has those). The goal: a median of at most 15 us.

Run ``python -m benchmarks.bench_openai_agents`` to print the figures.
"""

from __future__ import annotations

import time
from typing import Any

from agents.tracing import (
    AgentSpanData,
    FunctionSpanData,
    GenerationSpanData,
    Span,
    SpanData,
    gen_span_id,
    gen_trace_id,
)
from agents.tracing.processor_interface import TracingProcessor
from agents.tracing.spans import SpanImpl

from cleveragents.domain.entry import AuditLogEntry
from cleveragents.integrations.openai_agents import AuditTracingProcessor

from ._common import TempService, percentile_us

#: The span kinds measured.
KINDS = ("agent", "function", "generation")
#: The entry each kind's span end makes.
END_EVENTS = {
    "agent": "agent.completed",
    "function": "tool.completed",
    "generation": "llm.response",
}
#: The goal for the median, in microseconds.
GOAL_P50_US = 15.0


class _Unused(TracingProcessor):
    """The processor a span would report its own start and end to: the benchmark calls ours."""

    def on_trace_start(self, trace: Any) -> None:
        """Nothing."""

    def on_trace_end(self, trace: Any) -> None:
        """Nothing."""

    def on_span_start(self, span: Any) -> None:
        """Nothing."""

    def on_span_end(self, span: Any) -> None:
        """Nothing."""

    def shutdown(self) -> None:
        """Nothing."""

    def force_flush(self) -> None:
        """Nothing."""


def span_data(kind: str) -> SpanData:
    """The data of a realistic span of ``kind``, as the SDK fills it by the span's end."""
    if kind == "agent":
        return AgentSpanData(
            name="Triage", handoffs=["Billing"], tools=["weather", "search"], output_type="str"
        )
    if kind == "function":
        return FunctionSpanData(
            name="weather", input='{"city": "Paris", "unit": "C"}', output="sunny, 21 C"
        )
    if kind == "generation":
        return GenerationSpanData(
            input=[
                {"role": "system", "content": "You are a helpful travel assistant."},
                {"role": "user", "content": "What's the weather in Paris tomorrow?"},
            ],
            output=[
                {
                    "type": "function_call",
                    "name": "weather",
                    "call_id": "call_1",
                    "arguments": '{"city": "Paris", "unit": "C"}',
                }
            ],
            model="gpt-4.1-mini",
            model_config={"temperature": 0.2},
            usage={"input_tokens": 412, "output_tokens": 23},
        )
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def ended_spans(kind: str, count: int) -> list[Span[Any]]:
    """``count`` finished spans of ``kind`` in one trace, each a child of one turn span."""
    trace_id = gen_trace_id()
    parent_id = gen_span_id()
    spans: list[Span[Any]] = []
    unused = _Unused()
    for _ in range(count):
        span = SpanImpl(trace_id, None, parent_id, unused, span_data(kind), None)
        span.start()
        span.finish()
        spans.append(span)
    return spans


def span_end_latencies_ns(
    processor: AuditTracingProcessor, spans: list[Span[Any]], fixture: TempService
) -> list[int]:
    """``on_span_end`` once per span, each call timed; flushed afterwards (never a full queue)."""
    on_span_end = processor.on_span_end
    clock = time.perf_counter_ns
    samples = [0] * len(spans)
    for i, span in enumerate(spans):
        start = clock()
        on_span_end(span)
        samples[i] = clock() - start
    if not fixture.service.flush(timeout=60):
        raise RuntimeError(f"flush failed: {fixture.service.stats()}")
    return samples


def record_latencies_ns(entry: AuditLogEntry, calls: int, fixture: TempService) -> list[int]:
    """``record()`` of ``entry``'s values ``calls`` times, each timed; flushed afterwards."""
    record = fixture.service.record
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        record(
            entry.event_type,
            actor=entry.actor,
            resource=entry.resource,
            details=entry.details,
            correlation_id=entry.correlation_id,
        )
        samples[i] = clock() - start
    if not fixture.service.flush(timeout=60):
        raise RuntimeError(f"flush failed: {fixture.service.stats()}")
    return samples


def measure(kind: str, rounds: int, calls_per_round: int) -> tuple[list[int], list[int]]:
    """Sorted latencies in ns: ``on_span_end`` of ``kind``, and ``record()`` of the same entry.

    ``rounds`` alternating rounds of ``calls_per_round`` calls each, on one service,
    so the machine's load weighs on both alike.
    """
    fixture = TempService("async")
    try:
        fixture.warm_up()
        processor = AuditTracingProcessor(fixture.service)
        span_end_latencies_ns(processor, ended_spans(kind, 200), fixture)  # warm-up
        entry = fixture.service.query(event_type=END_EVENTS[kind], limit=1)[0]
        spans: list[int] = []
        records: list[int] = []
        for _ in range(rounds):
            spans += span_end_latencies_ns(processor, ended_spans(kind, calls_per_round), fixture)
            records += record_latencies_ns(entry, calls_per_round, fixture)
        if fixture.service.stats().adapter_failed:
            raise RuntimeError(f"the processor failed to record: {fixture.service.stats()}")
    finally:
        fixture.close()
    spans.sort()
    records.sort()
    return spans, records


class SpanEndCost:
    """What the processor adds to one span end: median and p99, in microseconds.

    ``record()`` of the very entry the processor makes is measured alongside, in
    alternating rounds: the processor's own share is the difference of the medians.
    """

    params = KINDS
    param_names = ("kind",)
    unit = "us"
    rounds = 10
    calls_per_round = 2_000

    def setup(self, kind: str) -> None:
        self.spans, self.records = measure(kind, self.rounds, self.calls_per_round)

    def track_span_end_p50_us(self, kind: str) -> float:
        """Median time of one on_span_end call, in microseconds."""
        return percentile_us(self.spans, 50)

    def track_span_end_p99_us(self, kind: str) -> float:
        """99th percentile of the time of one on_span_end call, in microseconds."""
        return percentile_us(self.spans, 99)

    def track_record_same_entry_p50_us(self, kind: str) -> float:
        """Median time of record() of the entry on_span_end makes, in microseconds."""
        return percentile_us(self.records, 50)

    def track_processor_share_p50_us(self, kind: str) -> float:
        """on_span_end's median minus record()'s: the mapping and JSON conversion, in us."""
        return round(percentile_us(self.spans, 50) - percentile_us(self.records, 50), 3)


def main() -> None:
    """Print the figures of every span kind."""
    rounds, calls = SpanEndCost.rounds, SpanEndCost.calls_per_round
    print(f"on_span_end vs record() of the same entry, {rounds} alternating rounds x {calls}")
    print(f"{'kind':<12}{'p50 us':>9}{'p99 us':>9}{'record p50':>12}{'record p99':>12}{'share':>8}")
    for kind in KINDS:
        spans, records = measure(kind, rounds, calls)
        p50, p99 = percentile_us(spans, 50), percentile_us(spans, 99)
        r50, r99 = percentile_us(records, 50), percentile_us(records, 99)
        verdict = "" if p50 <= GOAL_P50_US else f"  (p50 over the {GOAL_P50_US:g} us goal)"
        print(f"{kind:<12}{p50:>9.2f}{p99:>9.2f}{r50:>12.2f}{r99:>12.2f}{p50 - r50:>8.2f}{verdict}")


if __name__ == "__main__":
    main()
