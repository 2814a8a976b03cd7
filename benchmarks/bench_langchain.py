"""What the LangChain adapter adds to one callback.

LangChain calls a sync handler's callbacks on the thread running the chain (or
one of its pools), so the whole of ``AuditCallbackHandler.on_tool_end`` /
``on_llm_end`` is time the run waits: the run-table lookup, the details built
from LangChain's objects, ``to_jsonable`` and ``record()`` (redaction, encoding,
enqueue) into an asynchronous service on a SQLite file. Each measured end follows
an untimed start of the same run, as in a real run; the service is flushed
between rounds of 1,000 so that the figures are the handler's cost, not waits
for room in a full queue.

What the adapter adds to ``record()`` is measured against ``record()`` of the very
entries the handler makes (same event type, actor, resource, correlation id and
details; the start entry untimed, then the end entry timed), called directly, in
alternating rounds in the same process.

Run alone: ``python -m benchmarks.bench_langchain`` prints the medians and p99.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from cleveragents.integrations._support import to_jsonable
from cleveragents.integrations.langchain import AuditCallbackHandler

from ._common import WARM_UP_ENTRIES, TempService, percentile_us

#: The callback ends measured.
CALLBACKS = ("tool_end", "llm_end")
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

    def tool_start(self, run_id: uuid.UUID) -> None:
        self.handler.on_tool_start(
            {"name": "get_weather"},
            str(_TOOL_INPUTS),
            run_id=run_id,
            parent_run_id=None,
            tags=["seq:step:1"],
            metadata=_METADATA,
            inputs=_TOOL_INPUTS,
            tool_call_id="call_1",
        )

    def llm_start(self, run_id: uuid.UUID) -> None:
        self.handler.on_chat_model_start(
            {"name": "ChatOpenAI"},
            [[]],
            run_id=run_id,
            parent_run_id=None,
            metadata=_METADATA,
            invocation_params={"model": "gpt-5-mini"},
        )

    def tool_end_ns(self) -> int:
        """One tool run: an untimed on_tool_start, then on_tool_end timed, in ns."""
        run_id = uuid.uuid4()
        self.tool_start(run_id)
        start = time.perf_counter_ns()
        self.handler.on_tool_end(
            _TOOL_OUTPUT, run_id=run_id, parent_run_id=None, name="get_weather"
        )
        return time.perf_counter_ns() - start

    def llm_end_ns(self) -> int:
        """One chat model call: an untimed on_chat_model_start, then on_llm_end timed, in ns."""
        run_id = uuid.uuid4()
        self.llm_start(run_id)
        start = time.perf_counter_ns()
        self.handler.on_llm_end(_LLM_RESULT, run_id=run_id, parent_run_id=None)
        return time.perf_counter_ns() - start

    def entries_of(self, callback: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arguments of the record() calls the handler makes for the run's start and end."""
        core, run_id = self.handler._core, uuid.uuid4()
        if callback == "tool_end":
            started = core.tool_start(
                {"name": "get_weather"},
                str(_TOOL_INPUTS),
                run_id,
                None,
                {"tags": ["seq:step:1"], "metadata": _METADATA, "inputs": _TOOL_INPUTS},
            )
            ended = core.tool_end(_TOOL_OUTPUT, run_id, None, {"name": "get_weather"})
        else:
            started = core.chat_model_start(
                {"name": "ChatOpenAI"},
                [[]],
                run_id,
                None,
                {"metadata": _METADATA, "invocation_params": {"model": "gpt-5-mini"}},
            )
            ended = core.llm_end(_LLM_RESULT, run_id, None, {})
        return _arguments(started), _arguments(ended)

    def callback_ns(self, callback: str, calls: int) -> list[int]:
        """``calls`` timings of the handler's ``callback``."""
        if callback not in CALLBACKS:
            raise ValueError(f"callback must be one of {CALLBACKS}, not {callback!r}")
        one = self.tool_end_ns if callback == "tool_end" else self.llm_end_ns
        samples = [one() for _ in range(calls)]
        self.flush()
        return samples

    def record_ns(self, started: dict[str, Any], ended: dict[str, Any], calls: int) -> list[int]:
        """``calls`` timings of record() of the end entry, each after an untimed record() of
        the start entry (so that the writer has as much to do as under the handler)."""
        record, clock = self.fixture.service.record, time.perf_counter_ns
        samples = [0] * calls
        for i in range(calls):
            uuid.uuid4()  # as the handler's loop makes a run id
            record(**started)
            start = clock()
            record(**ended)
            samples[i] = clock() - start
        self.flush()
        return samples

    def measure(self, callback: str) -> tuple[list[int], list[int]]:
        """Sorted timings of the callback and of record() of its entry, alternating rounds."""
        started, ended = self.entries_of(callback)
        through_handler: list[int] = []
        direct: list[int] = []
        for _ in range(ROUNDS):
            through_handler += self.callback_ns(callback, CALLS_PER_ROUND)
            direct += self.record_ns(started, ended, CALLS_PER_ROUND)
        if self.handler.open_runs():
            raise RuntimeError(f"{self.handler.open_runs()} runs left open")
        if self.fixture.service.stats().adapter_failed:
            raise RuntimeError(f"entries lost: {self.fixture.service.stats()}")
        through_handler.sort()
        direct.sort()
        return through_handler, direct

    def close(self) -> None:
        self.fixture.close()


def _arguments(entry: Any) -> dict[str, Any]:
    """The keyword arguments of record() for one of the handler's entries."""
    return {
        "event_type": entry.event_type,
        "actor": entry.actor,
        "resource": entry.resource,
        "details": to_jsonable(entry.details),
        "correlation_id": entry.correlation_id,
    }


class CallbackLatency:
    """One callback end of the LangChain handler: its time, and what it adds to record().

    ``track_callback_*``: the whole callback (the handler's work and its
    ``record()``). ``track_record_p50_us``: ``record()`` of the same entry called
    directly. ``track_added_p50_us``: the difference of the medians, the adapter's
    own share.
    """

    params = CALLBACKS
    param_names = ("callback",)
    unit = "us"

    def setup(self, callback: str) -> None:
        self.bench = _Bench()
        try:
            self.handler_ns, self.record_ns = self.bench.measure(callback)
        except BaseException:
            self.bench.close()
            raise

    def teardown(self, callback: str) -> None:
        self.bench.close()

    def track_callback_p50_us(self, callback: str) -> float:
        """Median time of one callback, in microseconds."""
        return percentile_us(self.handler_ns, 50)

    def track_callback_p99_us(self, callback: str) -> float:
        """99th percentile of the time of one callback, in microseconds."""
        return percentile_us(self.handler_ns, 99)

    def track_record_p50_us(self, callback: str) -> float:
        """Median of record() of the callback's entry, called directly."""
        return percentile_us(self.record_ns, 50)

    def track_added_p50_us(self, callback: str) -> float:
        """What the adapter adds to record(): callback median minus record() median."""
        return round(percentile_us(self.handler_ns, 50) - percentile_us(self.record_ns, 50), 3)


def main() -> None:
    """Print, per callback: its median and p99, record() of its entry, and the difference."""
    bench = _Bench()
    try:
        print(f"{ROUNDS} x {CALLS_PER_ROUND} calls each, alternating; microseconds")
        print(f"{'callback':<10} {'p50':>7} {'p99':>7} {'record p50':>11} {'added p50':>10}")
        for callback in CALLBACKS:
            handler_ns, record_ns = bench.measure(callback)
            p50, p99 = percentile_us(handler_ns, 50), percentile_us(handler_ns, 99)
            direct = percentile_us(record_ns, 50)
            print(f"{callback:<10} {p50:>7.1f} {p99:>7.1f} {direct:>11.1f} {p50 - direct:>10.1f}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
