"""Settings: defaults, environment variables, the .env file, overrides, bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cleveragents import Settings
from cleveragents.config.settings import DEFAULT_DATABASE_URL

INT_FIELDS = ["audit_queue_maxsize", "audit_batch_size"]


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return f"CLEVERAGENTS_{field.upper()}"


def assert_names_field(error: ValidationError, field: str) -> None:
    """The ValidationError points at ``field``."""
    locations = [tuple(detail["loc"]) for detail in error.errors()]
    assert (field,) in locations, f"{field} not in {locations}"
    assert field in str(error)


def test_defaults_need_nothing_running() -> None:
    """Out of the box: an embedded SQLite file, async, a 10000-entry queue, batches of 500."""
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")
    assert settings.audit_async is True
    assert settings.audit_queue_maxsize == 10_000
    assert settings.audit_batch_size == 500
    assert settings.audit_overflow == "block"
    assert settings.audit_block_timeout is None
    assert settings.audit_retry_deadline > 0
    assert settings.audit_close_timeout_s > 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", False), ("0", False), ("true", True), ("1", True), ("FALSE", False)],
)
def test_audit_async_from_env(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    """CLEVERAGENTS_AUDIT_ASYNC accepts true/false/1/0."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_ASYNC", raw)
    assert Settings().audit_async is expected


def test_every_setting_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each setting is read from its CLEVERAGENTS_* variable."""
    values = {
        "database_url": "sqlite:///elsewhere.db",
        "audit_async": "0",
        "audit_queue_maxsize": "7",
        "audit_batch_size": "3",
        "audit_overflow": "raise",
        "audit_block_timeout": "2.5",
        "audit_retry_deadline": "1.5",
        "audit_close_timeout_s": "4",
    }
    for field, raw in values.items():
        monkeypatch.setenv(env_name(field), raw)
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.audit_async is False
    assert settings.audit_queue_maxsize == 7
    assert settings.audit_batch_size == 3
    assert settings.audit_overflow == "raise"
    assert settings.audit_block_timeout == 2.5
    assert settings.audit_retry_deadline == 1.5
    assert settings.audit_close_timeout_s == 4.0


def test_env_var_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lower-case variable name is read too (pydantic-settings' default)."""
    monkeypatch.setenv("cleveragents_audit_batch_size", "9")
    assert Settings().audit_batch_size == 9


def test_unprefixed_and_unknown_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL without the prefix, and unknown CLEVERAGENTS_* names, change nothing."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("CLEVERAGENTS_NOT_A_SETTING", "x")
    assert Settings().database_url == DEFAULT_DATABASE_URL


def test_dotenv_file_in_cwd_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A .env file in the working directory sets values."""
    (tmp_path / ".env").write_text(
        "CLEVERAGENTS_DATABASE_URL=sqlite:///from-dotenv.db\n"
        "CLEVERAGENTS_AUDIT_ASYNC=false\n"
        "CLEVERAGENTS_AUDIT_BATCH_SIZE=42\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == "sqlite:///from-dotenv.db"
    assert settings.audit_async is False
    assert settings.audit_batch_size == 42


def test_env_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment variable beats the same name in .env."""
    (tmp_path / ".env").write_text("CLEVERAGENTS_AUDIT_BATCH_SIZE=42\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_BATCH_SIZE", "43")
    assert Settings().audit_batch_size == 43


def test_bad_value_in_dotenv_names_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bad value in .env fails at Settings() too, naming the field."""
    (tmp_path / ".env").write_text("CLEVERAGENTS_AUDIT_QUEUE_MAXSIZE=0\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert_names_field(caught.value, "audit_queue_maxsize")


def test_keyword_overrides_win_over_env_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings(field=...) beats both the environment and .env."""
    (tmp_path / ".env").write_text(
        "CLEVERAGENTS_AUDIT_ASYNC=false\nCLEVERAGENTS_AUDIT_BATCH_SIZE=42\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_ASYNC", "0")
    monkeypatch.setenv("CLEVERAGENTS_DATABASE_URL", "sqlite:///env.db")
    settings = Settings(audit_async=True, audit_batch_size=5, database_url="sqlite:///kw.db")
    assert settings.audit_async is True
    assert settings.audit_batch_size == 5
    assert settings.database_url == "sqlite:///kw.db"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_url", ""),
        ("audit_async", "maybe"),
        ("audit_async", "2"),
        ("audit_queue_maxsize", 0),
        ("audit_queue_maxsize", -5),
        ("audit_queue_maxsize", "ten"),
        ("audit_queue_maxsize", 1.5),
        ("audit_batch_size", 0),
        ("audit_batch_size", None),
        ("audit_overflow", "drop"),
        ("audit_overflow", "BLOCK"),
        ("audit_block_timeout", 0),
        ("audit_block_timeout", -1.0),
        ("audit_block_timeout", "soon"),
        ("audit_retry_deadline", 0),
        ("audit_close_timeout_s", -1),
    ],
)
def test_bad_keyword_value_names_the_field(field: str, value: Any) -> None:
    """Each bad keyword value raises pydantic's ValidationError naming the field."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert_names_field(caught.value, field)


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("audit_async", "perhaps"),
        ("audit_queue_maxsize", "0"),
        ("audit_queue_maxsize", "lots"),
        ("audit_batch_size", "-1"),
        ("audit_overflow", "spill"),
        ("audit_block_timeout", "-3"),
    ],
)
def test_bad_env_value_names_the_field(
    monkeypatch: pytest.MonkeyPatch, field: str, raw: str
) -> None:
    """Each bad CLEVERAGENTS_* value fails at Settings() naming the field."""
    monkeypatch.setenv(env_name(field), raw)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert_names_field(caught.value, field)


def test_block_timeout_accepts_positive_float_and_none() -> None:
    """audit_block_timeout is a positive number of seconds, or None for ever."""
    assert Settings(audit_block_timeout=0.25).audit_block_timeout == 0.25
    assert Settings(audit_block_timeout=None).audit_block_timeout is None


@pytest.mark.parametrize("policy", ["block", "raise"])
def test_overflow_policies(policy: str) -> None:
    """audit_overflow is 'block' or 'raise'."""
    assert Settings(audit_overflow=policy).audit_overflow == policy


@pytest.mark.parametrize("field", INT_FIELDS)
@given(value=st.integers(min_value=1, max_value=2**62))
def test_any_positive_int_is_accepted(field: str, value: int) -> None:
    """Every int >= 1 is a valid queue size and batch size."""
    assert getattr(Settings(**{field: value}), field) == value


@pytest.mark.parametrize("field", INT_FIELDS)
@given(value=st.integers(max_value=0))
def test_any_int_below_one_is_rejected(field: str, value: int) -> None:
    """Every int < 1 is rejected, naming the field."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert_names_field(caught.value, field)


@pytest.mark.parametrize("field", INT_FIELDS)
@given(value=st.integers(min_value=-(2**40), max_value=2**40))
def test_int_from_env_matches_keyword_rules(field: str, value: int) -> None:
    """The env var of an int setting is accepted exactly when the int is >= 1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(env_name(field), str(value))
        if value >= 1:
            assert getattr(Settings(), field) == value
        else:
            with pytest.raises(ValidationError) as caught:
                Settings()
            assert_names_field(caught.value, field)


@given(value=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
def test_any_positive_block_timeout_is_accepted(value: float) -> None:
    """Any positive finite block timeout is accepted as given."""
    assert Settings(audit_block_timeout=value).audit_block_timeout == value
