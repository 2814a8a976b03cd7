"""record() fuzzed with arbitrary arguments, on SQLite and PostgreSQL.

Every call either raises TypeError or ValueError at once, or its entry is
committed: after close() the caller's entries in the database are exactly the
accepted ones, nothing failed, and the trail verifies intact. One service serves
every example of a run (as one would in an application); the database is checked
from outside once the service is closed.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cleveragents import AuditEventType, SystemEventType, VerifyStatus
from cleveragents.domain.limits import MAX_TEXT_BYTES
from tests.conftest import MakeService
from tests.processes import stored_rows
from tests.strategies import BIG
from tests.trail_support import verify_url

#: Any code point, with lone surrogates and U+0000 made frequent (both are rare otherwise).
any_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    st.text(st.sampled_from("a\x00\ud800\udfffé\U0001f600"), max_size=4),
)
#: Text both backends store: no lone surrogate; U+0000 is allowed in details only.
good_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
#: Text around the byte limit of actor, resource and correlation_id.
long_text = st.text(
    st.sampled_from("aé\U0001f600"),
    min_size=MAX_TEXT_BYTES // 4 - 2,
    max_size=MAX_TEXT_BYTES + 2,
)


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``valid`` about seven times in eight, else ``hostile``: most calls should be accepted."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda ok: valid if ok else hostile)


class Opaque:
    """Not a JSON value."""


not_json = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.binary(max_size=4),
    st.builds(Opaque),
    st.frozensets(st.integers(), max_size=2),
    st.complex_numbers(max_magnitude=10),
    any_text,  # a lone surrogate, maybe
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-BIG, max_value=BIG),
    st.floats(allow_nan=False, allow_infinity=False),
    good_text,
)
values = st.recursive(
    mostly(json_scalars, not_json),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(mostly(good_text, any_text), children, max_size=4),
        st.dictionaries(st.integers(), children, min_size=1, max_size=2),
    ),
    max_leaves=20,
)
details = mostly(
    st.one_of(st.none(), st.dictionaries(good_text, values, max_size=5)),
    st.one_of(st.dictionaries(any_text, values, max_size=3), values),
)
texts = mostly(
    st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)),
    st.one_of(any_text, long_text, st.integers(), st.binary(max_size=4)),
)
event_types = mostly(
    st.one_of(
        st.sampled_from(list(AuditEventType)),
        st.sampled_from([kind.value for kind in AuditEventType]),
    ),
    st.one_of(
        st.sampled_from(list(SystemEventType)),
        any_text,
        st.integers(),
        st.none(),
        st.lists(st.integers(), max_size=1),
    ),
)


def fuzz_record(make_service: MakeService, database_url: str) -> None:
    """Fuzz one service's record(); then check the closed database against what it accepted."""
    service = make_service(database_url=database_url, audit_batch_size=16)
    accepted: list[str] = []
    refused: list[type[BaseException]] = []

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @example(AuditEventType.TOOL_INVOKED, None, None, {"msg": "\ud800"}, None)  # the issue's
    @example(AuditEventType.TOOL_INVOKED, "\udfff", None, None, None)
    @example(AuditEventType.TOOL_INVOKED, "x" * 1024 * 1024, "a\x00", None, "c" * 1025)
    @example(AuditEventType.TOOL_INVOKED, "é" * 512, None, {"nul": "\x00"}, "c" * 1024)
    @given(
        event_type=event_types,
        actor=texts,
        resource=texts,
        details=details,
        correlation_id=texts,
    )
    def one_call(
        event_type: Any, actor: Any, resource: Any, details: Any, correlation_id: Any
    ) -> None:
        try:
            entry = service.record(
                event_type,
                actor=actor,
                resource=resource,
                details=details,
                correlation_id=correlation_id,
            )
        except (TypeError, ValueError) as exc:
            refused.append(type(exc))
            return
        accepted.append(entry.event_id)

    one_call()
    assert accepted, "no example was accepted: the strategies are too hostile"
    assert refused, "no example was refused: the strategies are too tame"
    service.close()
    stats = service.stats()
    assert (stats.enqueued, stats.written, stats.failed) == (len(accepted), len(accepted), 0)
    stored = [event_id for event_id, _, _ in stored_rows(database_url)]
    assert sorted(stored) == sorted(accepted)
    report = verify_url(database_url)
    assert report.status is VerifyStatus.INTACT, report.to_dict()


def test_record_fuzzed_refuses_at_once_or_commits(
    make_service: MakeService, database_url: str
) -> None:
    """Arbitrary arguments: TypeError/ValueError at the call, or committed; verify intact."""
    fuzz_record(make_service, database_url)
