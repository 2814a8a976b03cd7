"""The event types, entries, domain events and ids of the audit domain."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest

from cleveragents import AuditEventType, AuditLogEntry, DomainEvent
from cleveragents.domain.entry import PENDING_ID
from cleveragents.domain.event_types import coerce_event_type
from cleveragents.domain.ids import new_event_id

CONTRACT_VALUES = {
    "agent.started",
    "agent.completed",
    "agent.failed",
    "tool.invoked",
    "tool.completed",
    "tool.failed",
    "llm.request",
    "llm.response",
    "permission.granted",
    "permission.denied",
    "config.changed",
    "session.started",
    "session.ended",
}


def test_event_types_cover_the_contract() -> None:
    """Every event type the runtime emits is an AuditEventType value."""
    assert issubclass(AuditEventType, StrEnum)
    assert {member.value for member in AuditEventType} >= CONTRACT_VALUES


def test_event_type_is_its_string_value() -> None:
    """A member compares and formats as its value."""
    assert AuditEventType.TOOL_INVOKED == "tool.invoked"
    assert str(AuditEventType.TOOL_INVOKED) == "tool.invoked"
    assert f"{AuditEventType.AGENT_FAILED}" == "agent.failed"


@pytest.mark.parametrize("member", list(AuditEventType))
def test_coerce_accepts_member_and_value(member: AuditEventType) -> None:
    """Both a member and its string value coerce to the member."""
    assert coerce_event_type(member) is member
    assert coerce_event_type(member.value) is member


@pytest.mark.parametrize(
    "value",
    ["agent.unknown", "AGENT.STARTED", "agent_started", "", " tool.invoked", None, 3, 1.5, ["x"]],
)
def test_coerce_rejects_anything_else_with_value_error(value: Any) -> None:
    """Unknown names, other cases, other types raise ValueError listing the known ones."""
    with pytest.raises(ValueError, match="unknown audit event type") as caught:
        coerce_event_type(value)
    assert "tool.invoked" in str(caught.value)


def make_entry(**overrides: Any) -> AuditLogEntry:
    """An entry with plausible values."""
    values: dict[str, Any] = {
        "id": 1,
        "event_id": new_event_id(),
        "event_type": AuditEventType.TOOL_INVOKED,
        "actor": "agent:a",
        "resource": "tool:t",
        "details": {"k": 1},
        "correlation_id": "run-1",
        "created_at": datetime.now(UTC),
    }
    values.update(overrides)
    return AuditLogEntry(**values)


def test_entry_is_frozen() -> None:
    """An AuditLogEntry cannot be changed after it is made."""
    entry = make_entry()
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.actor = "someone else"  # type: ignore[misc]


def test_entry_has_the_contract_fields() -> None:
    """AuditLogEntry has exactly the fields the runtime reads."""
    names = [field.name for field in dataclasses.fields(AuditLogEntry)]
    assert names == [
        "id",
        "event_id",
        "event_type",
        "actor",
        "resource",
        "details",
        "correlation_id",
        "created_at",
    ]


def test_pending_entry() -> None:
    """An entry with id -1 is pending; a positive id is committed."""
    assert make_entry(id=PENDING_ID).is_pending
    assert PENDING_ID == -1
    assert not make_entry(id=7).is_pending


def test_domain_event_defaults_and_frozen() -> None:
    """DomainEvent needs only a type, defaults to an empty payload, and is frozen."""
    event = DomainEvent("tool.invoked")
    assert event.payload == {}
    assert event.actor is None
    assert event.resource is None
    assert event.correlation_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.actor = "x"  # type: ignore[misc]


def test_domain_event_default_payloads_are_not_shared() -> None:
    """Two events made without a payload do not share one dict."""
    assert DomainEvent("a").payload is not DomainEvent("b").payload


def test_domain_event_keyword_fields() -> None:
    """DomainEvent takes payload, actor, resource and correlation_id."""
    event = DomainEvent(
        event_type="llm.request",
        payload={"model": "m"},
        actor="agent:a",
        resource="llm:m",
        correlation_id="run-9",
    )
    assert (event.event_type, event.payload, event.actor, event.resource, event.correlation_id) == (
        "llm.request",
        {"model": "m"},
        "agent:a",
        "llm:m",
        "run-9",
    )


def test_event_ids_are_uuid7_strings() -> None:
    """An event id is the text of a version-7 UUID."""
    event_id = new_event_id()
    parsed = uuid.UUID(event_id)
    assert str(parsed) == event_id
    assert parsed.version == 7


def test_event_ids_are_unique_and_increasing() -> None:
    """Ids made one after the other sort in the order they were made, with no duplicate."""
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
