"""A full queue, and the overflow policy that decides what record() does then."""

from __future__ import annotations

import time

from audit_support import NUMBERED_EVENT_TYPE
from behave import then, when
from behave.runner import Context

from cleveragents import AuditQueueFullError


@when("I record entries until one is refused, at most {attempts:d} times")
def when_record_until_refused(context: Context, attempts: int) -> None:
    # The writer is stuck on its first batch, so it holds at most audit_batch_size
    # entries and the queue at most audit_queue_maxsize: the attempt after those must fail.
    context.error = None
    for _ in range(attempts):
        seq = len(context.recorded)
        started = time.monotonic()
        try:
            entry = context.service.record(NUMBERED_EVENT_TYPE, details={"seq": seq})
        except AuditQueueFullError as exc:
            context.error = exc
            context.refused_after_s = time.monotonic() - started
            return
        context.recorded.append(entry)


@then("the last record() failed with AuditQueueFullError")
def then_queue_full(context: Context) -> None:
    assert isinstance(context.error, AuditQueueFullError), (
        f"{len(context.recorded)} records were accepted and none refused"
    )


@then("the refused record() waited at least {seconds:g} seconds first")
def then_waited(context: Context, seconds: float) -> None:
    assert context.refused_after_s >= seconds, f"waited {context.refused_after_s:.3f} s"


@then("the writer committed them in {fewest:d} to {most:d} transactions")
def then_batches_between(context: Context, fewest: int, most: int) -> None:
    batches = context.service.stats().batches
    assert fewest <= batches <= most, f"{batches} transactions"
