"""Adapters that audit the agent frameworks people run, in three lines each.

- :mod:`cleveragents.integrations.langchain`: ``AuditCallbackHandler`` for
  LangChain and LangGraph (``pip install 'cleveragents-audit[langchain]'``).
- :mod:`cleveragents.integrations.openai_agents`: ``AuditTracingProcessor`` for the
  OpenAI Agents SDK (``[openai-agents]``).
- :mod:`cleveragents.integrations.otel`: ``AuditSpanProcessor`` for any
  OpenTelemetry-instrumented agent (``[otel]``).

Each module imports its framework; this package imports none of them.
"""
