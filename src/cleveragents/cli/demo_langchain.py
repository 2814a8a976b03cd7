"""The demo's LangChain run: a tool-calling agent over a fake chat model, audited.

It needs only langchain-core (``pip install 'cleveragents-audit[langchain]'``) and
runs offline: ``GenericFakeChatModel`` replays two scripted replies, a call of a
real ``@tool`` and then the answer. The agent loop is a ``RunnableLambda`` named
``weather_agent``, which the handler is told is an agent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from cleveragents.application.services.audit_service import AuditService
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import AuditLogEntry

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage
    from langchain_core.runnables import RunnableConfig

__all__ = ["AGENT_NAME", "LANGCHAIN_MISSING", "run_langchain_demo"]

#: The agent's name: the resource (``agent:weather_agent``) and actor of its entries.
AGENT_NAME = "weather_agent"

#: What the demo prints instead of the run when langchain-core is not installed.
LANGCHAIN_MISSING = (
    "LangChain run skipped: langchain-core is not installed"
    " (pip install 'cleveragents-audit[langchain]')."
)


def run_langchain_demo(settings: Settings) -> list[AuditLogEntry] | None:
    """Run the agent once with the audit handler; its entries read back, or None without
    langchain-core."""
    try:
        from langchain_core.runnables import RunnableLambda

        from cleveragents.integrations.langchain import AuditCallbackHandler
    except ImportError:
        return None
    root = uuid.uuid4()
    with AuditService(settings.model_copy(update={"audit_async": True})) as audit:
        handler = AuditCallbackHandler(audit, agent_names={AGENT_NAME})
        RunnableLambda(_agent(), name=AGENT_NAME).invoke(
            "What is the weather in Paris?", config={"callbacks": [handler], "run_id": root}
        )
        audit.flush()
        return audit.query(correlation_id=str(root), limit=100)


def _agent() -> Callable[[str, RunnableConfig], str]:
    """The agent loop: the scripted model, and the tool it calls, until it answers."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str, api_key: str) -> str:
        """The weather in a city; the key authorises the call."""
        return f"sunny, 21 C in {city}"

    model = GenericFakeChatModel(messages=iter(_replies()))

    def agent(question: str, config: RunnableConfig) -> str:
        messages: list[BaseMessage] = [HumanMessage(question)]
        while True:
            reply = model.invoke(messages, config=config)
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:  # a ToolCall in, a ToolMessage out
                messages.append(get_weather.invoke(call, config=config))

    return agent


def _replies() -> list[AIMessage]:
    """The model's two scripted replies: a call of the tool, then the answer."""
    from langchain_core.messages import AIMessage

    return [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "get_weather",
                    "args": {"city": "Paris", "api_key": "sk-demo-0123456789abcdefghij"},
                    "id": "call_1",
                }
            ],
            usage_metadata={"input_tokens": 42, "output_tokens": 9, "total_tokens": 51},
            response_metadata={"model_name": "fake-gpt", "finish_reason": "tool_calls"},
        ),
        AIMessage(
            content="It is sunny, 21 C, in Paris.",
            usage_metadata={"input_tokens": 67, "output_tokens": 11, "total_tokens": 78},
            response_metadata={"model_name": "fake-gpt", "finish_reason": "stop"},
        ),
    ]
