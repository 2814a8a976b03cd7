"""Fixtures of the persistence tests."""

from tests.schema_support import next_revision

__all__ = ["next_revision"]
