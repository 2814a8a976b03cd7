"""Application services."""

from cleveragents.application.services.audit_service import AuditService

__all__ = ["AuditService"]
