"""The account lock: after a flatten, nothing may be open until the next reset.

The node persists the lock as a dict (``to_dict``/``from_dict``) so that a restart
mid-day keeps the account flat. It releases by itself at the firm's next reset, or
when an operator releases it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lock:
    """Why and until when an account must stay flat."""

    reason: str
    locked_at_utc_ms: int
    until_utc_ms: int | None  # None: until an operator releases it
    day_id: str = ""
    by: str = "guardian"  # "guardian" | "operator"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lock:
        until = data.get("until_utc_ms")
        return cls(
            reason=str(data["reason"]),
            locked_at_utc_ms=int(data["locked_at_utc_ms"]),
            until_utc_ms=None if until is None else int(until),
            day_id=str(data.get("day_id", "")),
            by=str(data.get("by", "guardian")),
        )


def is_locked(lock: Lock | Mapping[str, Any] | None, now_utc_ms: int) -> bool:
    """True while ``lock`` holds at ``now_utc_ms`` (accepts the persisted dict too)."""
    if lock is None:
        return False
    if not isinstance(lock, Lock):
        lock = Lock.from_dict(lock)
    return lock.until_utc_ms is None or now_utc_ms < lock.until_utc_ms


def positions_to_close_when_locked(positions: Iterable[T]) -> list[T]:
    """While locked every position must go, whoever opened it (copy, manual, EA)."""
    return list(positions)
