"""record() with input it must refuse, in the caller's thread."""

from __future__ import annotations

from audit_support import python_value
from behave import then, when
from behave.runner import Context


def _try_record(context: Context, event_type: object, **fields: object) -> None:
    context.error = None
    try:
        context.service.record(event_type, **fields)  # type: ignore[arg-type]
    except Exception as exc:
        context.error = exc


@when("I try to record an entry of type {event_type}")
def when_record_bad_type(context: Context, event_type: str) -> None:
    _try_record(context, python_value(event_type), details={"bad": "type"})


@when("I try to record an entry with the details {details}")
def when_record_bad_details(context: Context, details: str) -> None:
    _try_record(context, "tool.invoked", details=python_value(details))


@when("I try to record an entry")
def when_try_record(context: Context) -> None:
    _try_record(context, "tool.invoked", details={"try": 1})


@then("the record is refused with {error_type}")
def then_refused_with(context: Context, error_type: str) -> None:
    error = context.error
    assert error is not None, "record() accepted it"
    names = [cls.__name__ for cls in type(error).__mro__]
    assert error_type in names, f"{type(error).__name__}: {error}"


@then('the error message mentions "{text}"')
def then_error_mentions(context: Context, text: str) -> None:
    assert text in str(context.error), str(context.error)
