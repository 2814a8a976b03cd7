"""record() inside an OpenTelemetry span carries its trace and span ids in details["otel"]."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from cleveragents import AuditService, Settings
from cleveragents.domain.verification import VerifyStatus
from cleveragents.infrastructure.trace_context import current_span_ids, with_current_span
from tests.conftest import MakeService

FLUSH_S = 20.0

# A remote parent such as a propagated traceparent header gives: fixed, known ids.
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
IDS = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}


def remote_span() -> NonRecordingSpan:
    """A span with the fixed ids, as a propagated W3C traceparent would make current."""
    return NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))
    )


@pytest.fixture
def tracer() -> trace.Tracer:
    """A tracer of a provider of its own (no exporter: the ids are what matter)."""
    return TracerProvider(shutdown_on_exit=False).get_tracer("tests.trace_context")


def test_record_inside_a_span_carries_its_ids_and_verify_stays_intact(
    make_service: MakeService, database_url: str, tracer: trace.Tracer
) -> None:
    """Inside a span: details["otel"] holds its ids, stored and chained; outside: no key."""
    audit = make_service(database_url=database_url)
    audit.record("session.started", details={"user": "u1"})
    with tracer.start_as_current_span("request") as span:
        returned = audit.record("tool.invoked", details={"tool": "search"})
        audit.record("tool.completed")
    audit.record("session.ended", details={"user": "u1"})
    context = span.get_span_context()
    ids = {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
    assert returned.details == {"tool": "search", "otel": ids}
    assert audit.flush(FLUSH_S)
    stored = [e.details for e in audit.query()]
    assert stored == [
        {"user": "u1"},
        {"tool": "search", "otel": ids},
        {"otel": ids},
        {"user": "u1"},
    ]
    assert audit.verify().status is VerifyStatus.INTACT


def test_default_redaction_keeps_the_ids(make_service: MakeService, sqlite_url: str) -> None:
    """The hex ids of a remote parent survive the default redaction unmasked."""
    audit = make_service(database_url=sqlite_url, audit_async=False)
    with trace.use_span(remote_span()):
        entry = audit.record("llm.request", details={"prompt_tokens": 3})
    assert entry.details == {"prompt_tokens": 3, "otel": IDS}
    assert audit.get(entry.event_id).details == {"prompt_tokens": 3, "otel": IDS}  # type: ignore[union-attr]


def test_arecord_in_a_task_carries_the_span_of_the_task(
    make_service: MakeService, sqlite_url: str, tracer: trace.Tracer
) -> None:
    """Tasks inherit the current span through contextvars; arecord() sees it."""
    audit = make_service(database_url=sqlite_url)

    async def main() -> dict[str, object]:
        with trace.use_span(remote_span()):
            entry = await asyncio.create_task(audit.arecord("agent.started"))
        return entry.details

    assert asyncio.run(main()) == {"otel": IDS}


def test_the_callers_own_otel_key_is_left_alone(make_service: MakeService, sqlite_url: str) -> None:
    """details that already have "otel" keep the caller's value."""
    audit = make_service(database_url=sqlite_url)
    with trace.use_span(remote_span()):
        entry = audit.record("tool.invoked", details={"otel": "mine"})
    assert entry.details == {"otel": "mine"}


def test_details_that_are_not_a_mapping_are_still_refused(
    make_service: MakeService, sqlite_url: str
) -> None:
    """Inside a span, a list as details fails with record()'s usual TypeError."""
    audit = make_service(database_url=sqlite_url)
    with trace.use_span(remote_span()), pytest.raises(TypeError, match="mapping"):
        audit.record("tool.invoked", details=["not", "a", "mapping"])  # type: ignore[arg-type]


def test_the_setting_turns_it_off(
    make_service: MakeService, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """audit_otel_context=False (or CLEVERAGENTS_AUDIT_OTEL_CONTEXT=false): no "otel" key."""
    monkeypatch.setenv("CLEVERAGENTS_AUDIT_OTEL_CONTEXT", "false")
    assert Settings().audit_otel_context is False
    audit = make_service(database_url=sqlite_url)
    with trace.use_span(remote_span()):
        entry = audit.record("tool.invoked", details={"tool": "t"})
    assert entry.details == {"tool": "t"}
    assert Settings(audit_otel_context=True).audit_otel_context is True


def test_no_current_span_means_no_ids() -> None:
    """Outside any span (OpenTelemetry imported) the lookup finds nothing."""
    assert current_span_ids() is None
    assert with_current_span(None) is None
    details = {"a": 1}
    assert with_current_span(details) is details


def test_nothing_is_imported_when_the_application_does_not_use_opentelemetry(
    tmp_path: Path,
) -> None:
    """A process that never imported OpenTelemetry records without importing it."""
    script = textwrap.dedent(
        f"""
        import sys
        from cleveragents import AuditService, Settings
        url = "sqlite:///{tmp_path / "plain.db"}"
        with AuditService(Settings(database_url=url)) as audit:
            entry = audit.record("tool.invoked", details={{"tool": "t"}})
        assert entry.details == {{"tool": "t"}}, entry.details
        loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
        assert not loaded, loaded
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_record_outside_a_span_in_a_service_made_inside_one(
    make_service: MakeService, sqlite_url: str
) -> None:
    """What counts is the span current at record(), not at the service's creation."""
    with trace.use_span(remote_span()):
        audit: AuditService = make_service(database_url=sqlite_url)
    assert audit.record("tool.invoked").details == {}


def test_each_span_gives_its_own_ids(tracer: trace.Tracer) -> None:
    """Records in sibling and nested spans carry the ids of the span current at each call."""
    seen = []
    with tracer.start_as_current_span("parent") as parent:
        seen.append((with_current_span({}), parent))
        for name in ("first", "second"):
            with tracer.start_as_current_span(name) as child:
                seen.append((with_current_span({}), child))
        seen.append((with_current_span({}), parent))
    for details, span in seen:
        context = span.get_span_context()
        assert details == {
            "otel": {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
        }
    assert len({details["otel"]["span_id"] for details, _ in seen}) == 3  # type: ignore[index]
