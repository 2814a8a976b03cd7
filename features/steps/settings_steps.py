"""Settings from keywords, environment variables and a .env file; bad values and bad URLs."""

from __future__ import annotations

import os
from typing import Any

from audit_support import (
    in_scenario_dir,
    python_value,
    remember_service,
    sqlite_url,
    writer_threads,
)
from behave import given, then, when
from behave.runner import Context
from pydantic import ValidationError

from cleveragents import AuditService, AuditStorageError, Settings

# -- the environment ----------------------------------------------------------------------


@given('the environment variable "{name}" is "{value:Text}"')
def given_env(context: Context, name: str, value: str) -> None:
    os.environ[name] = in_scenario_dir(context, value)  # after_scenario restores it


@given('the environment variable "{name}" names the SQLite file "{db_name}"')
def given_env_database(context: Context, name: str, db_name: str) -> None:
    os.environ[name] = sqlite_url(context.tmp / db_name)


@given('a ".env" file in the working directory containing:')
def given_dotenv(context: Context) -> None:
    (context.tmp / ".env").write_text(context.text + "\n", encoding="utf-8")


@when("I create an audit service from the environment")
def when_service_from_env(context: Context) -> None:
    service = AuditService()
    remember_service(context, service, None)
    database = service.settings.database_url.removeprefix("sqlite:///")
    context.db_path = context.tmp / database


@when('I create an audit service with "{setting}" set to "{value}" in its settings')
def when_service_with_keyword(context: Context, setting: str, value: str) -> None:
    service = AuditService(Settings(**{setting: value}))
    remember_service(context, service, None)
    database = service.settings.database_url.removeprefix("sqlite:///")
    context.db_path = context.tmp / database


@then('the setting "{field}" is {expected}')
def then_setting_is(context: Context, field: str, expected: str) -> None:
    assert getattr(context, "error", None) is None, f"the settings failed: {context.error!r}"
    actual = getattr(context.settings, field)
    wanted = python_value(expected)
    assert actual == wanted, (actual, wanted)
    assert type(actual) is type(wanted), (type(actual), type(wanted))


@then('the service\'s setting "{field}" is {expected}')
def then_service_setting_is(context: Context, field: str, expected: str) -> None:
    context.settings = context.service.settings
    then_setting_is(context, field, expected)


# -- settings that cannot be used ---------------------------------------------------------


def _attempt(context: Context, make: Any) -> Any:
    """Call ``make()``; keep its error in ``context.error`` and return its result or None."""
    context.error = None
    context.writers_before_attempt = writer_threads()
    try:
        return make()
    except Exception as exc:
        context.error = exc
        return None


@when("I create the settings from the environment")
def when_settings_from_env(context: Context) -> None:
    context.settings = _attempt(context, Settings)


@when('I create settings with "{field}" set to {value}')
def when_settings_keyword(context: Context, field: str, value: str) -> None:
    context.settings = _attempt(context, lambda: Settings(**{field: python_value(value)}))


@when("I try to create an audit service from the environment")
def when_try_service_from_env(context: Context) -> None:
    service = _attempt(context, AuditService)
    if service is not None:
        remember_service(context, service, None)


@then('it fails with a ValidationError naming "{field}"')
def then_validation_error(context: Context, field: str) -> None:
    error = context.error
    assert isinstance(error, ValidationError), f"got {error!r}"
    locations = [item["loc"] for item in error.errors()]
    assert (field,) in locations, locations
    assert field in str(error), str(error)


@when('I create an {mode} audit service for the database URL "{url}"')
def when_service_for_url(context: Context, mode: str, url: str) -> None:
    asynchronous = {"asynchronous": True, "synchronous": False}[mode]
    settings = Settings(database_url=in_scenario_dir(context, url), audit_async=asynchronous)
    service = _attempt(context, lambda: AuditService(settings))
    if service is not None:
        remember_service(context, service, None)


@then('creating it failed with an AuditStorageError naming "{text}"')
def then_storage_error(context: Context, text: str) -> None:
    error = context.error
    assert isinstance(error, AuditStorageError), f"got {error!r}"
    assert in_scenario_dir(context, text) in str(error), str(error)


@then('the error does not contain "{text}"')
def then_error_lacks(context: Context, text: str) -> None:
    assert text not in str(context.error), str(context.error)


@then("no audit writer thread was started")
def then_no_writer(context: Context) -> None:
    started = writer_threads() - context.writers_before_attempt
    assert not started, started
