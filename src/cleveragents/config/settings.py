"""Settings, read from ``CLEVERAGENTS_*`` environment variables and a ``.env`` file.

Keyword arguments win over the environment, which wins over ``.env``, which wins
over the defaults below. A bad value fails at ``Settings(...)`` with pydantic's
``ValidationError`` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

#: An embedded SQLite file in the working directory: nothing needs to be running.
DEFAULT_DATABASE_URL = "sqlite:///cleveragents_audit.db"


class Settings(BaseSettings):
    """Everything the audit service can be told; see the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="CLEVERAGENTS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        min_length=1,
        description="SQLAlchemy URL of the audit database (sqlite:/// or postgresql+psycopg://).",
    )
    audit_async: bool = Field(
        default=True,
        description="Record through the write-behind queue (True) or INSERT + COMMIT per call.",
    )
    audit_queue_maxsize: int = Field(
        default=10_000, ge=1, description="Most entries waiting for the writer."
    )
    audit_batch_size: int = Field(
        default=500, ge=1, description="Most rows the writer commits in one transaction."
    )
    audit_overflow: Literal["block", "raise"] = Field(
        default="block",
        description="When the queue is full: wait for room, or raise AuditQueueFullError.",
    )
    audit_block_timeout: float | None = Field(
        default=None,
        gt=0,
        description="With overflow 'block': most seconds to wait for room (None: for ever).",
    )
    audit_retry_deadline: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a batch is retried on transient database errors before it fails.",
    )
    audit_spool_path: Path | None = Field(
        default=None,
        description="Dead-letter file (JSON Lines) for entries the database would not take; "
        "default: beside the SQLite file, or in the working directory.",
    )
    audit_close_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Most seconds close() and the exit hook wait for the queue to drain.",
    )
