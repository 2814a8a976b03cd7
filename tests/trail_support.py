"""Helpers for the tamper-evidence tests: verify a database from outside, run SQL beside it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from cleveragents.application import trail
from cleveragents.domain.verification import Checkpoint, VerifyReport
from cleveragents.infrastructure.persistence.database import open_database


def verify_url(
    url: str, *, key: bytes | None = None, checkpoints: list[Checkpoint] | None = None
) -> VerifyReport:
    """Verify the trail at ``url`` from outside any service (no writer of its own)."""
    database = open_database(url, create=False)
    try:
        return trail.verify(database, hmac_key=key, checkpoints=checkpoints or [])
    finally:
        database.dispose()


def execute(url: str, *statements: str, **params: Any) -> None:
    """Run ``statements`` in one transaction on a connection of a separate engine."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params)
    finally:
        engine.dispose()


def fetch(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of one query, read with a separate engine."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement), params)]
    finally:
        engine.dispose()
