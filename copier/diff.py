"""What changed between two snapshots of one account (used by the master to log/publish).

Positions are keyed by ``identifier`` and pending orders by ``ticket``. A netting
reversal keeps the identifier and flips the side; we report it as one ``REVERSED`` change
(old and new attached) rather than CLOSED+OPENED, because the identifier - the link key -
survives. A pending order that fills shows up as PENDING_REMOVED for the order ticket and
OPENED for a position with the same number; consumers can pair them by key.
Volumes and prices are compared with a 1e-9 tolerance.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from copier.models import PendingOrder, Position

EPS = 1e-9


class ChangeKind(str, Enum):
    OPENED = "OPENED"
    CLOSED = "CLOSED"
    VOLUME_REDUCED = "VOLUME_REDUCED"
    VOLUME_INCREASED = "VOLUME_INCREASED"
    SLTP_MODIFIED = "SLTP_MODIFIED"
    REVERSED = "REVERSED"
    PENDING_PLACED = "PENDING_PLACED"
    PENDING_MODIFIED = "PENDING_MODIFIED"
    PENDING_REMOVED = "PENDING_REMOVED"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    key: int
    old: Any = None  # Position | PendingOrder | None
    new: Any = None


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > EPS


def _position_changes(key: int, old: Position, new: Position) -> list[Change]:
    if old.side != new.side:
        return [Change(ChangeKind.REVERSED, key, old, new)]
    out: list[Change] = []
    if new.volume < old.volume - EPS:
        out.append(Change(ChangeKind.VOLUME_REDUCED, key, old, new))
    elif new.volume > old.volume + EPS:
        out.append(Change(ChangeKind.VOLUME_INCREASED, key, old, new))
    if _differs(old.sl, new.sl) or _differs(old.tp, new.tp):
        out.append(Change(ChangeKind.SLTP_MODIFIED, key, old, new))
    return out


def _order_modified(old: PendingOrder, new: PendingOrder) -> bool:
    return (
        old.type != new.type
        or old.symbol != new.symbol
        or any(_differs(getattr(old, f), getattr(new, f)) for f in ("price_open", "price_stoplimit", "sl", "tp", "volume"))
    )


def diff_state(
    old_positions: Mapping[int, Position],
    new_positions: Mapping[int, Position],
    old_orders: Mapping[int, PendingOrder],
    new_orders: Mapping[int, PendingOrder],
) -> list[Change]:
    """Changes in a stable order: positions by key, then orders by key."""
    changes: list[Change] = []
    for key in sorted(set(old_positions) | set(new_positions)):
        old, new = old_positions.get(key), new_positions.get(key)
        if old is None:
            changes.append(Change(ChangeKind.OPENED, key, None, new))
        elif new is None:
            changes.append(Change(ChangeKind.CLOSED, key, old, None))
        else:
            changes.extend(_position_changes(key, old, new))
    for key in sorted(set(old_orders) | set(new_orders)):
        old_o, new_o = old_orders.get(key), new_orders.get(key)
        if old_o is None:
            changes.append(Change(ChangeKind.PENDING_PLACED, key, None, new_o))
        elif new_o is None:
            changes.append(Change(ChangeKind.PENDING_REMOVED, key, old_o, None))
        elif _order_modified(old_o, new_o):
            changes.append(Change(ChangeKind.PENDING_MODIFIED, key, old_o, new_o))
    return changes
