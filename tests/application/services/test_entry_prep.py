"""EntryPreparer: the entry's details are its own, masked once, encoded once."""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Any

import pytest

from cleveragents.application.services.entry_prep import EntryPreparer, entry_of
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import PENDING_ID, AuditLogEntry
from cleveragents.domain.event_types import AuditEventType
from cleveragents.domain.redaction import MASK


def _record(details: Any, **settings: Any) -> tuple[AuditLogEntry, str]:
    """The entry and the stored details text that ``details`` make."""
    preparer = EntryPreparer(Settings(database_url="sqlite://", **settings))
    kind, row, masked = preparer.prepare(
        AuditEventType.TOOL_INVOKED, "agent:a", "tool:t", details, "run-1", "writer-1"
    )
    return entry_of(PENDING_ID, kind, row, masked), row.details


@pytest.mark.parametrize("redact", [True, False])
@pytest.mark.parametrize(
    "details",
    [
        {"q": "x", "n": 1},
        {"q": "Bearer abcdefgh12345", "n": 1},
        {"password": "p", "n": 1},
        MappingProxyType({"q": "x", "n": 1}),
    ],
)
def test_the_entry_does_not_follow_later_changes_to_the_callers_details(
    details: Any, redact: bool
) -> None:
    """A key the caller adds after record() does not show in the entry it returned."""
    caller = dict(details)  # each case its own: the parameters are shared
    given = MappingProxyType(caller) if isinstance(details, MappingProxyType) else caller
    entry, text = _record(given, audit_redact=redact)
    assert entry.details is not caller
    caller["added"] = True
    assert "added" not in entry.details
    assert entry.details == json.loads(text)


def test_the_entry_holds_the_masked_details_and_the_caller_keeps_the_secret() -> None:
    """Redaction masks a copy: the entry and the stored text have it, the caller's is left."""
    details = {"password": "p", "auth": "Bearer abcdefgh12345"}
    entry, text = _record(details)
    assert entry.details == {"password": MASK, "auth": MASK} == json.loads(text)
    assert details == {"password": "p", "auth": "Bearer abcdefgh12345"}


def test_no_details_make_an_empty_dict_of_the_entrys_own() -> None:
    """None is stored as {} and the entry's details are a fresh dict each time."""
    first, text = _record(None)
    second, _ = _record(None)
    assert first.details == {}
    assert text == "{}"
    assert first.details is not second.details


@pytest.mark.parametrize(
    ("details", "error", "message"),
    [
        ({"n": float("nan")}, ValueError, "details['n'] is nan"),
        ({1: "x"}, TypeError, "has the key 1 of type int"),
        ({"s": "\ud800"}, ValueError, "lone surrogate U+D800"),
        ({"t": {1, 2}}, TypeError, "details['t'] is a set"),
    ],
)
@pytest.mark.parametrize("redact", [True, False])
def test_bad_details_raise_the_same_errors_with_or_without_redaction(
    details: Any, error: type[Exception], message: str, redact: bool
) -> None:
    """The single walk defers to the full check: the errors name what is wrong as before."""
    with pytest.raises(error, match=re.escape(message)):
        _record(details, audit_redact=redact)
