"""The options that choose entries, defined once for ``query``, ``tail``, ``stats`` and ``export``.

A command takes them with :func:`with_filters`: its parameter ``filters``
(a :class:`Filters`) stands, in its signature, for the six options ``--type``,
``--actor``, ``--resource``, ``--correlation-id``, ``--since`` and ``--until``, in
the order the command lists them. :meth:`Filters.where` makes the
:class:`~cleveragents.infrastructure.persistence.reads.EntryFilter` they describe.
``--system`` (:data:`System`) is a parameter of each command, where it lists it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from cleveragents.cli.common import fail, parse_time
from cleveragents.domain.event_types import (
    AuditEventType,
    SystemEventType,
    coerce_stored_event_type,
)
from cleveragents.infrastructure.persistence.reads import EntryFilter

__all__ = [
    "FILTER_ORDER",
    "NO_FILTERS",
    "TIME_FIRST",
    "Actor",
    "CorrelationId",
    "EventType",
    "Filters",
    "Resource",
    "Since",
    "System",
    "Until",
    "entry_filter",
    "with_filters",
]

_TYPES = ", ".join(kind.value for kind in AuditEventType)
EventType = Annotated[
    str | None,
    typer.Option("--type", "-t", help=f"Only this event type: {_TYPES}.", show_default=False),
]
Actor = Annotated[
    str | None, typer.Option("--actor", "-a", help="Only this actor.", show_default=False)
]
Resource = Annotated[
    str | None, typer.Option("--resource", "-r", help="Only this resource.", show_default=False)
]
CorrelationId = Annotated[
    str | None,
    typer.Option(
        "--correlation-id", "-c", help="Only this correlation id (one run).", show_default=False
    ),
]
_TIME_HELP = (
    "ISO 8601 (2026-11-29, 2026-11-29T14:05:00Z, ...+02:00; without a zone: UTC) "
    "or a time ago (30s, 15m, 2h, 7d, 2w)."
)
Since = Annotated[
    str | None,
    typer.Option(
        "--since", help=f"Entries at or after this time: {_TIME_HELP}", show_default=False
    ),
]
Until = Annotated[
    str | None,
    typer.Option("--until", help=f"Entries before this time: {_TIME_HELP}", show_default=False),
]
System = Annotated[
    bool,
    typer.Option(
        "--system",
        help="Include the library's own entries (writer.opened/closed/dropped/spooled, "
        "retention.purged), which are left out by default.",
    ),
]

#: The filter options by parameter name.
_OPTIONS: dict[str, Any] = {
    "event_type": EventType,
    "actor": Actor,
    "resource": Resource,
    "correlation_id": CorrelationId,
    "since": Since,
    "until": Until,
}
#: The order ``query``, ``tail`` and ``export`` list the filters in.
FILTER_ORDER: tuple[str, ...] = tuple(_OPTIONS)
#: The order ``stats`` lists them in: the period first.
TIME_FIRST: tuple[str, ...] = ("since", "until", *FILTER_ORDER[:4])


@dataclass(frozen=True, slots=True)
class Filters:
    """The filter options as given (None: not given)."""

    event_type: str | None = None
    actor: str | None = None
    resource: str | None = None
    correlation_id: str | None = None
    since: str | None = None
    until: str | None = None

    def given(self) -> bool:
        """True if any filter option is given."""
        return any(value is not None for value in astuple(self))

    def where(self, *, system: bool = False) -> EntryFilter:
        """The filter the options describe; a bad event type or time is a one-line error."""
        return entry_filter(*astuple(self), system=system)


#: A command's ``filters`` default (the decorator always passes them).
NO_FILTERS = Filters()


def with_filters(
    order: tuple[str, ...] = FILTER_ORDER,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Make a command's ``filters`` parameter the six filter options, listed in ``order``."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        parameters: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            if parameter.name != "filters":
                parameters.append(parameter)
                continue
            parameters += [
                inspect.Parameter(name, parameter.kind, default=None, annotation=_OPTIONS[name])
                for name in order
            ]

        @functools.wraps(command)
        def run(**options: Any) -> None:
            filters = Filters(**{name: options.pop(name) for name in order})
            command(filters=filters, **options)

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return run

    return decorate


def entry_filter(
    event_type: str | None,
    actor: str | None,
    resource: str | None,
    correlation_id: str | None,
    since: str | None,
    until: str | None,
    *,
    system: bool = False,
    now: datetime | None = None,
) -> EntryFilter:
    """The filter the options describe; a bad event type or time is a one-line error."""
    kind: AuditEventType | SystemEventType | None = None
    if event_type is not None:
        try:
            kind = coerce_stored_event_type(event_type)
        except ValueError:
            fail(f"--type: unknown event type {event_type!r}; one of: {_TYPES}")
    now = now or datetime.now(UTC)
    start = None if since is None else parse_time(since, "--since", now=now)
    end = None if until is None else parse_time(until, "--until", now=now)
    if start is not None and end is not None and start >= end:
        fail(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
    return EntryFilter(kind, actor, resource, correlation_id, start, end, system)
