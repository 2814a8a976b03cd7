"""The limits every entry keeps, the same on SQLite and PostgreSQL.

They are checked by ``record()`` in the caller's thread, so an entry either fits both
backends or is refused at the call with an error naming the field: nothing is
accepted that one backend would later refuse (PostgreSQL's index rows hold about
2,700 bytes, its text no U+0000).
"""

from __future__ import annotations

__all__ = ["MAX_DETAILS_BYTES", "MAX_DETAILS_DEPTH", "MAX_TEXT_BYTES"]

#: ``actor``, ``resource`` and ``correlation_id``: at most this many bytes of UTF-8 (indexed).
MAX_TEXT_BYTES = 1024
#: ``details``: at most this many bytes of canonical JSON (UTF-8).
MAX_DETAILS_BYTES = 1024 * 1024
#: ``details``: at most this many levels of nested objects and arrays (the mapping itself is 1).
MAX_DETAILS_DEPTH = 64
