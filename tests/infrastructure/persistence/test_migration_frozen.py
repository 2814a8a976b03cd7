"""The migrations' frozen copies of the chain's canonical form match the live code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from cleveragents.domain import chain
from cleveragents.infrastructure.persistence.migrations.versions import v0002_hash_chain as v0002

_TEXT = st.text(max_size=40)
_MAYBE = st.none() | _TEXT
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


def test_the_frozen_constants_are_the_live_ones() -> None:
    """v0002's genesis hash and entry tag are the live chain's."""
    assert v0002.GENESIS_HASH == chain.GENESIS_HASH
    assert v0002._ENTRY_TAG == chain.ENTRY_TAG


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    event_id=_TEXT,
    event_type=_TEXT,
    actor=_MAYBE,
    resource=_MAYBE,
    details=_TEXT,
    correlation_id=_MAYBE,
    created_at=_TIMES,
    prev=st.binary(min_size=32, max_size=32),
)
def test_v0002_hashes_rows_as_the_live_chain_does(
    seq: int,
    event_id: str,
    event_type: str,
    actor: str | None,
    resource: str | None,
    details: str,
    correlation_id: str | None,
    created_at: datetime,
    prev: bytes,
) -> None:
    """v0002's frozen header and hash give the live code's bytes for a row without writer."""
    fields = (seq, event_id, event_type, actor, resource, details, correlation_id, created_at)
    frozen = v0002.canonical_header(*fields)
    assert frozen == chain.canonical_header(*fields, None, None)
    assert v0002.entry_hash(prev.hex(), frozen) == chain.entry_hash(prev.hex(), frozen)


def test_v0002_reads_times_as_aware_utc() -> None:
    """The frozen column type reads naive SQLite text as UTC and converts offsets to UTC."""
    column = v0002._UTCDateTime()
    naive = datetime(2026, 1, 2, 3, 4, 5, 6)
    assert column.process_result_value(naive, None) == naive.replace(tzinfo=UTC)  # type: ignore[arg-type]
    shifted = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    read = column.process_result_value(shifted, None)  # type: ignore[arg-type]
    assert read is not None
    assert read.tzinfo is UTC
    assert read == shifted
