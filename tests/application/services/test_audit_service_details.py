"""Property tests: any JSON payload round-trips through a real database; anything else is refused.

One service per backend serves every example of the module (hypothesis runs many
examples per test; a database per example would be slow). Each example checks
what it recorded itself, so examples do not depend on each other.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from cleveragents import AuditService, Settings
from tests.strategies import json_details, json_values
from tests.support import GENEROUS_S, assert_same_json

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class Tracked:
    """A service, and the event ids it accepted across every example of the module."""

    service: AuditService
    accepted: list[str]


@pytest.fixture(
    scope="module", params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def tracked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tracked]:
    """One open async service for the whole module, on a SQLite file or a PostgreSQL schema."""
    if request.param == "postgresql":
        import psycopg
        from psycopg import sql

        from tests.conftest import libpq_conninfo

        base = request.getfixturevalue("postgres_base_url")
        schema = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(libpq_conninfo(base), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        url = (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('details')) / 'audit.db'}"
    # Redaction off: this module checks validation and encoding on arbitrary JSON, whose
    # keys may name secrets; tests/domain/test_redaction.py covers what redaction does.
    service = AuditService(Settings(database_url=url, audit_async=True, audit_redact=False))
    try:
        yield Tracked(service, [])
    finally:
        service.close()
        if request.param == "postgresql":
            with psycopg.connect(libpq_conninfo(base), autocommit=True) as connection:
                connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# -- strategies for bad payloads ----------------------------------------------------------


class Opaque:
    """Some application object that is not a JSON value."""


bad_values: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.text(), max_size=2),
    st.binary(max_size=8),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.times(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(Opaque),
    st.builds(object),
)

bad_keys: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False), st.tuples(st.integers())
)

# Where to hide the bad part: a path of dict keys and list positions from the top.
paths = st.lists(st.one_of(st.text(max_size=5), st.integers(0, 3)), max_size=4)


def hide(bad: Any, path: list[str | int], filler: list[Any]) -> Any:
    """Nest ``bad`` along ``path``, next to valid filler values."""
    inner = bad
    for step in reversed(path):
        if isinstance(step, int):
            items = list(filler[:3])
            items.insert(min(step, len(items)), inner)
            inner = items
        else:
            inner = {f"filler{i}": value for i, value in enumerate(filler[:2])} | {step: inner}
    return inner


@st.composite
def payloads_with_a_bad_value(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with one non-JSON value somewhere inside."""
    good = draw(json_details)
    filler = draw(st.lists(json_values, max_size=3))
    good["bad"] = hide(draw(bad_values), draw(paths), filler)
    return good


@st.composite
def payloads_with_a_bad_key(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with one non-str key somewhere inside."""
    good = draw(json_details)
    filler = draw(st.lists(json_values, max_size=3))
    good["bad"] = hide({draw(bad_keys): draw(json_values)}, draw(paths), filler)
    return good


# -- properties ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(payload=json_details)
def test_any_json_payload_round_trips_exactly(tracked: Tracked, payload: dict[str, Any]) -> None:
    """record() then flush() then get() gives back the very payload, types included."""
    entry = tracked.service.record("tool.invoked", details=payload)
    tracked.accepted.append(entry.event_id)
    assert tracked.service.flush(GENEROUS_S)
    stored = tracked.service.get(entry.event_id)
    assert stored is not None
    assert_same_json(stored.details, payload)
    assert_same_json(entry.details, payload)


@PROPERTY_SETTINGS
@given(good=json_details, bad=st.one_of(payloads_with_a_bad_value(), payloads_with_a_bad_key()))
def test_non_json_payloads_are_refused_and_the_service_goes_on(
    tracked: Tracked, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    """A non-JSON value or key raises in record(); entries before and after are kept."""
    service = tracked.service
    before = service.record("tool.invoked", details=good)
    tracked.accepted.append(before.event_id)
    enqueued = service.stats().enqueued
    with pytest.raises((TypeError, ValueError)):
        service.record("tool.invoked", details=bad)
    assert service.stats().enqueued == enqueued
    after = service.record("tool.completed", details=good)
    tracked.accepted.append(after.event_id)
    assert service.flush(GENEROUS_S)
    for entry in (before, after):
        stored = service.get(entry.event_id)
        assert stored is not None
        assert_same_json(stored.details, good)


@pytest.mark.parametrize(
    "details",
    [
        {"v": {1, 2}},
        {"v": b"raw"},
        {"v": dt.datetime.now(dt.UTC)},
        {"v": decimal.Decimal("0.1")},
        {"v": Opaque()},
        {"v": float("nan")},
        {"v": [1, {"w": float("-inf")}]},
        {"ok": {"deeper": {3: "int key"}}},
        [("not", "a mapping")],
    ],
    ids=repr,
)
def test_each_kind_of_bad_payload_is_refused(tracked: Tracked, details: Any) -> None:
    """Sets, bytes, datetimes, decimals, objects, NaN/inf, non-str keys raise Type/ValueError."""
    with pytest.raises((TypeError, ValueError)):
        tracked.service.record("tool.invoked", details=details)


def test_nothing_accepted_was_lost(tracked: Tracked) -> None:
    """After all the examples above, every accepted entry of this module is in the database."""
    service = tracked.service
    tracked.accepted.append(service.record("session.ended").event_id)
    assert service.flush(GENEROUS_S)
    assert service.count() == len(tracked.accepted)
    stats = service.stats()
    assert stats.enqueued == stats.written == len(tracked.accepted)
    assert stats.failed == 0
    assert all(service.get(event_id) is not None for event_id in tracked.accepted[-50:])
