"""Event ids: time-ordered UUIDs (RFC 9562 version 7)."""

from __future__ import annotations

import uuid_utils

__all__ = ["new_event_id"]


def new_event_id() -> str:
    """Return a new UUIDv7 as a string; later calls sort after earlier ones."""
    return str(uuid_utils.uuid7())
