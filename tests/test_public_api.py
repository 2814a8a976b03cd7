"""The names the runtime imports from the package root, and where they live."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path

import pytest

import cleveragents

CONTRACT = [
    "AuditService",
    "AuditLogEntry",
    "AuditEventType",
    "AuditServiceClosedError",
    "AuditQueueFullError",
    "Settings",
    "ReactiveEventBus",
    "DomainEvent",
]


def test_all_is_sorted_and_unique() -> None:
    """cleveragents.__all__ is sorted and lists each name once."""
    assert cleveragents.__all__ == sorted(cleveragents.__all__)
    assert len(set(cleveragents.__all__)) == len(cleveragents.__all__)


def test_all_names_exist() -> None:
    """Every name in __all__ is importable from the package root."""
    for name in cleveragents.__all__:
        assert hasattr(cleveragents, name), name


@pytest.mark.parametrize("name", CONTRACT)
def test_contract_names_import_from_the_root(name: str) -> None:
    """Each contract name is exported by `from cleveragents import ...`."""
    assert name in cleveragents.__all__
    namespace: dict[str, object] = {}
    exec(f"from cleveragents import {name}", namespace)
    assert namespace[name] is getattr(cleveragents, name)


def test_star_import_gives_the_contract() -> None:
    """`from cleveragents import *` brings every contract name."""
    namespace: dict[str, object] = {}
    exec("from cleveragents import *", namespace)
    assert set(CONTRACT) <= set(namespace)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("cleveragents.config.settings", "Settings"),
        ("cleveragents.application.services.audit_service", "AuditService"),
        ("cleveragents.application.event_bus", "ReactiveEventBus"),
        ("cleveragents.domain.event_types", "AuditEventType"),
        ("cleveragents.domain.entry", "AuditLogEntry"),
        ("cleveragents.domain.events", "DomainEvent"),
        ("cleveragents.domain.errors", "AuditServiceClosedError"),
        ("cleveragents.domain.errors", "AuditQueueFullError"),
        ("cleveragents.domain.event_types", "SystemEventType"),
        ("cleveragents.domain.verification", "VerifyReport"),
        ("cleveragents.domain.verification", "VerifyStatus"),
        ("cleveragents.domain.verification", "Checkpoint"),
        ("cleveragents.domain.verification", "Finding"),
        ("cleveragents.domain.verification", "FindingKind"),
    ],
)
def test_names_live_in_the_runtime_layout(module: str, name: str) -> None:
    """Each public name is the same object as in the module the runtime's layout puts it in."""
    assert getattr(importlib.import_module(module), name) is getattr(cleveragents, name)


def test_errors_are_runtime_errors() -> None:
    """The closed and queue-full errors are RuntimeErrors, so existing handlers catch them."""
    assert issubclass(cleveragents.AuditServiceClosedError, RuntimeError)
    assert issubclass(cleveragents.AuditQueueFullError, RuntimeError)
    assert issubclass(cleveragents.AuditServiceClosedError, cleveragents.AuditError)
    assert issubclass(cleveragents.AuditQueueFullError, cleveragents.AuditError)


def test_signatures_match_the_contract() -> None:
    """The constructor and methods take the contract's arguments, keyword-only where it says."""
    service = inspect.signature(cleveragents.AuditService)
    assert list(service.parameters) == ["settings", "session"]
    assert service.parameters["session"].kind is inspect.Parameter.KEYWORD_ONLY
    record = inspect.signature(cleveragents.AuditService.record)
    assert list(record.parameters) == [
        "self",
        "event_type",
        "actor",
        "resource",
        "details",
        "correlation_id",
    ]
    assert all(
        record.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        for name in ["actor", "resource", "details", "correlation_id"]
    )
    query = inspect.signature(cleveragents.AuditService.query)
    assert set(query.parameters) == {
        "self",
        "event_type",
        "actor",
        "resource",
        "correlation_id",
        "since",
        "until",
        "after_id",
        "limit",
        "include_system",
    }
    assert query.parameters["limit"].default == 100
    count = inspect.signature(cleveragents.AuditService.count)
    assert set(count.parameters) == set(query.parameters) - {"after_id", "limit"}
    get = inspect.signature(cleveragents.AuditService.get)
    assert list(get.parameters) == ["self", "event_id", "include_system"]
    for method in (query, count, get):  # the library's own entries only when asked
        assert method.parameters["include_system"].default is False
        assert method.parameters["include_system"].kind is inspect.Parameter.KEYWORD_ONLY
    verify = inspect.signature(cleveragents.AuditService.verify)
    assert list(verify.parameters) == ["self", "checkpoint", "progress"]
    assert all(
        verify.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        and verify.parameters[name].default is None
        for name in ["checkpoint", "progress"]
    )
    assert list(inspect.signature(cleveragents.AuditService.checkpoint).parameters) == ["self"]
    assert isinstance(inspect.getattr_static(cleveragents.AuditService, "writer_id"), property)
    assert inspect.signature(cleveragents.AuditService.flush).parameters["timeout"].default is None
    subscribe = inspect.signature(cleveragents.ReactiveEventBus.subscribe)
    assert list(subscribe.parameters) == ["self", "handler", "event_type"]
    assert subscribe.parameters["event_type"].default is None


def test_package_is_typed() -> None:
    """The package ships py.typed, so type checkers use its annotations."""
    assert (Path(cleveragents.__file__).parent / "py.typed").is_file()


def test_version_is_the_installed_distributions() -> None:
    """cleveragents.__version__ is in __all__ and is pyproject.toml's version, as installed."""
    assert "__version__" in cleveragents.__all__
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert cleveragents.__version__ == declared
    assert cleveragents.__version__ == importlib.metadata.version("cleveragents-audit")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", cleveragents.__version__)
