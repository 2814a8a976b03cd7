"""What an OpenTelemetry span becomes: the family of entries it makes, and where it names things.

:mod:`cleveragents.integrations.otel` classifies each span from its attributes with
these tables (see its docstring for the order) and reads the subject, provider and
token usage of its entries from the attribute keys listed here.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from cleveragents.domain.event_types import AuditEventType

__all__ = [
    "AGENT",
    "BY_OPENINFERENCE_KIND",
    "BY_OPERATION",
    "BY_REQUEST_TYPE",
    "BY_TRACELOOP_KIND",
    "CHAIN",
    "GUARDRAIL",
    "LLM",
    "PROVIDER_KEYS",
    "RETRIEVER",
    "SUBJECT_DETAIL",
    "SUBJECT_KEYS",
    "TOOL",
    "USAGE_KEYS",
    "Family",
]


class Family(NamedTuple):
    """The entries one kind of span makes: at its start (if any), its end, its failure."""

    name: str
    started: AuditEventType | None
    completed: AuditEventType
    failed: AuditEventType


LLM = Family(
    "llm", AuditEventType.LLM_REQUEST, AuditEventType.LLM_RESPONSE, AuditEventType.LLM_FAILED
)
TOOL = Family(
    "tool", AuditEventType.TOOL_INVOKED, AuditEventType.TOOL_COMPLETED, AuditEventType.TOOL_FAILED
)
AGENT = Family(
    "agent",
    AuditEventType.AGENT_STARTED,
    AuditEventType.AGENT_COMPLETED,
    AuditEventType.AGENT_FAILED,
)
CHAIN = Family(
    "chain",
    AuditEventType.CHAIN_STARTED,
    AuditEventType.CHAIN_COMPLETED,
    AuditEventType.CHAIN_FAILED,
)
RETRIEVER = Family(
    "retriever",
    AuditEventType.RETRIEVER_STARTED,
    AuditEventType.RETRIEVER_COMPLETED,
    AuditEventType.RETRIEVER_FAILED,
)
GUARDRAIL = Family(
    "guardrail", None, AuditEventType.GUARDRAIL_PASSED, AuditEventType.GUARDRAIL_TRIGGERED
)

BY_OPERATION: Final[dict[object, Family]] = {
    "chat": LLM,
    "text_completion": LLM,
    "generate_content": LLM,
    "embeddings": LLM,
    "execute_tool": TOOL,
    "invoke_agent": AGENT,
    "create_agent": AGENT,
    "retrieval": RETRIEVER,
}
BY_OPENINFERENCE_KIND: Final[dict[object, Family]] = {
    "LLM": LLM,
    "EMBEDDING": LLM,
    "TOOL": TOOL,
    "AGENT": AGENT,
    "RETRIEVER": RETRIEVER,
    "RERANKER": RETRIEVER,
    "GUARDRAIL": GUARDRAIL,
}
BY_TRACELOOP_KIND: Final[dict[object, Family]] = {"agent": AGENT, "tool": TOOL}
BY_REQUEST_TYPE: Final[dict[object, Family]] = {"rerank": RETRIEVER}

# Where each family finds the name of what it acted on (the entry's resource), in order.
SUBJECT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "llm": ("gen_ai.request.model", "llm.model_name", "embedding.model_name"),
    "tool": ("gen_ai.tool.name", "tool.name", "traceloop.entity.name"),
    "agent": ("gen_ai.agent.name", "agent.name", "traceloop.entity.name"),
    "chain": ("gen_ai.workflow.name", "traceloop.entity.name"),
    "retriever": ("gen_ai.data_source.id", "traceloop.entity.name"),
    "guardrail": ("traceloop.entity.name",),
}
# The detail each family names its subject under.
SUBJECT_DETAIL: Final = {"llm": "model", "tool": "tool", "agent": "agent"}
PROVIDER_KEYS: Final = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
USAGE_KEYS: Final = (
    (
        "input_tokens",
        ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    ),
    (
        "output_tokens",
        (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
        ),
    ),
    ("total_tokens", ("llm.usage.total_tokens", "llm.token_count.total")),
)
