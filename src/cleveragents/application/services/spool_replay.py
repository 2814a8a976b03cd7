"""Re-ingest a dead-letter spool into the audit database, idempotently."""

from __future__ import annotations

import structlog

from cleveragents.application.services.databases import TrailDatabase
from cleveragents.domain.replay import RejectedLine, ReplayReport
from cleveragents.infrastructure.spool import Spool

__all__ = ["replay_spool"]

_log = structlog.get_logger("cleveragents.audit")


def replay_spool(database: TrailDatabase, spool: Spool) -> ReplayReport:
    """Insert the spool's entries not stored yet, then truncate it; what was done.

    The spool is truncated only after its entries are committed. Lines that are not
    valid entries, and rows the database refuses, are kept aside in the rejects file
    beside it, with their line numbers.
    """
    with spool.draining() as contents:
        inserted, refused = database.insert_new(contents.rows)
        for index, reason in refused:  # kept aside with the unreadable lines
            number, text = contents.sources[index]
            contents.rejected.append(
                RejectedLine(number, f"refused by the database: {reason}", text)
            )
    for line in contents.rejected:
        _log.warning(
            "audit_spool_line_rejected",
            spool=str(spool.path),
            line_number=line.line_number,
            reason=line.reason,
            kept_in=str(spool.rejects_path),
        )
    return ReplayReport(
        path=spool.path,
        read=len(contents.rows),
        inserted=inserted,
        rejected=tuple(contents.rejected),
        rejects_path=spool.rejects_path,
    )
