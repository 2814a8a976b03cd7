"""new_entry: the entry record() returns, made without the frozen dataclass's __init__."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest

from cleveragents.domain.entry import PENDING_ID, AuditLogEntry, new_entry
from cleveragents.domain.event_types import AuditEventType

FIELDS = (
    PENDING_ID,
    "0190f1a2-0000-7000-8000-000000000000",
    AuditEventType.TOOL_INVOKED,
    "agent:a",
    None,
    {"k": [1, 2]},
    "run-1",
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
)


def test_new_entry_is_the_entry_the_dataclass_makes() -> None:
    """Same type, fields, equality, hash of the fields, repr; and still frozen."""
    made, reference = new_entry(*FIELDS), AuditLogEntry(*FIELDS)
    assert type(made) is AuditLogEntry
    assert made == reference
    assert repr(made) == repr(reference)
    assert dataclasses.astuple(made) == dataclasses.astuple(reference)
    assert made.is_pending
    assert dataclasses.replace(made, id=7) == dataclasses.replace(reference, id=7)
    assert pickle.loads(pickle.dumps(made)) == reference
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.actor = "someone else"  # type: ignore[misc]
    assert made.details is FIELDS[5]  # held, not copied: the caller of new_entry owns it


def test_the_draft_keeps_the_entrys_layout_and_skips_nothing() -> None:
    """new_entry's class switch holds only while the draft has the entry's exact slots.

    And while ``AuditLogEntry.__init__`` does nothing but set them: no ``__post_init__``,
    no default, no weakref or dict slot that the draft would not have.
    """
    from cleveragents.domain.entry import _Draft

    assert _Draft.__slots__ == AuditLogEntry.__slots__
    assert _Draft.__basicsize__ == AuditLogEntry.__basicsize__
    assert not hasattr(AuditLogEntry, "__post_init__")
    assert all(
        field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        for field in dataclasses.fields(AuditLogEntry)
    )
