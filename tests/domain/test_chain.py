"""The chain's canonical form, recomputed with the standard library alone, as documented."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleveragents.domain.chain import (
    ENTRY_TAG,
    GENESIS_HASH,
    HMAC_TAG,
    canonical_header,
    entry_hash,
    entry_hmac,
    entry_hmac_of_digest,
    epoch_micros,
)
from cleveragents.domain.details import encode_details
from cleveragents.domain.ids import new_event_id
from cleveragents.infrastructure.persistence.database import AuditDatabase, open_database
from tests.conftest import MakeService, libpq_conninfo
from tests.strategies import BIG, json_details
from tests.support import sqlite_path

# -- the reference: the module docstring of cleveragents.domain.chain, and nothing else --

REFERENCE_ENTRY_TAG = b"cleveragents-audit/v1/entry\x00"
REFERENCE_HMAC_TAG = b"cleveragents-audit/v1/hmac\x00"
REFERENCE_GENESIS = "0" * 64
KEY = "a key only the auditors hold \N{KEY}"


def reference_micros(moment: datetime) -> int:
    """Integer microseconds since 1970-01-01T00:00:00Z, by calendar arithmetic (no subtraction)."""
    offset = moment.utcoffset()
    assert offset is not None
    days = moment.toordinal() - date(1970, 1, 1).toordinal()
    seconds = days * 86_400 + moment.hour * 3_600 + moment.minute * 60 + moment.second
    return seconds * 1_000_000 + moment.microsecond - offset // timedelta(microseconds=1)


def reference_header(fields: dict[str, Any]) -> bytes:
    """The canonical header exactly as the docstring writes it, with json and hashlib."""
    return json.dumps(
        {
            "actor": fields["actor"],
            "correlation_id": fields["correlation_id"],
            "created_at": reference_micros(fields["created_at"]),
            "details_sha256": hashlib.sha256(fields["details"].encode("utf-8")).hexdigest(),
            "event_id": fields["event_id"],
            "event_type": fields["event_type"],
            "resource": fields["resource"],
            "seq": fields["seq"],
            "writer_id": fields["writer_id"],
            "writer_seq": fields["writer_seq"],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def reference_hash(prev_hash: str, header: bytes) -> str:
    """``sha256(ENTRY_TAG + bytes.fromhex(prev_hash) + header).hexdigest()``."""
    return hashlib.sha256(REFERENCE_ENTRY_TAG + bytes.fromhex(prev_hash) + header).hexdigest()


def reference_hmac(key: bytes, hash_hex: str) -> str:
    """``HMAC-SHA256(key, HMAC_TAG + bytes.fromhex(entry_hash)).hexdigest()``."""
    return hmac.new(key, REFERENCE_HMAC_TAG + bytes.fromhex(hash_hex), hashlib.sha256).hexdigest()


def library_header(fields: dict[str, Any]) -> bytes:
    """The library's canonical header of the same fields."""
    return canonical_header(
        seq=fields["seq"],
        event_id=fields["event_id"],
        event_type=fields["event_type"],
        actor=fields["actor"],
        resource=fields["resource"],
        details=fields["details"],
        correlation_id=fields["correlation_id"],
        created_at=fields["created_at"],
        writer_id=fields["writer_id"],
        writer_seq=fields["writer_seq"],
    )


# -- strategies --------------------------------------------------------------------------

#: Any text that UTF-8 can encode: every code point but the lone surrogates.
any_text = st.text(st.characters(exclude_categories=["Cs"]))
optional_text = st.none() | any_text
#: The integers a BIGINT column holds (and a little beyond: orjson takes unsigned 64-bit too).
int64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
fixed_offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
    max_value=timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999),
).map(timezone)
aware_datetimes = st.datetimes(timezones=fixed_offsets | st.timezones() | st.just(UTC))
#: What a PostgreSQL text column holds: no lone surrogates, no U+0000.
stored_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
#: Offsets PostgreSQL's timestamptz input takes: whole seconds within +-15:59:59 (it
#: refuses "+00:00:00.000001" and "+16:00", which Python allows).
postgres_offsets = st.integers(min_value=-57_599, max_value=57_599).map(
    lambda seconds: timezone(timedelta(seconds=seconds))
)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)

header_fields = st.fixed_dictionaries(
    {
        "seq": int64,
        "event_id": any_text,
        "event_type": any_text,
        "actor": optional_text,
        "resource": optional_text,
        "details": any_text,
        "correlation_id": optional_text,
        "created_at": aware_datetimes,
        "writer_id": optional_text,
        "writer_seq": st.none() | int64,
    }
)


# -- the canonical form ------------------------------------------------------------------


def test_the_documented_constants_are_the_wire_format() -> None:
    """The domain tags and the genesis hash are the bytes the docstring names."""
    assert ENTRY_TAG == REFERENCE_ENTRY_TAG
    assert HMAC_TAG == REFERENCE_HMAC_TAG
    assert GENESIS_HASH == REFERENCE_GENESIS


@settings(max_examples=300, deadline=None)
@given(header_fields)
def test_canonical_header_is_the_standard_library_json(fields: dict[str, Any]) -> None:
    """orjson's header is byte for byte ``json.dumps(sort_keys, compact, ensure_ascii=False)``."""
    assert library_header(fields) == reference_header(fields)


@settings(max_examples=200, deadline=None)
@given(header_fields, hex64 | st.just(REFERENCE_GENESIS), st.binary(max_size=80))
def test_entry_hash_and_hmac_match_the_reference(
    fields: dict[str, Any], prev_hash: str, key: bytes
) -> None:
    """entry_hash and entry_hmac (of hex or digest) are the documented SHA-256 and HMAC, in hex."""
    header = reference_header(fields)
    hashed = entry_hash(prev_hash, library_header(fields))
    assert hashed == reference_hash(prev_hash, header)
    assert entry_hmac(key, hashed) == reference_hmac(key, hashed)
    assert entry_hmac_of_digest(key, bytes.fromhex(hashed)) == reference_hmac(key, hashed)
    assert entry_hmac(bytearray(key), hashed) == reference_hmac(key, hashed)
    assert len(hashed) == 64
    assert hashed == hashed.lower()


@settings(max_examples=100, deadline=None)
@given(header_fields, st.sampled_from(["seq", "writer_seq"]), st.integers())
def test_integers_beyond_64_bits_are_refused_never_hashed_differently(
    fields: dict[str, Any], name: str, number: int
) -> None:
    """An integer no column can hold either hashes as the reference does, or raises."""
    fields[name] = number * 2**64 + number  # beyond 64 bits unless 0
    try:
        produced = library_header(fields)
    except TypeError:
        assert abs(fields[name]) >= 2**63
        return
    assert produced == reference_header(fields)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-BIG, max_value=BIG), any_text)
def test_big_integers_in_details_are_hashed_as_their_text(number: int, key: str) -> None:
    """Details are hashed as stored text, so integers of any size are exact."""
    details = encode_details({key: number})
    fields = {
        "seq": 1,
        "event_id": new_event_id(),
        "event_type": "tool.invoked",
        "actor": None,
        "resource": None,
        "details": details,
        "correlation_id": None,
        "created_at": datetime.now(UTC),
        "writer_id": None,
        "writer_seq": None,
    }
    assert str(number) in details
    assert library_header(fields) == reference_header(fields)


# -- epoch microseconds ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(aware_datetimes)
def test_epoch_micros_is_exact(moment: datetime) -> None:
    """Integer microseconds since the epoch, with no float rounding anywhere in the range."""
    micros = epoch_micros(moment)
    assert type(micros) is int
    assert micros == reference_micros(moment)
    # The inverse, on naive wall time minus the offset (an aware == is never true for a
    # wall time in a DST gap, which hypothesis picks too).
    offset = moment.utcoffset()
    assert offset is not None
    wall = moment.replace(tzinfo=None) - datetime(1970, 1, 1)
    assert timedelta(microseconds=micros) == wall - offset


@settings(max_examples=100, deadline=None)
@given(aware_datetimes, fixed_offsets)
def test_epoch_micros_depends_on_the_instant_not_the_offset(
    moment: datetime, zone: timezone
) -> None:
    """The same instant in another time zone gives the same number."""
    try:
        elsewhere = moment.astimezone(zone)
    except OverflowError:  # the instant is not representable in that zone (year 1 or 9999)
        return
    assert epoch_micros(elsewhere) == epoch_micros(moment)


@pytest.mark.parametrize(
    ("moment", "micros"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 0),
        (datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), -1),
        (datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), 253_402_300_799_999_999),
        (datetime(1, 1, 1, tzinfo=UTC), -62_135_596_800_000_000),
        (
            datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
            1_772_386_200_000_001,
        ),
    ],
)
def test_epoch_micros_known_values(moment: datetime, micros: int) -> None:
    """Fixed points, including values a float timestamp cannot hold exactly."""
    assert epoch_micros(moment) == micros


# -- what the databases store ------------------------------------------------------------


def stored_chain(url: str) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """Every row of ``audit_log`` by seq, read with the raw driver, and the head row."""
    columns = (
        "seq, event_id, event_type, actor, resource, details, correlation_id, created_at,"
        " writer_id, writer_seq, prev_hash, entry_hash, hmac"
    )
    names = [name.strip() for name in columns.split(",")]
    if url.startswith("sqlite"):
        connection = sqlite3.connect(sqlite_path(url))
        try:
            rows = connection.execute(f"SELECT {columns} FROM audit_log ORDER BY seq").fetchall()
            head = connection.execute(
                "SELECT head_seq, head_hash FROM audit_chain WHERE id = 1"
            ).fetchone()
        finally:
            connection.close()
        chain = [dict(zip(names, row, strict=True)) for row in rows]
        for row in chain:  # SQLite keeps naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"
            row["created_at"] = datetime.fromisoformat(row["created_at"]).replace(tzinfo=UTC)
        return chain, head
    import psycopg

    with psycopg.connect(libpq_conninfo(url)) as pg:
        rows = pg.execute(f"SELECT {columns} FROM audit_log ORDER BY seq").fetchall()
        head = pg.execute("SELECT head_seq, head_hash FROM audit_chain WHERE id = 1").fetchone()
    assert head is not None
    return [dict(zip(names, row, strict=True)) for row in rows], (head[0], head[1])


def assert_recomputes(url: str, key: bytes | None) -> int:
    """Recompute the stored chain with the reference alone; how many entries it holds."""
    chain, head = stored_chain(url)
    prev = REFERENCE_GENESIS
    for expected_seq, row in enumerate(chain, start=1):
        assert row["seq"] == expected_seq
        assert row["prev_hash"] == prev
        assert row["entry_hash"] == reference_hash(prev, reference_header(row)), row
        if key is None:
            assert row["hmac"] is None
        else:
            assert row["hmac"] == reference_hmac(key, row["entry_hash"])
        prev = row["entry_hash"]
    assert head == (len(chain), prev)
    return len(chain)


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
@pytest.mark.parametrize("audit_async", [True, False], ids=["async", "sync"])
def test_rows_an_audit_service_wrote_recompute_with_the_standard_library(
    make_service: MakeService, database_url: str, keyed: bool, audit_async: bool
) -> None:
    """Entries read back from SQLite and PostgreSQL recompute with the reference (README claim)."""
    overrides: dict[str, Any] = {"database_url": database_url, "audit_async": audit_async}
    if keyed:
        overrides["audit_hmac_key"] = KEY
    service = make_service(**overrides)
    service.record("session.started", actor="ünïcødé \N{SNOWMAN} 日本 \U0001f600")
    service.record(
        "tool.invoked",
        actor="\u2028line\u2029separators\x01\x1f\x7f",
        resource='"quoted" \\ back\\slash',
        correlation_id="corr-\N{GREEK SMALL LETTER ALPHA}",
        details={"big": 2**200, "neg": -(2**70), "nul": "a\x00b", "f": 1.5, "t": "\ud7ff\ue000"},
    )
    service.record("tool.completed", details={})
    service.close()
    count = assert_recomputes(database_url, KEY.encode("utf-8") if keyed else None)
    assert count == 5  # writer.opened, three entries, writer.closed


@pytest.fixture
def keyed_database(database_url: str) -> Iterator[AuditDatabase]:
    """The backend under test, opened in keyed mode, disposed afterwards."""
    database = open_database(database_url, hmac_key=KEY.encode("utf-8"))
    yield database
    database.dispose()


@settings(
    max_examples=30,
    deadline=None,
    # One database for the whole test: the chain grows over the examples, as a trail does.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batch=st.lists(
        st.fixed_dictionaries(
            {
                "event_type": stored_text,
                "actor": st.none() | stored_text,
                "resource": st.none() | stored_text,
                "details": json_details.map(encode_details),
                "correlation_id": st.none() | stored_text,
                "created_at": st.datetimes(
                    # UTC must hold the instant too (SQLite stores it in UTC).
                    min_value=datetime(1, 1, 2),
                    max_value=datetime(9999, 12, 30),
                    timezones=postgres_offsets | st.timezones(),
                ),
                "writer_id": st.none() | st.uuids().map(str),
                "writer_seq": st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
            }
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_any_stored_fields_recompute_after_a_round_trip(
    database_url: str, keyed_database: AuditDatabase, batch: list[dict[str, Any]]
) -> None:
    """Hypothesis rows appended to a real database read back and recompute with the reference."""
    keyed_database.write_batch(
        [
            (
                new_event_id(),
                row["event_type"],
                row["actor"],
                row["resource"],
                row["details"],
                row["correlation_id"],
                row["created_at"],
                row["writer_id"],
                row["writer_seq"],
            )
            for row in batch
        ]
    )
    assert assert_recomputes(database_url, KEY.encode("utf-8")) >= len(batch)
