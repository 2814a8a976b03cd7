"""What replaying a dead-letter spool did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RejectedLine", "ReplayReport"]


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A spool line that is not a valid entry: where it was and why."""

    line_number: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of one replay.

    ``read`` valid entries were found in the spool at ``path``; ``inserted`` of
    them were new to the database, the rest were stored already (a replay is
    idempotent). ``rejected`` lines were not valid entries; they were kept aside in
    ``rejects_path``, each with its line number and reason.
    """

    path: Path
    read: int
    inserted: int
    rejected: tuple[RejectedLine, ...]
    rejects_path: Path

    @property
    def already_present(self) -> int:
        """Entries of the spool that the database held already."""
        return self.read - self.inserted
