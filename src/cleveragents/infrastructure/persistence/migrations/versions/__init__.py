"""The revisions, oldest first: ``v0001_audit_log`` ..."""
