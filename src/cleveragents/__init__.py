"""cleveragents-audit: a non-blocking, group-committing audit trail for agent runtimes.

Everything the runtime imports lives here::

    from cleveragents import AuditService, AuditEventType, ReactiveEventBus, DomainEvent
"""

from importlib.metadata import PackageNotFoundError, version

from cleveragents.application.event_bus import ReactiveEventBus
from cleveragents.application.services.audit_service import AuditService
from cleveragents.application.signals import install_signal_handlers
from cleveragents.config.settings import Settings
from cleveragents.domain.entry import AuditLogEntry
from cleveragents.domain.errors import (
    AuditError,
    AuditQueueFullError,
    AuditSchemaError,
    AuditServiceClosedError,
    AuditStorageError,
    AuditWriterError,
)
from cleveragents.domain.event_types import AuditEventType, SystemEventType
from cleveragents.domain.events import DomainEvent
from cleveragents.domain.replay import RejectedLine, ReplayReport
from cleveragents.domain.stats import AuditStats
from cleveragents.domain.verification import (
    Checkpoint,
    Finding,
    FindingKind,
    VerifyReport,
    VerifyStatus,
)

__all__ = [
    "AuditError",
    "AuditEventType",
    "AuditLogEntry",
    "AuditQueueFullError",
    "AuditSchemaError",
    "AuditService",
    "AuditServiceClosedError",
    "AuditStats",
    "AuditStorageError",
    "AuditWriterError",
    "Checkpoint",
    "DomainEvent",
    "Finding",
    "FindingKind",
    "ReactiveEventBus",
    "RejectedLine",
    "ReplayReport",
    "Settings",
    "SystemEventType",
    "VerifyReport",
    "VerifyStatus",
    "__version__",
    "install_signal_handlers",
]

try:
    __version__: str = version("cleveragents-audit")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree, not installed
    __version__ = "0+unknown"
