"""Verifying the chain: the report and checkpoints, the verifier, the writers' ledger.

- :mod:`.report`: findings, their kinds and exit codes, the report, checkpoints;
- :mod:`.verifier`: :class:`ChainVerifier`, links, hashes, HMACs and checkpoints;
- :mod:`.ledger`: per-writer accounting of ``writer_seq``, replays and imports;
- :mod:`.stored`: the stored rows the verifier is fed.
"""

from __future__ import annotations

from cleveragents.domain.verification.report import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    Finding,
    FindingKind,
    VerifyReport,
    VerifyStatus,
)
from cleveragents.domain.verification.stored import StoredRow
from cleveragents.domain.verification.verifier import ChainVerifier

__all__ = [
    "CHECKPOINT_FORMAT",
    "ChainVerifier",
    "Checkpoint",
    "Finding",
    "FindingKind",
    "StoredRow",
    "VerifyReport",
    "VerifyStatus",
]
