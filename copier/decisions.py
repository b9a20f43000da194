"""The one "no" every copier rule can answer with.

A rule that decides a master trade must not be copied returns ``Skip(reason)`` instead of
raising: the planner turns it into a ``RecordSkip`` so the trade is written down as
SKIPPED (with the reason shown to the user) and never reconsidered.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Skip:
    """A decision not to copy, with a reason a trader can act on."""

    reason: str

    def __str__(self) -> str:
        return self.reason

