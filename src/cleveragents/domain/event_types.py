"""The kinds of event the audit trail records."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "SYSTEM_EVENT_TYPES",
    "AuditEventType",
    "SystemEventType",
    "coerce_event_type",
    "coerce_stored_event_type",
]


class AuditEventType(StrEnum):
    """Every event type the trail accepts; the value is what is stored."""

    AGENT_STARTED = "agent.started"
    AGENT_COMPLETED = "agent.completed"
    AGENT_FAILED = "agent.failed"
    AGENT_HANDOFF = "agent.handoff"
    CHAIN_STARTED = "chain.started"
    CHAIN_COMPLETED = "chain.completed"
    CHAIN_FAILED = "chain.failed"
    TOOL_INVOKED = "tool.invoked"
    TOOL_COMPLETED = "tool.completed"
    TOOL_FAILED = "tool.failed"
    LLM_REQUEST = "llm.request"
    LLM_RESPONSE = "llm.response"
    LLM_FAILED = "llm.failed"
    RETRIEVER_STARTED = "retriever.started"
    RETRIEVER_COMPLETED = "retriever.completed"
    RETRIEVER_FAILED = "retriever.failed"
    GUARDRAIL_PASSED = "guardrail.passed"
    GUARDRAIL_TRIGGERED = "guardrail.triggered"
    PERMISSION_GRANTED = "permission.granted"
    PERMISSION_DENIED = "permission.denied"
    CONFIG_CHANGED = "config.changed"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"


class SystemEventType(StrEnum):
    """Entries the library writes itself into the chain; ``record()`` refuses them.

    They account for writers, retention and re-chaining imports (see the README's
    "Tamper evidence");
    reads leave them out unless asked (``include_system=True``, ``--system``).
    """

    WRITER_OPENED = "writer.opened"
    WRITER_CLOSED = "writer.closed"
    WRITER_DROPPED = "writer.dropped"
    WRITER_SPOOLED = "writer.spooled"
    SPOOL_REPLAYED = "spool.replayed"
    RETENTION_PURGED = "retention.purged"
    TRAIL_IMPORTED = "trail.imported"


#: The stored values of every :class:`SystemEventType`.
SYSTEM_EVENT_TYPES: frozenset[str] = frozenset(member.value for member in SystemEventType)


# Both the members and their string values map to the member: one dict lookup
# validates and normalises on record()'s hot path.
_BY_VALUE: dict[object, AuditEventType] = {member.value: member for member in AuditEventType}
_SYSTEM_VALUES: frozenset[object] = frozenset(SYSTEM_EVENT_TYPES)


def coerce_event_type(value: object) -> AuditEventType:
    """Return the :class:`AuditEventType` for a member or its string value.

    Raises:
        ValueError: ``value`` names no event type.
    """
    try:
        return _BY_VALUE[value]
    except (KeyError, TypeError):
        if isinstance(value, str) and value in _SYSTEM_VALUES:
            raise ValueError(
                f"{value!s} is a system entry, written by the audit service itself;"
                " record() does not accept it"
            ) from None
        known = ", ".join(_BY_VALUE)  # type: ignore[arg-type]
        raise ValueError(
            f"unknown audit event type {value!r}; expected an AuditEventType or one of: {known}"
        ) from None


_STORED: dict[object, AuditEventType | SystemEventType] = {
    **_BY_VALUE,
    **{member.value: member for member in SystemEventType},
    **{member: member for member in SystemEventType},
}


def coerce_stored_event_type(value: object) -> AuditEventType | SystemEventType:
    """Like :func:`coerce_event_type`, also accepting a :class:`SystemEventType` (reads, replay).

    Raises:
        ValueError: ``value`` names no event type.
    """
    try:
        return _STORED[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown audit event type {value!r}") from None
