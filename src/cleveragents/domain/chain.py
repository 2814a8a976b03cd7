"""The hash chain's canonical form: what is hashed, and how.

Everything here can be recomputed with nothing but the standard library (the
README's "Tamper evidence" section shows how)::

    header = json.dumps(
        {"actor": ..., "correlation_id": ..., "created_at": <int microseconds since
         1970-01-01T00:00:00Z>, "details_sha256": sha256(details text, UTF-8).hexdigest(),
         "event_id": ..., "event_type": ..., "resource": ..., "seq": ...,
         "writer_id": ..., "writer_seq": ...},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    ).encode("utf-8")
    entry_hash = sha256(ENTRY_TAG + bytes.fromhex(prev_hash) + header).hexdigest()
    hmac       = HMAC-SHA256(key, HMAC_TAG + bytes.fromhex(entry_hash)).hexdigest()

``prev_hash`` is the ``entry_hash`` of the entry with ``seq - 1``, or
:data:`GENESIS_HASH` for ``seq == 1``. The header covers every stored field but
``id`` (the database's own counter, checked separately: it must grow with
``seq``), the hashes themselves, and the PostgreSQL ``details_json`` column, which
is derived from ``details`` (``verify`` checks that it still holds the same value).

The header is produced with orjson from a dict whose keys are written in sorted
order; for these value types (str, int, None) that is byte for byte the
standard library's output above, which a property test holds it to.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

__all__ = [
    "ENTRY_TAG",
    "GENESIS_HASH",
    "HMAC_TAG",
    "EntryFields",
    "canonical_header",
    "entry_digest",
    "entry_hash",
    "entry_hmac",
    "entry_hmac_of_digest",
    "epoch_micros",
    "header_of",
]

#: Domain separation: these bytes start every hashed entry.
ENTRY_TAG = b"cleveragents-audit/v1/entry\x00"
#: Domain separation for the keyed MAC of an entry hash.
HMAC_TAG = b"cleveragents-audit/v1/hmac\x00"
#: ``prev_hash`` of the first entry of a chain.
GENESIS_HASH = "0" * 64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_sha256 = hashlib.sha256
_dumps = orjson.dumps


def epoch_micros(moment: datetime) -> int:
    """``moment`` as integer microseconds since the Unix epoch, exactly (no float)."""
    return (moment - _EPOCH) // _MICROSECOND


def canonical_header(
    seq: int,
    event_id: str,
    event_type: str,
    actor: str | None,
    resource: str | None,
    details: str,
    correlation_id: str | None,
    created_at: datetime,
    writer_id: str | None,
    writer_seq: int | None,
) -> bytes:
    """The canonical bytes of one entry's stored fields (see the module docstring)."""
    delta = created_at - _EPOCH
    # The keys are written in sorted order, so orjson needs no sorting pass.
    return _dumps(
        {
            "actor": actor,
            "correlation_id": correlation_id,
            "created_at": (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
            "details_sha256": _sha256(details.encode("utf-8")).hexdigest(),
            "event_id": event_id,
            "event_type": event_type,
            "resource": resource,
            "seq": seq,
            "writer_id": writer_id,
            "writer_seq": writer_seq,
        }
    )


class EntryFields(Protocol):
    """The stored fields the header covers, by name: an ``EntryRow``, a verifier's row."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def resource(self) -> str | None: ...
    @property
    def details(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def writer_id(self) -> str | None: ...
    @property
    def writer_seq(self) -> int | None: ...


def header_of(seq: int, row: EntryFields) -> bytes:
    """:func:`canonical_header` of ``row`` at ``seq``."""
    return canonical_header(
        seq,
        row.event_id,
        row.event_type,
        row.actor,
        row.resource,
        row.details,
        row.correlation_id,
        row.created_at,
        row.writer_id,
        row.writer_seq,
    )


def entry_digest(prev_digest: bytes, header: bytes) -> bytes:
    """``SHA-256(ENTRY_TAG || prev || header)``, raw: the writer's hot path."""
    return _sha256(ENTRY_TAG + prev_digest + header).digest()


def entry_hash(prev_hash: str, header: bytes) -> str:
    """``SHA-256(ENTRY_TAG || prev_hash || header)`` as lowercase hex."""
    return entry_digest(bytes.fromhex(prev_hash), header).hex()


def entry_hmac(key: bytes, hash_hex: str) -> str:
    """``HMAC-SHA256(key, HMAC_TAG || entry_hash)`` as lowercase hex."""
    return entry_hmac_of_digest(key, bytes.fromhex(hash_hex))


def entry_hmac_of_digest(key: bytes, digest: bytes) -> str:
    """:func:`entry_hmac` of the raw digest :func:`entry_digest` returned: no hex round trip.

    The writer's hot path: it links with digests and stores ``digest.hex()``, so it
    calls this with the digest rather than ``entry_hmac(key, digest.hex())``. The
    HMAC keyed with ``key`` and fed ``HMAC_TAG`` is made once per key and copied per
    entry: ``hmac.new`` would pad the key and hash both pads again every time.
    """
    keyed = _KEYED.get(key) if type(key) is bytes else None
    if keyed is None:
        keyed = _keyed(bytes(key))
    mac = keyed.copy()
    mac.update(digest)
    return mac.hexdigest()


# HMACs keyed and fed HMAC_TAG, by key: a service has one key, verify at most two.
_KEYED: dict[bytes, hmac.HMAC] = {}
_KEYED_MAX = 16


def _keyed(key: bytes) -> hmac.HMAC:
    """``HMAC-SHA256(key)`` fed ``HMAC_TAG``, kept for the next entries."""
    if len(_KEYED) >= _KEYED_MAX:
        _KEYED.clear()
    keyed = _KEYED[key] = hmac.new(key, HMAC_TAG, "sha256")
    return keyed
