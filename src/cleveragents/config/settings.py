"""Settings, read from ``CLEVERAGENTS_*`` environment variables and a ``.env`` file.

Keyword arguments win over the environment, which wins over ``.env``, which wins
over the defaults below. A bad value fails at ``Settings(...)`` with pydantic's
``ValidationError`` naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cleveragents.domain.redaction import (
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
    compile_pattern,
    normalise_key_name,
)

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
    audit_redact: bool = Field(
        default=True,
        description="Mask secrets in details before they are recorded (see audit_redact_keys "
        "and audit_redact_patterns).",
    )
    # NoDecode: the environment gives these as text, parsed by the validators below
    # (a JSON list, or comma-separated keys / one pattern per line).
    audit_redact_keys: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_REDACT_KEYS),
        description="Key names whose values are masked, matched case-insensitively and at "
        "any depth, also as the end of a longer key (X-Api-Key, openai_api_key).",
    )
    audit_redact_patterns: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_REDACT_PATTERNS),
        description="Regular expressions; their matches in string values are masked.",
    )
    audit_otel_context: bool = Field(
        default=True,
        description="Entries recorded while an OpenTelemetry span is current carry its "
        'trace and span ids in details["otel"].',
    )

    audit_hmac_key: SecretStr | None = Field(
        default=None,
        description="Keyed mode: every entry also carries HMAC-SHA256 under this key, so "
        "whoever can write the database but lacks the key cannot forge a consistent chain. "
        "Give it in the environment (CLEVERAGENTS_AUDIT_HMAC_KEY); it is never logged or "
        "stored.",
    )
    audit_checkpoint_path: Path | None = Field(
        default=None,
        description="File the writer appends chain checkpoints to (JSON Lines), meant to be "
        "kept away from the database; None: no automatic checkpoints.",
    )
    audit_checkpoint_every: int | None = Field(
        default=None,
        ge=1,
        description="With audit_checkpoint_path: a checkpoint after this many entries "
        "(default 10,000 when neither this nor audit_checkpoint_interval_s is set).",
    )
    audit_checkpoint_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="With audit_checkpoint_path: a checkpoint at least this often while "
        "entries are written.",
    )

    def hmac_key_bytes(self) -> bytes | None:
        """The HMAC key as UTF-8 bytes, or None when keyed mode is off."""
        secret = self.audit_hmac_key
        return None if secret is None else secret.get_secret_value().encode("utf-8")

    @field_validator("audit_hmac_key")
    @classmethod
    def _check_hmac_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A key must not be empty (an empty key would be no key at all)."""
        if value is not None and not value.get_secret_value():
            raise ValueError("audit_hmac_key is empty; unset it, or give a key")
        return value

    @field_validator("audit_redact_keys", mode="before")
    @classmethod
    def _parse_redact_keys(cls, value: Any) -> Any:
        """A JSON list, or comma-separated names; each must contain a letter or digit."""
        names = _text_list(value, separator=",")
        if isinstance(names, list):
            for name in names:
                if isinstance(name, str) and not normalise_key_name(name):
                    raise ValueError(f"the redaction key {name!r} has no letter or digit")
        return names

    @field_validator("audit_redact_patterns", mode="before")
    @classmethod
    def _parse_redact_patterns(cls, value: Any) -> Any:
        """A JSON list, or one pattern per line; each must compile."""
        patterns = _text_list(value, separator="\n")
        if isinstance(patterns, list):
            for pattern in patterns:
                if isinstance(pattern, str):
                    compile_pattern(pattern)  # ValueError naming the pattern
        return patterns


def _text_list(value: Any, *, separator: str) -> Any:
    """A list from the environment's text: a JSON list, or items split on ``separator``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list: {exc}") from None
    return [item.strip() for item in text.split(separator) if item.strip()]
