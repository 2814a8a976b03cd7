"""What every framework adapter shares: values made JSON, and recording that never raises.

Frameworks hand adapters messages, documents, pydantic models, bytes and times; an
entry's ``details`` hold JSON only. :func:`to_jsonable` converts any value (models by
``model_dump``, bytes as base64, times in ISO 8601, anything else by ``str``), clips
what would not fit an entry's limits, and never raises. :class:`AdapterRecorder`
records through the service and turns every failure into a log line and a count in
``stats().adapter_failed``, so a framework callback never sees an exception.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from cleveragents.domain.event_types import AuditEventType
from cleveragents.domain.limits import MAX_DETAILS_DEPTH, MAX_TEXT_BYTES

if TYPE_CHECKING:
    from cleveragents.application.services.audit_service import AuditService

__all__ = ["MAX_ITEMS", "MAX_STRING_CHARS", "AdapterRecorder", "clip_text", "to_jsonable"]

#: Strings in details longer than this are cut, with a note of how much was cut.
MAX_STRING_CHARS = 16_384
#: Lists and mappings in details keep at most this many items.
MAX_ITEMS = 1_000
# Levels to_jsonable descends; well inside the entry's own depth limit.
_MAX_DEPTH = MAX_DETAILS_DEPTH // 2


def to_jsonable(value: Any) -> Any:
    """``value`` as a JSON value an entry's ``details`` accept; never raises.

    A value that is already plain JSON within the limits (the common case) is
    returned as it is, not copied.
    """
    try:
        return value if _is_plain(value, 0) else _convert(value, 0)
    except Exception as exc:  # a model_dump or __str__ that fails: say so, keep the rest
        return f"<unconvertible {type(value).__name__}: {type(exc).__name__}>"


def clip_text(value: object) -> str | None:
    """``value`` as text fit for ``actor``, ``resource`` or ``correlation_id`` (or None)."""
    if value is None:
        return None
    if (
        type(value) is str
        and value.isascii()
        and len(value) <= MAX_TEXT_BYTES
        and "\x00" not in value
    ):
        return value  # the common case: short ASCII text, as it is
    text = _clean(value if isinstance(value, str) else str(value)).replace("\x00", "")
    if len(text.encode("utf-8")) <= MAX_TEXT_BYTES:
        return text
    return text.encode("utf-8")[: MAX_TEXT_BYTES - 3].decode("utf-8", "ignore") + "..."


def _is_plain(value: Any, depth: int) -> bool:
    """True when ``value`` is made of dicts with short ASCII keys, lists, short ASCII text,
    ints, bools, None and finite floats only, within the item and depth limits: JSON that
    :func:`_convert` would return unchanged. One walk, nothing allocated, leaves inline."""
    kind = type(value)
    if kind is dict:
        if depth >= _MAX_DEPTH or len(value) > MAX_ITEMS:
            return False
        for key, item in value.items():
            if type(key) is not str or len(key) > MAX_STRING_CHARS or not key.isascii():
                return False
            leaf = type(item)
            if leaf is str:
                if len(item) > MAX_STRING_CHARS or not item.isascii():
                    return False
            elif not (item is None or leaf is int or leaf is bool or _is_plain(item, depth + 1)):
                return False
        return True
    if kind is list:
        if depth >= _MAX_DEPTH or len(value) > MAX_ITEMS:
            return False
        for item in value:
            leaf = type(item)
            if leaf is str:
                if len(item) > MAX_STRING_CHARS or not item.isascii():
                    return False
            elif not (item is None or leaf is int or leaf is bool or _is_plain(item, depth + 1)):
                return False
        return True
    if kind is str:
        return len(value) <= MAX_STRING_CHARS and value.isascii()
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is int or kind is bool


def _convert(value: Any, depth: int) -> Any:
    kind = type(value)
    # Fast paths for what details mostly hold: short ASCII text, plain dicts and lists.
    if kind is str:
        return value if len(value) <= MAX_STRING_CHARS and value.isascii() else _clip(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is dict and depth < _MAX_DEPTH and len(value) <= MAX_ITEMS:
        return {_key(key): _convert(item, depth + 1) for key, item in value.items()}
    if kind is list and depth < _MAX_DEPTH and len(value) <= MAX_ITEMS:
        return [_convert(item, depth + 1) for item in value]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, Enum):
        return _convert(value.value, depth)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, str):
        return _clip(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)[: MAX_STRING_CHARS * 3 // 4]).decode("ascii")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if depth >= _MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {_MAX_DEPTH} levels>"
    if isinstance(value, Mapping):
        items = list(value.items())
        converted = {_key(k): _convert(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            converted["..."] = f"{len(items) - MAX_ITEMS} more items"
        return converted
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        converted_list = [_convert(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            converted_list.append(f"... {len(items) - MAX_ITEMS} more items")
        return converted_list
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2 models: LangChain messages and documents, SDK types
        return _convert(model_dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _convert(fields, depth + 1)
    return _clip(str(value))


def _key(key: object) -> str:
    if type(key) is str and key.isascii() and len(key) <= MAX_STRING_CHARS:
        return key
    return _clip(str(key))


def _clip(text: str) -> str:
    text = _clean(text)
    if len(text) <= MAX_STRING_CHARS:
        return text
    return f"{text[:MAX_STRING_CHARS]}... [{len(text) - MAX_STRING_CHARS} more characters]"


def _clean(text: str) -> str:
    """``text`` with lone surrogates (which UTF-8 cannot hold) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


class AdapterRecorder:
    """Records an adapter's entries; a failure is logged and counted, never raised."""

    __slots__ = ("_audit", "_name")

    def __init__(self, audit: AuditService, name: str) -> None:
        self._audit = audit
        self._name = name

    @property
    def audit(self) -> AuditService:
        """The service entries go to."""
        return self._audit

    def record(
        self,
        event_type: AuditEventType,
        *,
        actor: object = None,
        resource: object = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: object = None,
    ) -> bool:
        """Record one entry with its values made fit; False (logged, counted) if it failed."""
        fields = _fitted(actor, resource, details, correlation_id)
        try:
            self._audit.record(event_type, **fields)
        except Exception as exc:
            self._failed(exc, event_type)
            return False
        return True

    def record_json(
        self,
        event_type: AuditEventType,
        *,
        actor: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any],
        correlation_id: str | None = None,
    ) -> bool:
        """:meth:`record` for values the adapter believes fit already: no conversion first.

        The fast path for adapters whose framework hands them JSON values. If
        ``record()`` refuses the entry as given (a value not JSON, a text too long,
        nesting too deep: ``TypeError``, ``ValueError``), it is recorded again through
        :meth:`record`, which makes everything fit; nothing was queued.
        """
        fields: dict[str, Any] = {
            "actor": actor,
            "resource": resource,
            "details": details,
            "correlation_id": correlation_id,
        }
        try:
            self._audit.record(event_type, **fields)
        except (TypeError, ValueError):
            return self.record(event_type, **fields)
        except Exception as exc:
            self._failed(exc, event_type)
            return False
        return True

    async def arecord(
        self,
        event_type: AuditEventType,
        *,
        actor: object = None,
        resource: object = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: object = None,
    ) -> bool:
        """:meth:`record` through ``AuditService.arecord``: never blocks the event loop."""
        fields = _fitted(actor, resource, details, correlation_id)
        try:
            await self._audit.arecord(event_type, **fields)
        except Exception as exc:
            self._failed(exc, event_type)
            return False
        return True

    async def arecord_json(
        self,
        event_type: AuditEventType,
        *,
        actor: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any],
        correlation_id: str | None = None,
    ) -> bool:
        """:meth:`record_json` through ``AuditService.arecord``: never blocks the event loop."""
        fields: dict[str, Any] = {
            "actor": actor,
            "resource": resource,
            "details": details,
            "correlation_id": correlation_id,
        }
        try:
            await self._audit.arecord(event_type, **fields)
        except (TypeError, ValueError):
            return await self.arecord(event_type, **fields)
        except Exception as exc:
            self._failed(exc, event_type)
            return False
        return True

    def _failed(self, exc: BaseException, event_type: AuditEventType) -> None:
        # An adapter must never raise into its framework, not even about its own failure.
        with contextlib.suppress(Exception):
            self._audit.note_adapter_failure(self._name, exc, event_type=event_type.value)


def _fitted(
    actor: object, resource: object, details: Mapping[str, Any] | None, correlation_id: object
) -> dict[str, Any]:
    """The keyword arguments of ``record()`` with every value made to fit an entry."""
    return {
        "actor": clip_text(actor),
        "resource": clip_text(resource),
        "details": to_jsonable(details or {}),
        "correlation_id": clip_text(correlation_id),
    }
