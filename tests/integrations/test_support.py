"""What the framework adapters share: JSON conversion and recording that never raises."""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cleveragents import AuditEventType, AuditService
from cleveragents.domain.details import encode_details
from cleveragents.domain.limits import MAX_TEXT_BYTES
from cleveragents.integrations._support import (
    MAX_ITEMS,
    MAX_STRING_CHARS,
    AdapterRecorder,
    clip_text,
    to_jsonable,
)
from tests.conftest import MakeService


class _Colour(enum.Enum):
    RED = "red"


class _Message(BaseModel):
    role: str
    content: str
    sent: datetime


@dataclasses.dataclass
class _Document:
    text: str
    score: float


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_plain_json_is_kept_as_it_is() -> None:
    """JSON values come back equal."""
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": -3}}
    assert to_jsonable(value) == value


def test_framework_values_become_json() -> None:
    """Models, dataclasses, bytes, times, enums, sets and tuples become JSON values."""
    sent = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    converted = to_jsonable(
        {
            "message": _Message(role="user", content="hi", sent=sent),
            "document": _Document("text", 0.5),
            "raw": b"\x00\xffbytes",
            "when": sent,
            "day": date(2026, 12, 7),
            "took": timedelta(milliseconds=1500),
            "colour": _Colour.RED,
            "tags": ("a", "b"),
            "ids": {7},
            "uuid": uuid.UUID(int=1),
            "amount": Decimal("1.10"),
            "nan": float("nan"),
            3: "int key",
        }
    )
    assert converted == {
        "message": {"role": "user", "content": "hi", "sent": sent.isoformat()},
        "document": {"text": "text", "score": 0.5},
        "raw": base64.b64encode(b"\x00\xffbytes").decode(),
        "when": "2026-12-07T01:02:03+00:00",
        "day": "2026-12-07",
        "took": 1.5,
        "colour": "red",
        "tags": ["a", "b"],
        "ids": [7],
        "uuid": "00000000-0000-0000-0000-000000000001",
        "amount": "1.10",
        "nan": "nan",
        "3": "int key",
    }


def test_a_value_that_cannot_be_shown_is_named_not_raised() -> None:
    """A value whose __str__ raises becomes a note naming its type."""
    assert to_jsonable(_Unprintable()) == "<unconvertible _Unprintable: RuntimeError>"


def test_lone_surrogates_are_replaced() -> None:
    """Text UTF-8 cannot hold gets U+FFFD in place of each lone surrogate."""
    assert to_jsonable({"k\ud800": "a\udfffb?"}) == {"k\ufffd": "a\ufffdb?"}


def test_huge_values_are_clipped() -> None:
    """Long strings, long lists and deep nesting are cut with a note of what was cut."""
    text = to_jsonable("x" * (MAX_STRING_CHARS + 10))
    assert text.startswith("x" * MAX_STRING_CHARS)
    assert text.endswith("[10 more characters]")
    items = to_jsonable(list(range(MAX_ITEMS + 5)))
    assert items[:MAX_ITEMS] == list(range(MAX_ITEMS))
    assert items[MAX_ITEMS:] == ["... 5 more items"]
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    encode_details({"deep": to_jsonable(deep)})  # fits an entry's depth limit


@given(st.recursive(st.none() | st.floats() | st.text() | st.binary(), st.lists, max_leaves=20))
def test_anything_converted_is_accepted_by_details(value: Any) -> None:
    """Whatever to_jsonable returns, an entry's details accept."""
    orjson.loads(encode_details({"value": to_jsonable(value)}))


def test_clip_text_fits_the_indexed_text_limit() -> None:
    """Actor, resource and correlation id text fits MAX_TEXT_BYTES, without NUL."""
    assert clip_text(None) is None
    assert clip_text(42) == "42"
    assert clip_text("a\x00b") == "ab"
    clipped = clip_text("é" * MAX_TEXT_BYTES)
    assert clipped is not None
    assert len(clipped.encode()) <= MAX_TEXT_BYTES
    assert clipped.endswith("...")


def test_recorder_records_converted_values(make_service: MakeService, database_url: str) -> None:
    """An adapter's entry is committed with its values made JSON."""
    audit = make_service(database_url=database_url)
    recorder = AdapterRecorder(audit, "test")
    assert recorder.record(
        AuditEventType.TOOL_INVOKED,
        actor="agent",
        resource="tool:x",
        details={"input": b"hi"},
        correlation_id=uuid.UUID(int=5),
    )
    assert audit.flush(timeout=10)
    [entry] = audit.query()
    assert entry.details == {"input": "aGk="}
    assert entry.correlation_id == "00000000-0000-0000-0000-000000000005"
    assert audit.stats().adapter_failed == 0


def test_a_failed_record_is_counted_and_logged_not_raised(make_service: MakeService) -> None:
    """A record the service refuses is counted in stats().adapter_failed and logged."""
    from structlog.testing import capture_logs

    audit = make_service(database_url="sqlite:///audit.db")
    recorder = AdapterRecorder(audit, "test-adapter")
    audit.close()
    with capture_logs() as logs:
        assert not recorder.record(AuditEventType.TOOL_INVOKED, details={"a": 1})
    assert audit.stats().adapter_failed == 1
    [line] = [log for log in logs if log["event"] == "audit_adapter_failed"]
    assert line["adapter"] == "test-adapter"
    assert line["event_type"] == "tool.invoked"
    assert "AuditServiceClosedError" in line["error"]


async def _arecord_twice(recorder: AdapterRecorder) -> list[bool]:
    ok = await recorder.arecord(AuditEventType.LLM_REQUEST, details={"model": "fake"})
    recorder.audit.close()
    refused = await recorder.arecord(AuditEventType.LLM_RESPONSE)
    return [ok, refused]


def test_arecord_never_raises_either(make_service: MakeService, sqlite_url: str) -> None:
    """The asyncio path records, and after close counts the failure instead of raising."""
    import asyncio

    audit = make_service(database_url=sqlite_url)
    assert asyncio.run(_arecord_twice(AdapterRecorder(audit, "test"))) == [True, False]
    assert audit.stats().adapter_failed == 1
    with _reopen(sqlite_url) as reader:
        assert [e.event_type for e in reader.query()] == [AuditEventType.LLM_REQUEST]


def _reopen(url: str) -> AuditService:
    from cleveragents import Settings

    return AuditService(Settings(database_url=url, audit_async=False))


@pytest.mark.parametrize("audit_async", [True, False])
def test_stats_start_with_no_adapter_failures(make_service: MakeService, audit_async: bool) -> None:
    """A new service reports adapter_failed == 0 in both modes."""
    audit = make_service(database_url="sqlite:///audit.db", audit_async=audit_async)
    assert audit.stats().adapter_failed == 0
