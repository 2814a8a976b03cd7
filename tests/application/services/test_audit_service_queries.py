"""Reading the trail back: count(), query() and get() with every filter, and paging."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cleveragents import AuditEventType, AuditLogEntry, AuditService
from tests.conftest import MakeService
from tests.support import GENEROUS_S


@dataclasses.dataclass
class Trail:
    """A service with a known set of committed entries, in recording order."""

    service: AuditService
    entries: list[AuditLogEntry]


SPEC: list[tuple[AuditEventType, str | None, str | None, str | None]] = [
    (AuditEventType.SESSION_STARTED, "user:ann", "session:1", "run-1"),
    (AuditEventType.AGENT_STARTED, "agent:planner", None, "run-1"),
    (AuditEventType.TOOL_INVOKED, "agent:planner", "tool:search", "run-1"),
    (AuditEventType.TOOL_COMPLETED, "agent:planner", "tool:search", "run-1"),
    (AuditEventType.PERMISSION_DENIED, "agent:coder", "tool:shell", "run-2"),
    (AuditEventType.TOOL_INVOKED, "agent:coder", "tool:editor", "run-2"),
    (AuditEventType.TOOL_FAILED, "agent:coder", "tool:editor", None),
    (AuditEventType.AGENT_COMPLETED, None, None, None),
]


@pytest.fixture
def trail(make_service: MakeService, database_url: str) -> Trail:
    """Eight committed entries on the backend under test."""
    service = make_service(database_url=database_url)
    entries = []
    for index, (kind, actor, resource, correlation_id) in enumerate(SPEC):
        entries.append(
            service.record(
                kind,
                actor=actor,
                resource=resource,
                correlation_id=correlation_id,
                details={"index": index},
            )
        )
    assert service.flush(GENEROUS_S)
    return Trail(service, entries)


def event_ids(entries: list[AuditLogEntry]) -> list[str]:
    """The event ids, in the given order."""
    return [entry.event_id for entry in entries]


def expected(trail: Trail, **where: Any) -> list[str]:
    """The event ids of the recorded entries matching ``where``, in recording order."""
    return [
        entry.event_id
        for entry in trail.entries
        if all(getattr(entry, name) == value for name, value in where.items())
    ]


def test_query_without_filters_returns_everything_ascending(trail: Trail) -> None:
    """query() lists every committed entry in ascending id, as they were recorded."""
    found = trail.service.query()
    assert event_ids(found) == event_ids(trail.entries)
    assert [entry.id for entry in found] == sorted(entry.id for entry in found)
    for stored, recorded in zip(found, trail.entries, strict=True):
        assert stored == dataclasses.replace(recorded, id=stored.id)
    assert trail.service.count() == len(SPEC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_type", AuditEventType.TOOL_INVOKED),
        ("event_type", "tool.invoked"),
        ("event_type", "agent.completed"),
        ("event_type", "llm.request"),
        ("actor", "agent:planner"),
        ("actor", "agent:coder"),
        ("actor", "nobody"),
        ("resource", "tool:search"),
        ("resource", "tool:editor"),
        ("correlation_id", "run-1"),
        ("correlation_id", "run-2"),
    ],
)
def test_each_filter(trail: Trail, name: str, value: Any) -> None:
    """count() and query() match an exact value of each filter."""
    wanted = expected(trail, **{name: value})
    assert event_ids(trail.service.query(**{name: value})) == wanted
    assert trail.service.count(**{name: value}) == len(wanted)


def test_filters_combine_with_and(trail: Trail) -> None:
    """Several filters must all match."""
    found = trail.service.query(
        event_type="tool.invoked", actor="agent:coder", correlation_id="run-2"
    )
    assert event_ids(found) == [trail.entries[5].event_id]
    assert trail.service.count(actor="agent:planner", resource="tool:search") == 2
    assert trail.service.count(actor="agent:planner", correlation_id="run-2") == 0


def test_since_is_inclusive_and_until_exclusive(trail: Trail) -> None:
    """since <= created_at < until, using the exact times record() returned."""
    pivot = trail.entries[3]
    since = trail.service.query(since=pivot.created_at)
    assert event_ids(since) == event_ids(trail.entries[3:])
    until = trail.service.query(until=pivot.created_at)
    assert event_ids(until) == event_ids(trail.entries[:3])
    window = trail.service.query(
        since=trail.entries[2].created_at, until=trail.entries[5].created_at
    )
    assert event_ids(window) == event_ids(trail.entries[2:5])
    assert trail.service.count(since=pivot.created_at) == len(SPEC) - 3
    assert trail.service.count(until=pivot.created_at) == 3


def test_time_filters_accept_any_time_zone(trail: Trail) -> None:
    """An aware datetime in another zone means the same instant."""
    pivot = trail.entries[4].created_at
    plus_five = pivot.astimezone(timezone(timedelta(hours=5, minutes=30)))
    minus_eight = pivot.astimezone(timezone(timedelta(hours=-8)))
    assert event_ids(trail.service.query(since=plus_five)) == event_ids(trail.entries[4:])
    assert event_ids(trail.service.query(until=minus_eight)) == event_ids(trail.entries[:4])


def test_time_filters_far_past_and_future(trail: Trail) -> None:
    """A window around everything finds everything; one in the future finds nothing."""
    now = datetime.now(UTC)
    assert trail.service.count(since=now - timedelta(days=1), until=now + timedelta(days=1)) == 8
    assert trail.service.count(since=now + timedelta(hours=1)) == 0
    assert trail.service.query(until=now - timedelta(days=1)) == []


def test_paging_with_after_id(trail: Trail) -> None:
    """query(after_id=last id seen, limit=n) walks the trail in ascending id without gaps."""
    pages: list[list[AuditLogEntry]] = []
    after_id = None
    while page := trail.service.query(after_id=after_id, limit=3):
        pages.append(page)
        after_id = page[-1].id
    assert [len(page) for page in pages] == [3, 3, 2]
    assert event_ids([entry for page in pages for entry in page]) == event_ids(trail.entries)


def test_paging_combines_with_filters(trail: Trail) -> None:
    """after_id pages through a filtered result."""
    first = trail.service.query(correlation_id="run-1", limit=2)
    rest = trail.service.query(correlation_id="run-1", after_id=first[-1].id, limit=10)
    assert event_ids(first + rest) == expected(trail, correlation_id="run-1")


def test_after_id_beyond_the_end_and_before_the_start(trail: Trail) -> None:
    """after_id past the last id gives nothing; 0 or a negative id gives everything."""
    last = trail.service.query(limit=100)[-1].id
    assert trail.service.query(after_id=last) == []
    assert len(trail.service.query(after_id=0)) == 8
    assert len(trail.service.query(after_id=-5)) == 8


def test_limit_caps_the_result(trail: Trail) -> None:
    """limit is the most entries returned; the first ones come first."""
    assert event_ids(trail.service.query(limit=1)) == event_ids(trail.entries[:1])
    assert len(trail.service.query(limit=5)) == 5
    assert len(trail.service.query(limit=10_000)) == 8


def test_get_returns_the_entry_or_none(trail: Trail) -> None:
    """get(event_id) returns that committed entry, or None when there is none."""
    recorded = trail.entries[6]
    stored = trail.service.get(recorded.event_id)
    assert stored == dataclasses.replace(recorded, id=stored.id if stored else -1)
    assert trail.service.get(str(uuid.uuid4())) is None
    assert trail.service.get("not-a-uuid") is None


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_raises_value_error(trail: Trail, limit: int) -> None:
    """limit must be at least 1."""
    with pytest.raises(ValueError, match="limit"):
        trail.service.query(limit=limit)


@pytest.mark.parametrize("limit", ["10", 2.5, None, True])
def test_limit_of_wrong_type_raises_type_error(trail: Trail, limit: Any) -> None:
    """limit must be an int (not a bool)."""
    with pytest.raises(TypeError, match="limit"):
        trail.service.query(limit=limit)


@pytest.mark.parametrize("after_id", ["3", 1.0, False])
def test_after_id_of_wrong_type_raises_type_error(trail: Trail, after_id: Any) -> None:
    """after_id must be an int or None."""
    with pytest.raises(TypeError, match="after_id"):
        trail.service.query(after_id=after_id)


@pytest.mark.parametrize("name", ["since", "until"])
def test_naive_datetimes_are_rejected(trail: Trail, name: str) -> None:
    """since and until must be timezone-aware; a naive datetime raises ValueError."""
    naive = datetime.now()
    with pytest.raises(ValueError, match="timezone-aware"):
        trail.service.query(**{name: naive})
    with pytest.raises(ValueError, match="timezone-aware"):
        trail.service.count(**{name: naive})


@pytest.mark.parametrize("name", ["since", "until"])
def test_time_filters_must_be_datetimes(trail: Trail, name: str) -> None:
    """since and until given as text raise TypeError."""
    with pytest.raises(TypeError, match=name):
        trail.service.count(**{name: "2024-01-01T00:00:00Z"})


def test_unknown_event_type_filter_raises_value_error(trail: Trail) -> None:
    """Filtering by an event type that does not exist is a ValueError, not an empty result."""
    with pytest.raises(ValueError, match="unknown audit event type"):
        trail.service.count(event_type="tool.exploded")


@pytest.mark.parametrize("name", ["actor", "resource", "correlation_id"])
def test_text_filters_must_be_str(trail: Trail, name: str) -> None:
    """actor, resource and correlation_id filters must be str."""
    with pytest.raises(TypeError, match=name):
        trail.service.query(**{name: 5})


@pytest.mark.parametrize("method", ["count", "query"])
def test_unknown_filter_keyword_raises_type_error(trail: Trail, method: str) -> None:
    """A misspelt or unknown filter is a TypeError, never silently ignored."""
    with pytest.raises(TypeError):
        getattr(trail.service, method)(actors="agent:coder")
    with pytest.raises(TypeError):
        getattr(trail.service, method)(details={"index": 1})


def test_get_requires_a_str(trail: Trail) -> None:
    """get() with a non-str id raises TypeError."""
    with pytest.raises(TypeError, match="event_id"):
        trail.service.get(uuid.UUID(trail.entries[0].event_id))  # type: ignore[arg-type]


def test_filters_positional_arguments_are_refused(trail: Trail) -> None:
    """Filters are keyword-only, so an argument in the wrong position cannot go unnoticed."""
    with pytest.raises(TypeError):
        trail.service.count("tool.invoked")  # type: ignore[misc]
    with pytest.raises(TypeError):
        trail.service.query("tool.invoked")  # type: ignore[misc]
