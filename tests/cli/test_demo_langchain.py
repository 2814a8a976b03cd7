"""The demo's LangChain run: audited exactly, and skipped in one line without langchain-core."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cleveragents import Settings
from cleveragents.cli.demo_langchain import LANGCHAIN_MISSING, run_langchain_demo
from tests.cli.conftest import run_cli

#: A terminal wide enough that Rich folds no resource name.
WIDE = {"COLUMNS": "250"}


def hide_langchain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import langchain_core`` (and the adapter) fail, as without the extra."""
    for name in list(sys.modules):
        if name.startswith(("langchain_core", "cleveragents.integrations.langchain")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # type: ignore[arg-type]


def test_the_langchain_run_is_audited(sqlite_url: str) -> None:
    """One agent run: the agent, two model calls and the tool call, the key masked."""
    entries = run_langchain_demo(Settings(database_url=sqlite_url))
    assert entries is not None
    assert [(e.event_type.value, e.resource) for e in entries] == [
        ("agent.started", "agent:weather_agent"),
        ("llm.request", "llm:GenericFakeChatModel"),
        ("llm.response", "llm:GenericFakeChatModel"),
        ("tool.invoked", "tool:get_weather"),
        ("tool.completed", "tool:get_weather"),
        ("llm.request", "llm:GenericFakeChatModel"),
        ("llm.response", "llm:GenericFakeChatModel"),
        ("agent.completed", "agent:weather_agent"),
    ]
    assert {e.actor for e in entries} == {"agent:weather_agent"}
    assert len({e.correlation_id for e in entries}) == 1
    assert entries[3].details["input"] == {"city": "Paris", "api_key": "[REDACTED]"}
    assert "sk-demo" not in json.dumps([e.details for e in entries])
    assert entries[-1].details["outputs"] == "It is sunny, 21 C, in Paris."


def test_without_langchain_the_demo_says_so(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    """Without langchain-core: None, and the demo prints one line and succeeds."""
    hide_langchain(monkeypatch)
    assert run_langchain_demo(Settings(database_url=sqlite_url)) is None
    result = run_cli("demo", "--runs", "1", "--database-url", sqlite_url, env=WIDE)
    assert result.exit_code == 0, result.stderr
    assert LANGCHAIN_MISSING in result.stdout
    assert "The last agent run, as recorded" in result.stdout


def test_demo_output_names_the_langchain_run(tmp_path: Path) -> None:
    """With langchain-core, the demo prints the LangChain run's table."""
    result = run_cli(
        "demo", "--runs", "1", "--database-url", f"sqlite:///{tmp_path / 'd.db'}", env=WIDE
    )
    assert result.exit_code == 0, result.stderr
    assert "A LangChain run, audited by AuditCallbackHandler" in result.stdout
    assert "tool:get_weather" in result.stdout
