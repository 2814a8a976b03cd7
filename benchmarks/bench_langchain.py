"""What the LangChain adapter adds to one callback.

LangChain calls a sync handler's callbacks on the thread running the chain (or
one of its pools), so the whole of ``AuditCallbackHandler.on_tool_end`` /
``on_llm_end`` is time the run waits: the run-table lookup, the details built
from LangChain's objects, ``to_jsonable`` and ``record()`` (redaction, encoding,
enqueue) into an asynchronous service on a SQLite file. Each measured end follows
an untimed start of the same run, as in a real run; the service is flushed
between rounds of 1,000 so that the figures are the handler's cost, not waits
for room in a full queue. For comparison, ``record()`` of a tool-call entry with
the bench's usual ~200-byte details is timed in the same rounds.

Run alone: ``python -m benchmarks.bench_langchain`` prints the medians and p99.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from cleveragents.integrations.langchain import AuditCallbackHandler

from ._common import WARM_UP_ENTRIES, TempService, percentile_us, record_latencies_ns

CALLBACKS = ("tool_end", "llm_end", "record")
ROUNDS = 10
CALLS_PER_ROUND = 1_000

_TOOL_INPUTS = {"city": "Paris", "units": "metric"}
_TOOL_OUTPUT = ToolMessage(
    content="sunny, 21 C in Paris, wind 12 km/h from the west",
    name="get_weather",
    tool_call_id="call_1",
)
_LLM_RESULT = LLMResult(
    generations=[
        [
            ChatGeneration(
                message=AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "get_weather", "args": _TOOL_INPUTS, "id": "call_1"},
                    ],
                    usage_metadata={"input_tokens": 812, "output_tokens": 43, "total_tokens": 855},
                    response_metadata={"model_name": "gpt-5-mini", "finish_reason": "tool_calls"},
                )
            )
        ]
    ]
)
_METADATA = {"langgraph_node": "tools", "langgraph_step": 2}


class _Bench:
    """An async service on a temporary SQLite file and a handler recording into it."""

    def __init__(self) -> None:
        self.fixture = TempService("async")
        self.handler = AuditCallbackHandler(self.fixture.service)
        try:
            self.fixture.warm_up()
            for _ in range(WARM_UP_ENTRIES // 4):
                self.tool_end_ns()
                self.llm_end_ns()
            self.flush()
        except BaseException:
            self.fixture.close()
            raise

    def flush(self) -> None:
        if not self.fixture.service.flush(timeout=60):
            raise RuntimeError(f"flush failed: {self.fixture.service.stats()}")

    def tool_end_ns(self) -> int:
        """One tool run: an untimed on_tool_start, then on_tool_end timed, in ns."""
        handler, run_id = self.handler, uuid.uuid4()
        handler.on_tool_start(
            {"name": "get_weather"},
            str(_TOOL_INPUTS),
            run_id=run_id,
            parent_run_id=None,
            tags=["seq:step:1"],
            metadata=_METADATA,
            inputs=_TOOL_INPUTS,
            tool_call_id="call_1",
        )
        start = time.perf_counter_ns()
        handler.on_tool_end(_TOOL_OUTPUT, run_id=run_id, parent_run_id=None, name="get_weather")
        return time.perf_counter_ns() - start

    def llm_end_ns(self) -> int:
        """One chat model call: an untimed on_chat_model_start, then on_llm_end timed, in ns."""
        handler, run_id = self.handler, uuid.uuid4()
        handler.on_chat_model_start(
            {"name": "ChatOpenAI"},
            [[]],
            run_id=run_id,
            parent_run_id=None,
            metadata=_METADATA,
            invocation_params={"model": "gpt-5-mini"},
        )
        start = time.perf_counter_ns()
        handler.on_llm_end(_LLM_RESULT, run_id=run_id, parent_run_id=None, tags=["seq:step:1"])
        return time.perf_counter_ns() - start

    def samples_ns(self, callback: str) -> list[int]:
        """ROUNDS x CALLS_PER_ROUND timings of ``callback``, sorted, flushed between rounds."""
        if callback not in CALLBACKS:
            raise ValueError(f"callback must be one of {CALLBACKS}, not {callback!r}")
        samples: list[int] = []
        for _ in range(ROUNDS):
            if callback == "record":
                samples += record_latencies_ns(self.fixture.service, CALLS_PER_ROUND)
            else:
                one: Callable[[], int] = (
                    self.tool_end_ns if callback == "tool_end" else self.llm_end_ns
                )
                samples += [one() for _ in range(CALLS_PER_ROUND)]
            self.flush()
        if self.handler.open_runs():
            raise RuntimeError(f"{self.handler.open_runs()} runs left open")
        if self.fixture.service.stats().adapter_failed:
            raise RuntimeError(f"entries lost: {self.fixture.service.stats()}")
        samples.sort()
        return samples

    def close(self) -> None:
        self.fixture.close()


class CallbackLatency:
    """Median and 99th percentile of one callback end of the LangChain handler.

    ``record`` is ``AuditService.record()`` alone (a tool-call entry, ~200 bytes of
    details), timed in the same conditions: the handler's own share is the difference.
    """

    params = CALLBACKS
    param_names = ("callback",)
    unit = "us"

    def setup(self, callback: str) -> None:
        self.bench = _Bench()

    def teardown(self, callback: str) -> None:
        self.bench.close()

    def track_callback_p50_us(self, callback: str) -> float:
        """Median time of one call, in microseconds."""
        return percentile_us(self.bench.samples_ns(callback), 50)

    def track_callback_p99_us(self, callback: str) -> float:
        """99th percentile of the time of one call, in microseconds."""
        return percentile_us(self.bench.samples_ns(callback), 99)


def main() -> None:
    """Print the median and p99 of each callback (and of record() alone)."""
    bench = _Bench()
    try:
        print(f"{'callback':<10} {'p50 us':>8} {'p99 us':>8}   ({ROUNDS} x {CALLS_PER_ROUND})")
        for callback in CALLBACKS:
            samples = bench.samples_ns(callback)
            p50, p99 = percentile_us(samples, 50), percentile_us(samples, 99)
            print(f"{callback:<10} {p50:>8.1f} {p99:>8.1f}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
