"""Application layer: the event bus and the audit service."""
