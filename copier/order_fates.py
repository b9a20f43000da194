"""What became of a vanished pending order on a follower: its ``history_orders_get`` record.

A netting follower's pending copy that fills there opens no position of its own (it joins
the symbol's one position), so the follower reads the order's fate from its history and
the planner gets it as ``PlanContext.order_fates`` (how a fill joins the net:
``copier/pending_fills.py``). A leaf module: data and MT5's ``ENUM_ORDER_STATE`` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# MT5 ENUM_ORDER_STATE (MQL5 Reference, Order Properties)
ORDER_STATE_STARTED, ORDER_STATE_PLACED, ORDER_STATE_CANCELED, ORDER_STATE_PARTIAL = 0, 1, 2, 3
ORDER_STATE_FILLED, ORDER_STATE_REJECTED, ORDER_STATE_EXPIRED = 4, 5, 6
NO_RECORD = -1  # the history had no record of the order after the grace period
EPS = 1e-9

_STATE_WORDS = {ORDER_STATE_CANCELED: "cancelled", ORDER_STATE_REJECTED: "rejected", ORDER_STATE_EXPIRED: "expired",
                NO_RECORD: "gone (no history record)"}


@dataclass(frozen=True)
class OrderFate:
    """What became of a vanished slave pending order (its ``history_orders_get`` record).

    ``state``: ``ORDER_STATE_*`` (``NO_RECORD`` when the history never showed it);
    ``position_id``: the position its fill went into (0 if none); volumes in lots.
    """

    ticket: int
    state: int
    position_id: int = 0
    volume_initial: float = 0.0
    volume_current: float = 0.0

    @property
    def filled(self) -> bool:
        """Filled, wholly or partly (a partly filled order cancelled or expired later)."""
        if self.state == ORDER_STATE_FILLED:
            return True
        return self.state in (ORDER_STATE_CANCELED, ORDER_STATE_EXPIRED, ORDER_STATE_PARTIAL) and \
            self.volume_initial - self.volume_current > EPS

    def describe(self) -> str:
        return f"pending order {_STATE_WORDS.get(self.state, f'state {self.state}')} on slave"


def fate_from_record(ticket: int, record: Any) -> OrderFate:
    """An ``OrderFate`` from one ``history_orders_get`` row (any object with MT5's field names)."""
    return OrderFate(ticket=int(ticket), state=int(getattr(record, "state", NO_RECORD)),
                     position_id=int(getattr(record, "position_id", 0) or 0),
                     volume_initial=float(getattr(record, "volume_initial", 0.0) or 0.0),
                     volume_current=float(getattr(record, "volume_current", 0.0) or 0.0))
