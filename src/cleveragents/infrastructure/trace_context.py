"""The OpenTelemetry span current when ``record()`` is called, carried into the entry.

An entry recorded while an OpenTelemetry span is current gets
``details["otel"] = {"trace_id": "<32 hex>", "span_id": "<16 hex>"}``, so the audit
trail and the traces of the same run can be joined on the trace id. The ids are
part of ``details``, hence hashed and chained like the rest of the entry.

Nothing here imports OpenTelemetry: when the application has not imported
``opentelemetry.trace`` (no instrumentation, no SDK) the lookup is one dictionary
miss in ``sys.modules``. A caller's own ``"otel"`` key is left as given, and so are
details that are not a mapping (``record()``'s validation rejects those as usual).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = [
    "OTEL_DETAILS_KEY",
    "audit_io",
    "current_span_ids",
    "in_audit_io",
    "with_current_span",
]

#: The key of ``details`` that holds the current span's ids.
OTEL_DETAILS_KEY = "otel"

_TRACE_MODULE = "opentelemetry.trace"
# opentelemetry.trace.get_current_span, once the application has imported it.
_get_current_span: Callable[[], Any] | None = None
# The last valid span context seen and its ids in hex (it is kept alive, so ``is`` is safe).
_last_span: tuple[object, str, str] | None = None


def current_span_ids() -> dict[str, str] | None:
    """The trace and span ids (lower-case hex) of the current valid span, else None."""
    get_current_span = _get_current_span or _find_get_current_span()
    if get_current_span is None:
        return None
    global _last_span
    context = get_current_span().get_span_context()
    last = _last_span
    if last is None or last[0] is not context:
        if not context.is_valid:
            return None
        # Formatting a 128-bit id is most of the cost: records in one span share it.
        trace_hex = context.trace_id.to_bytes(16, "big").hex()  # faster than format()
        last = _last_span = (context, trace_hex, context.span_id.to_bytes(8, "big").hex())
    return {"trace_id": last[1], "span_id": last[2]}


def with_current_span(details: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``details`` with the current span's ids under ``"otel"`` (a copy), or ``details`` itself.

    Unchanged when no span is current, when OpenTelemetry is not imported, when
    ``details`` already has an ``"otel"`` key, or when it is not a mapping.
    """
    if _get_current_span is None and _TRACE_MODULE not in sys.modules:
        return details
    if details is not None and (
        OTEL_DETAILS_KEY in details if type(details) is dict else _not_ours(details)
    ):
        return details
    ids = current_span_ids()
    if ids is None:
        return details
    return {OTEL_DETAILS_KEY: ids} if details is None else {**details, OTEL_DETAILS_KEY: ids}


def _not_ours(details: object) -> bool:
    """True when ``details`` is not a mapping, or has an ``"otel"`` key of its own."""
    return not isinstance(details, Mapping) or OTEL_DETAILS_KEY in details


def _find_get_current_span() -> Callable[[], Any] | None:
    """``opentelemetry.trace.get_current_span`` if the application imported it (kept)."""
    global _get_current_span
    module = sys.modules.get(_TRACE_MODULE)
    found = getattr(module, "get_current_span", None) if module is not None else None
    if callable(found):
        _get_current_span = found
    return _get_current_span


_io = threading.local()


@contextmanager
def audit_io() -> Iterator[None]:
    """Mark this thread as writing the trail itself (a synchronous ``record()``).

    Spans made meanwhile (an instrumented database driver) are the trail's own
    I/O: :func:`in_audit_io` tells span processors not to audit them, which would
    re-enter ``record()`` from inside its own write.
    """
    previous = getattr(_io, "active", False)
    _io.active = True
    try:
        yield
    finally:
        _io.active = previous


def in_audit_io() -> bool:
    """True while this thread is inside :func:`audit_io`."""
    return bool(getattr(_io, "active", False))
