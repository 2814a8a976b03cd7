"""Opening services, recording, flushing, closing, and what ends up in the database."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from audit_support import (
    NUMBERED_EVENT_TYPE,
    flush,
    open_service,
    record_numbered,
    stored_rows,
)
from behave import given, then, when
from behave.runner import Context

from cleveragents import AuditServiceClosedError, AuditStats

# -- opening a service --------------------------------------------------------------------


@given('an audit service writing to "{db_name:Text}"')
@given('an audit service writing to "{db_name:Text}" with these settings:')
def given_service(context: Context, db_name: str) -> None:
    settings = {}
    if context.table is not None:
        settings = {row["setting"]: row["value"] for row in context.table}
    open_service(context, db_name, **settings)


@given('an audit service writing to "{db_name:Text}" with "{setting}" set to "{value}"')
def given_service_with(context: Context, db_name: str, setting: str, value: str) -> None:
    open_service(context, db_name, **{setting: value})


@then("the service is asynchronous")
def then_service_async(context: Context) -> None:
    assert context.service.is_async is True, "is_async is False"


@then("the service is synchronous")
def then_service_sync(context: Context) -> None:
    assert context.service.is_async is False, "is_async is True"


# -- recording ----------------------------------------------------------------------------


@given("I have recorded {count:d} entries")
@when("I record {count:d} entries")
@when("I record {count:d} entry")
@when("I record {count:d} more entries")
@when("I record {count:d} more entry")
def when_record_numbered(context: Context, count: int) -> None:
    record_numbered(context, count)


@when('I record a "{event_type}" entry')
def when_record_one(context: Context, event_type: str) -> None:
    started = time.monotonic()
    context.entry = context.service.record(event_type)
    context.record_seconds = time.monotonic() - started
    context.recorded.append(context.entry)


@when('I record a "{event_type}" entry by "{actor}" on "{resource}"')
def when_record_by_on(context: Context, event_type: str, actor: str, resource: str) -> None:
    context.recorded_at = datetime.now(UTC)
    started = time.monotonic()
    context.entry = context.service.record(
        event_type,
        actor=actor,
        resource=resource,
        details={"reason": "behave"},
        correlation_id="run-1",
    )
    context.record_seconds = time.monotonic() - started
    context.recorded.append(context.entry)


@then("the returned entry is pending with id -1")
def then_entry_pending(context: Context) -> None:
    assert context.entry.id == -1, f"id is {context.entry.id}"
    assert context.entry.is_pending


@then("the returned entry has a real database id")
def then_entry_has_id(context: Context) -> None:
    assert context.entry.id >= 1, f"id is {context.entry.id}"
    assert not context.entry.is_pending


@then("its event_id is a time-ordered UUID")
def then_event_id_uuid7(context: Context) -> None:
    parsed = uuid.UUID(context.entry.event_id)
    assert str(parsed) == context.entry.event_id
    assert parsed.version == 7, f"UUID version {parsed.version}"


@then("its created_at is the time of the call, in UTC")
def then_created_at_now(context: Context) -> None:
    created_at = context.entry.created_at
    assert created_at.tzinfo is not None, "created_at is naive"
    assert created_at.utcoffset() == timedelta(0), f"offset {created_at.utcoffset()}"
    now = datetime.now(UTC)
    assert context.recorded_at <= created_at <= now, (context.recorded_at, created_at, now)


@then("record() returned in less than {seconds:g} second")
def then_record_was_quick(context: Context, seconds: float) -> None:
    assert context.record_seconds < seconds, f"record() took {context.record_seconds:.3f} s"


# -- flush and close ----------------------------------------------------------------------


@when("I flush the service")
def when_flush(context: Context) -> None:
    context.flushed = flush(context.service)


@when("I flush the service with a timeout of {seconds:g} seconds")
def when_flush_timeout(context: Context, seconds: float) -> None:
    started = time.monotonic()
    context.flushed = flush(context.service, seconds)
    context.flush_seconds = time.monotonic() - started


@then("the flush succeeds")
def then_flush_true(context: Context) -> None:
    assert context.flushed is True, f"flush() returned {context.flushed!r}"


@then("the flush reports a failure")
def then_flush_false(context: Context) -> None:
    assert context.flushed is False, f"flush() returned {context.flushed!r}"


@then("the flush gave up after about {seconds:g} seconds")
def then_flush_gave_up(context: Context, seconds: float) -> None:
    assert context.flushed is False, f"flush() returned {context.flushed!r}"
    assert seconds <= context.flush_seconds < seconds + 2.0, f"took {context.flush_seconds:.2f} s"


@when("I close the service")
@when("I close the service again")
def when_close(context: Context) -> None:
    started = time.monotonic()
    context.service.close()
    context.close_seconds = time.monotonic() - started


@then("close returned within {seconds:g} seconds")
def then_close_quick(context: Context, seconds: float) -> None:
    assert context.close_seconds < seconds, f"close() took {context.close_seconds:.2f} s"


@then("the service is closed")
def then_closed(context: Context) -> None:
    assert context.service.closed


@then("recording another entry fails with AuditServiceClosedError")
def then_record_refused_closed(context: Context) -> None:
    try:
        context.service.record(NUMBERED_EVENT_TYPE, details={"late": True})
    except AuditServiceClosedError as exc:
        context.error = exc
    else:
        raise AssertionError("record() after close() did not raise")


@then("that error is a RuntimeError")
def then_error_is_runtime(context: Context) -> None:
    assert isinstance(context.error, RuntimeError), type(context.error).__mro__


@when('I use a new service on "{db_name}" as a context manager to record {count:d} entries')
def when_context_manager(context: Context, db_name: str, count: int) -> None:
    with open_service(context, db_name) as service:
        record_numbered(context, count)
        assert not service.closed


# -- what is stored -----------------------------------------------------------------------


@then("the database holds {count:d} entries")
@then("the database holds {count:d} entry")
def then_db_holds(context: Context, count: int) -> None:
    rows = stored_rows(context.db_path)
    assert len(rows) == count, f"{len(rows)} rows in {context.db_path.name}, expected {count}"


@then("the database holds no entries yet")
def then_db_empty(context: Context) -> None:
    then_db_holds(context, 0)


@then('the database "{db_name}" holds {count:d} entries')
def then_named_db_holds(context: Context, db_name: str, count: int) -> None:
    rows = stored_rows(context.tmp / db_name)
    assert len(rows) == count, f"{len(rows)} rows in {db_name}, expected {count}"


@then("the database holds exactly the entries that were accepted, in order")
def then_db_holds_accepted(context: Context) -> None:
    stored = [row["event_id"] for row in stored_rows(context.db_path)]
    accepted = [entry.event_id for entry in context.recorded]
    assert stored == accepted, f"stored {len(stored)} rows, accepted {len(accepted)} entries"


@then("the statistics show {enqueued:d} enqueued, {written:d} written and {failed:d} failed")
def then_stats(context: Context, enqueued: int, written: int, failed: int) -> None:
    stats: AuditStats = context.service.stats()
    actual = (stats.enqueued, stats.written, stats.failed)
    assert actual == (enqueued, written, failed), stats


@then("the statistics count {count:d} {counter}")
def then_stat(context: Context, count: int, counter: str) -> None:
    stats = context.service.stats()
    assert getattr(stats, counter) == count, stats


@then("the service keeps working and loses nothing accepted before")
def then_keeps_working(context: Context) -> None:
    record_numbered(context, 2)
    assert flush(context.service) is True, "flush() after the refused record failed"
    then_db_holds_accepted(context)
    stats = context.service.stats()
    expected = len(context.recorded)
    assert (stats.enqueued, stats.written, stats.failed) == (expected, expected, 0), stats


@then("the stored entry matches the returned one and has a real id")
def then_stored_matches_returned(context: Context) -> None:
    returned = context.entry
    stored = context.service.get(returned.event_id)
    assert stored is not None, f"no entry with event_id {returned.event_id}"
    assert stored.id >= 1, stored
    for field in ("event_type", "actor", "resource", "details", "correlation_id", "created_at"):
        assert getattr(stored, field) == getattr(returned, field), (field, stored, returned)
