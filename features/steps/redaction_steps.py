"""Recording details with secrets in them, and what the database holds afterwards."""

from __future__ import annotations

import copy
import json

from audit_support import open_sqlite
from behave import then, when
from behave.runner import Context


@when('I record a "{event_type}" entry with the details {details}')
def when_record_with_details(context: Context, event_type: str, details: str) -> None:
    context.passed_details = json.loads(details)
    context.passed_copy = copy.deepcopy(context.passed_details)
    context.entry = context.service.record(event_type, details=context.passed_details)
    context.recorded.append(context.entry)


@then("the stored details are {details}")
def then_stored_details(context: Context, details: str) -> None:
    with open_sqlite(context.db_path) as connection:
        (text,) = connection.execute(
            "SELECT details FROM audit_log WHERE event_id = ?", (context.entry.event_id,)
        ).fetchone()
    expected = json.loads(details)
    assert json.loads(text) == expected, text
    assert context.entry.details == expected, context.entry.details


@then("the details I passed are unchanged")
def then_details_unchanged(context: Context) -> None:
    assert context.passed_details == context.passed_copy, context.passed_details
