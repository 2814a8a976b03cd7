"""Bad input is refused at record(), with an error naming the field, on SQLite and PostgreSQL.

Lone surrogates (not UTF-8), U+0000 in the indexed text columns, text longer than
MAX_TEXT_BYTES, details longer than MAX_DETAILS_BYTES or deeper than MAX_DETAILS_DEPTH:
refused in the caller's thread, so that the writer never meets what a backend would
refuse. Values exactly at a limit are committed on both backends, and verify, the
spool and its replay take them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cleveragents import AuditService, VerifyStatus
from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.domain.limits import MAX_DETAILS_BYTES, MAX_DETAILS_DEPTH, MAX_TEXT_BYTES
from cleveragents.domain.rows import EntryRow
from cleveragents.infrastructure.spool import Spool
from tests.conftest import MakeService
from tests.support import GENEROUS_S
from tests.trail_support import verify_url


def nested(levels: int) -> dict[str, Any]:
    """A mapping ``levels`` deep: {"a": {"a": ... {}}}."""
    root: dict[str, Any] = {}
    current = root
    for _ in range(levels - 1):
        current["a"] = {}
        current = current["a"]
    return root


def assert_clean(service: AuditService) -> None:
    """Nothing was queued, nothing failed, and the writer still commits."""
    stats = service.stats()
    assert (stats.enqueued, stats.failed, stats.spooled) == (0, 0, 0), stats
    service.record("tool.invoked", actor="agent", details={"ok": True})
    assert service.flush(GENEROUS_S) is True
    assert service.count() == 1


def test_a_lone_surrogate_in_details_is_refused_and_the_writer_lives_on(
    make_service: MakeService, database_url: str
) -> None:
    """The issue's case: ValueError naming the path; later records are committed, stats sane."""
    service = make_service(database_url=database_url)
    with pytest.raises(ValueError, match=r"details\['msg'\] holds the lone surrogate U\+D800"):
        service.record("tool.invoked", details={"msg": "\ud800"})
    assert_clean(service)
    service.close()
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.to_dict()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"details": {"a": [0, 1, "x\udfff"]}}, r"details\['a'\]\[2\]"),
        ({"details": {"k": {"\ud83d": 1}}}, r"the key '\\ud83d' of details\['k'\]"),
        ({"actor": "agent-\ud800"}, "actor"),
        ({"resource": "\udc80"}, "resource"),
        ({"correlation_id": "run-\udbff"}, "correlation_id"),
    ],
    ids=["details-value", "details-key", "actor", "resource", "correlation_id"],
)
def test_lone_surrogates_anywhere_are_refused_naming_the_place(
    make_service: MakeService, sqlite_url: str, arguments: dict[str, Any], named: str
) -> None:
    """record() and arecord() refuse a lone surrogate in any string, naming where it is."""
    service = make_service(database_url=sqlite_url)
    with pytest.raises(ValueError, match=f"{named} holds the lone surrogate"):
        service.record("tool.invoked", **arguments)
    with pytest.raises(ValueError, match=f"{named} holds the lone surrogate"):
        asyncio.run(service.arecord("tool.invoked", **arguments))
    assert_clean(service)


def test_a_valid_surrogate_pair_is_accepted(make_service: MakeService, database_url: str) -> None:
    """An astral character (a proper pair, one code point) is not a lone surrogate."""
    service = make_service(database_url=database_url)
    service.record("tool.invoked", actor="agent-\U0001f600", details={"e": "\U0001f600"})
    assert service.flush(GENEROUS_S) is True
    [entry] = service.query()
    assert (entry.actor, entry.details) == ("agent-\U0001f600", {"e": "\U0001f600"})


@pytest.mark.parametrize("field", ["actor", "resource", "correlation_id"])
def test_over_limit_text_and_nul_are_refused_on_both_backends(
    make_service: MakeService, database_url: str, field: str
) -> None:
    """A 1 MB value, one byte over the limit, or a NUL: ValueError naming field, size, limit."""
    service = make_service(database_url=database_url)
    with pytest.raises(ValueError, match=f"{field} is 1048576 bytes of UTF-8; at most 1024"):
        service.record("tool.invoked", **{field: "x" * 1024 * 1024})
    with pytest.raises(ValueError, match=f"{field} is 1026 bytes of UTF-8; at most 1024"):
        service.record("tool.invoked", **{field: "é" * 513})  # 2 bytes each
    with pytest.raises(ValueError, match=rf"{field} holds U\+0000 \(NUL\) at index 1"):
        service.record("tool.invoked", **{field: "a\x00b"})
    with pytest.raises(TypeError, match=f"{field} must be a str or None, not bytes"):
        service.record("tool.invoked", **{field: b"agent"})
    assert_clean(service)


def test_over_limit_details_are_refused_naming_size_and_depth(
    make_service: MakeService, sqlite_url: str
) -> None:
    """One byte too many, one level too deep, 10,000 levels, a dict holding itself: ValueError."""
    service = make_service(database_url=sqlite_url)
    overhead = len(b'{"x":""}')
    with pytest.raises(ValueError, match=f"details are {MAX_DETAILS_BYTES + 1} bytes"):
        service.record("tool.invoked", details={"x": "a" * (MAX_DETAILS_BYTES + 1 - overhead)})
    deep = f"nested {MAX_DETAILS_DEPTH + 1} levels deep; details allow at most {MAX_DETAILS_DEPTH}"
    with pytest.raises(ValueError, match=deep):
        service.record("tool.invoked", details=nested(MAX_DETAILS_DEPTH + 1))
    with pytest.raises(ValueError, match=deep):
        service.record("tool.invoked", details=nested(10_000))
    itself: dict[str, Any] = {}
    itself["self"] = itself
    with pytest.raises(ValueError, match=deep):
        service.record("tool.invoked", details=itself)
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match=deep):
        service.record("tool.invoked", details={"l": looped})
    assert_clean(service)


@pytest.mark.parametrize("redact", [True, False])
def test_deep_nesting_is_a_value_error_with_or_without_redaction(
    make_service: MakeService, sqlite_url: str, redact: bool
) -> None:
    """10,000 levels never surface as a RecursionError, whether the redactor walks them or not."""
    service = make_service(database_url=sqlite_url, audit_redact=redact)
    with pytest.raises(ValueError, match="levels deep"):
        service.record("tool.invoked", details={"wrapped": [nested(10_000)]})
    with pytest.raises(ValueError, match="levels deep"):
        asyncio.run(service.arecord("tool.invoked", details=nested(10_000)))
    assert_clean(service)


def at_limit_details() -> dict[str, Any]:
    """Details exactly MAX_DETAILS_BYTES long, holding a NUL and a 64-deep branch."""
    details: dict[str, Any] = {"deep": nested(MAX_DETAILS_DEPTH - 1), "nul": "a\x00b", "pad": ""}
    size = len(encode_details(details).encode())
    details["pad"] = "p" * (MAX_DETAILS_BYTES - size)
    assert len(encode_details(details).encode()) == MAX_DETAILS_BYTES
    return details


AT_LIMIT_TEXT = "é" * (MAX_TEXT_BYTES // 2)  # exactly MAX_TEXT_BYTES bytes of UTF-8


def test_values_exactly_at_the_limits_are_committed_and_verify(
    make_service: MakeService, database_url: str
) -> None:
    """Text and details exactly at their limits (and NUL inside details) are stored as given."""
    service = make_service(database_url=database_url)
    details = at_limit_details()
    service.record(
        "tool.invoked",
        actor=AT_LIMIT_TEXT,
        resource="r" * MAX_TEXT_BYTES,
        correlation_id="c" * MAX_TEXT_BYTES,
        details=details,
    )
    service.record("tool.invoked", details={"nul\x00key": "\x00", "n": 1})
    assert service.flush(GENEROUS_S) is True
    first, second = service.query()
    assert (first.actor, first.resource, first.correlation_id) == (
        AT_LIMIT_TEXT,
        "r" * MAX_TEXT_BYTES,
        "c" * MAX_TEXT_BYTES,
    )
    assert first.details == details
    assert second.details == {"nul\x00key": "\x00", "n": 1}
    assert service.count(actor=AT_LIMIT_TEXT) == 1  # the indexed column takes it
    service.close()
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.to_dict()


def test_a_spool_with_at_limit_and_over_limit_lines_replays_the_good_and_rejects_the_bad(
    make_service: MakeService, database_url: str
) -> None:
    """Replay takes an entry at the limits; lines over them are kept aside with the reason."""
    service = make_service(database_url=database_url)
    spool = Spool(service.spool_path.with_name("handmade.spool.jsonl"))
    now = datetime.now(UTC)
    good = EntryRow(
        event_id=new_event_id(),
        event_type="tool.invoked",
        actor=AT_LIMIT_TEXT,
        resource=None,
        details=encode_details(at_limit_details()),
        correlation_id=None,
        created_at=now,
        writer_id=None,
        writer_seq=None,
    )
    assert spool.append([good], "test") == []
    line = {
        "event_id": new_event_id(),
        "event_type": "tool.invoked",
        "details": {},
        "created_at": now.isoformat(),
    }
    bad_lines = [
        {**line, "event_id": new_event_id(), "actor": "x" * (MAX_TEXT_BYTES + 1)},
        {**line, "event_id": new_event_id(), "resource": "a\x00b"},
        {**line, "event_id": new_event_id(), "details": nested(MAX_DETAILS_DEPTH + 1)},
    ]
    with spool.path.open("ab") as handle:
        for bad in bad_lines:
            handle.write(orjson.dumps(bad) + b"\n")
        # A big integer sends the line to the standard library's parser: too deep for it.
        handle.write(b'{"n": 12345678901234567890, "d": ' + b"[" * 100_000 + b"]" * 100_000)
        handle.write(b"}\n")
    report = service.replay(spool.path)
    assert report.inserted == 1
    reasons = [rejected.reason for rejected in report.rejected]
    assert len(reasons) == 4, reasons
    assert "actor is 1025 bytes of UTF-8; at most 1024" in reasons[0]
    assert "resource holds U+0000 (NUL)" in reasons[1]
    assert f"nested {MAX_DETAILS_DEPTH + 1} levels deep" in reasons[2]
    assert "nested too deeply" in reasons[3]
    [entry] = service.query()
    assert entry.actor == AT_LIMIT_TEXT
    verified = service.verify()
    assert verified.status is VerifyStatus.INTACT, verified.to_dict()
