"""The redaction settings: defaults, the environment's two spellings, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cleveragents import Settings
from cleveragents.domain.redaction import DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS


def test_defaults_redact_the_listed_keys_and_patterns() -> None:
    """Redaction is on by default, with the issue's key list and the built-in patterns."""
    settings = Settings()
    assert settings.audit_redact is True
    assert settings.audit_redact_keys == list(DEFAULT_REDACT_KEYS)
    assert settings.audit_redact_keys == [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "private_key",
        "credential",
    ]
    assert settings.audit_redact_patterns == list(DEFAULT_REDACT_PATTERNS)


def test_each_settings_object_has_its_own_lists() -> None:
    """Changing one Settings' list does not change the defaults of the next."""
    first = Settings()
    first.audit_redact_keys.append("pin")
    assert "pin" not in Settings().audit_redact_keys


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ssn,pin", ["ssn", "pin"]),
        (" ssn , X-Pin ,", ["ssn", "X-Pin"]),
        ('["ssn", "pin"]', ["ssn", "pin"]),
        ("", []),
    ],
)
def test_keys_from_env(monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]) -> None:
    """CLEVERAGENTS_AUDIT_REDACT_KEYS: comma-separated, or a JSON list; empty means none."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT_KEYS", raw)
    assert Settings().audit_redact_keys == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"acct-\d{4,}", [r"acct-\d{4,}"]),
        ("a{2,3}\nb+", ["a{2,3}", "b+"]),
        (r'["a{2,3}", "b+"]', ["a{2,3}", "b+"]),
    ],
)
def test_patterns_from_env(monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]) -> None:
    """CLEVERAGENTS_AUDIT_REDACT_PATTERNS: one per line (commas are regex), or a JSON list."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT_PATTERNS", raw)
    assert Settings().audit_redact_patterns == expected


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("0", False), ("true", True)])
def test_redaction_toggle_from_env(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    """CLEVERAGENTS_AUDIT_REDACT turns redaction off and on."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT", raw)
    assert Settings().audit_redact is expected


def test_dotenv_is_read(tmp_path: Path) -> None:
    """The redaction settings can live in .env like the others."""
    (tmp_path / ".env").write_text("CLEVERAGENTS_AUDIT_REDACT_KEYS=ssn\n", encoding="utf-8")
    assert Settings().audit_redact_keys == ["ssn"]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("audit_redact_patterns", ["(unclosed"], "(unclosed"),
        ("audit_redact_patterns", "[not json", "audit_redact_patterns"),
        ("audit_redact_keys", ["--"], "'--'"),
        ("audit_redact_keys", [3], "audit_redact_keys"),
    ],
)
def test_bad_values_name_the_field_and_value(field: str, value: object, named: str) -> None:
    """A pattern that does not compile, or a key with no letter, fails at Settings()."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert field in str(caught.value)
    assert named in str(caught.value)


def test_bad_pattern_from_env_fails_at_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad pattern in the environment fails at Settings(), naming it."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_REDACT_PATTERNS", "ok\n[unclosed")
    with pytest.raises(ValidationError, match=r"\[unclosed"):
        Settings()
