"""The kinds of event the audit trail records."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuditEventType", "coerce_event_type"]


class AuditEventType(StrEnum):
    """Every event type the trail accepts; the value is what is stored."""

    AGENT_STARTED = "agent.started"
    AGENT_COMPLETED = "agent.completed"
    AGENT_FAILED = "agent.failed"
    TOOL_INVOKED = "tool.invoked"
    TOOL_COMPLETED = "tool.completed"
    TOOL_FAILED = "tool.failed"
    LLM_REQUEST = "llm.request"
    LLM_RESPONSE = "llm.response"
    PERMISSION_GRANTED = "permission.granted"
    PERMISSION_DENIED = "permission.denied"
    CONFIG_CHANGED = "config.changed"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"


# Both the members and their string values map to the member: one dict lookup
# validates and normalises on record()'s hot path.
_BY_VALUE: dict[object, AuditEventType] = {member.value: member for member in AuditEventType}


def coerce_event_type(value: object) -> AuditEventType:
    """Return the :class:`AuditEventType` for a member or its string value.

    Raises:
        ValueError: ``value`` names no event type.
    """
    try:
        return _BY_VALUE[value]
    except (KeyError, TypeError):
        known = ", ".join(_BY_VALUE)  # type: ignore[arg-type]
        raise ValueError(
            f"unknown audit event type {value!r}; expected an AuditEventType or one of: {known}"
        ) from None
