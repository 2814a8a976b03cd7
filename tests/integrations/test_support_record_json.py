"""AdapterRecorder.record_json: details recorded as given, made to fit only when refused."""

from __future__ import annotations

from cleveragents import AuditEventType
from cleveragents.integrations._support import AdapterRecorder
from tests.conftest import MakeService


def test_fitting_details_are_recorded_as_given(make_service: MakeService, sqlite_url: str) -> None:
    """Plain JSON details (tuples included) are stored as passed."""
    audit = make_service(database_url=sqlite_url, audit_async=False)
    recorder = AdapterRecorder(audit, "test")
    details = {"reasons": ("stop",), "n": 1}
    assert recorder.record_json(
        AuditEventType.LLM_RESPONSE, actor="a", resource="m", details=details, correlation_id="c"
    )
    (entry,) = audit.query()
    assert (entry.actor, entry.resource, entry.correlation_id) == ("a", "m", "c")
    assert entry.details == {"reasons": ["stop"], "n": 1}


def test_refused_details_are_converted_not_lost(make_service: MakeService, sqlite_url: str) -> None:
    """NaN and a lone surrogate make record() refuse; record_json records them converted."""
    audit = make_service(database_url=sqlite_url, audit_async=False)
    recorder = AdapterRecorder(audit, "test")
    assert recorder.record_json(
        AuditEventType.LLM_REQUEST, details={"t": float("nan"), "s": "a\ud800b"}
    )
    (entry,) = audit.query()
    assert entry.details == {"t": "nan", "s": "a\ufffdb"}
    assert audit.stats().adapter_failed == 0


def test_a_closed_service_is_counted_not_raised(make_service: MakeService, sqlite_url: str) -> None:
    """record_json on a closed service returns False and counts the loss."""
    audit = make_service(database_url=sqlite_url)
    audit.close()
    recorder = AdapterRecorder(audit, "test")
    assert not recorder.record_json(AuditEventType.TOOL_INVOKED, details={})
    assert audit.stats().adapter_failed == 1
