"""The domain event the runtime emits on its event bus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DomainEvent"]


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened in the runtime; ``payload`` becomes the audit entry's details."""

    event_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    resource: str | None = None
    correlation_id: str | None = None
