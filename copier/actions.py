"""What the planner asks a slave node to do. Each action carries everything needed to build
the MT5 request (or the store write) without another decision.

Execution contract for the node (documented in docs/copier.md):
* Actions come in a safe order (bookkeeping, closes, removals, opens, placements, level
  modifications, skips); execute them in that order.
* ``Open``/``PlacePending`` with purpose "new", "retry" or "replace": write/refresh the
  PENDING link (attempts + 1) BEFORE ``order_send``; on "done" set OPEN with the slave ticket.
  Purposes "add" (more volume for an OPEN link) and "restore" (netting: re-establish an OPEN
  link's share) write nothing first: the tag/net position finds it.
* ``Open.replaces_order``: send it only if the ``RemovePending`` of that order just succeeded.
* ``Adopt`` -> link OPEN with the given slave ticket/kind, keeping an existing row's volumes
  (creates the row from the action's fields if missing).
* ``MarkClosed`` -> link CLOSED (with ``close_cause``/``close_deal`` when known); ``RecordSkip``
  -> link SKIPPED/FAILED (creates it if missing); ``Rebind`` -> the link's ``slave_ticket``.
* ``Flip`` -> the link follows the master position to its new side: direction, master side,
  volumes and status rewritten, attempts reset, event "master flipped".
* ``Close.ends_link`` False: the close does not end the link even when nothing tagged is left
  (a flip's old side, or a netting correction booked to a copy whose master still holds).
"""
from __future__ import annotations

from dataclasses import dataclass

from copier.models import opposite


@dataclass(frozen=True, slots=True)
class Open:
    master_name: str
    master_ticket: int
    symbol: str
    side: str
    volume: float
    sl: float
    tp: float
    type_filling: int
    deviation: int  # points (= slippage_tolerance)
    magic: int
    comment: str  # the tag
    master_price: float  # the price slippage was checked against
    reference_price: float  # the slave price (ask/bid) at planning time
    master_symbol: str = ""
    master_side: str = ""
    master_volume: float = 0.0
    purpose: str = "new"  # "new" | "retry" | "add" | "restore" | "replace"
    replaces_order: int = 0
    lot_ratio: float = 0.0  # slave lots per master lot as sized, unrounded (recorded with a new link)
    # how the volume was sized (recorded with the link; 0/"" when not sized by a rule here)
    master_contract_size: float = 0.0
    contract_factor: float = 0.0
    fx_symbol: str = ""
    fx_rate: float = 0.0
    stops_note: str = ""  # how SL/TP were moved to the broker's nearest valid levels ("" = as wanted)


@dataclass(frozen=True, slots=True)
class Close:
    master_name: str
    master_ticket: int
    slave_ticket: int  # current position ticket (``position=`` of the request)
    symbol: str
    side_to_close: str  # side of the position being closed
    volume: float
    position_volume: float
    reason: str
    type_filling: int = 1
    deviation: int = 50
    magic: int = 0
    comment: str = ""
    ends_link: bool = True  # False: the link lives on even when this leaves nothing tagged
    # netting reduction: the volume the master position (master_ticket) holds now, the one
    # this close follows (recorded as the link's reduced_to); 0 when not a master reduction
    master_volume_now: float = 0.0

    @property
    def deal_side(self) -> str:
        return opposite(self.side_to_close)

    @property
    def partial(self) -> bool:
        return self.volume < self.position_volume - 1e-9


@dataclass(frozen=True, slots=True)
class ModifySLTP:
    master_name: str
    master_ticket: int
    slave_ticket: int
    symbol: str
    sl: float
    tp: float


@dataclass(frozen=True, slots=True)
class PlacePending:
    master_name: str
    master_ticket: int
    symbol: str
    order_type: str  # one of models.PENDING_TYPES
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    type_filling: int
    magic: int
    comment: str
    master_symbol: str = ""
    master_side: str = ""
    master_volume: float = 0.0
    purpose: str = "new"  # "new" | "retry"
    # how the volume was sized (recorded with the link; 0/"" when not sized by a rule here)
    master_contract_size: float = 0.0
    contract_factor: float = 0.0
    fx_symbol: str = ""
    fx_rate: float = 0.0
    # the copy's expiry (copier/expiry.py): ORDER_TIME_* name and the request's expiration
    # in the SLAVE's server seconds (0 unless SPECIFIED / SPECIFIED_DAY)
    type_time: str = "GTC"
    expiration: int = 0
    lot_ratio: float = 0.0  # as Open.lot_ratio: a netting follower counts a filled copy's share with it


@dataclass(frozen=True, slots=True)
class ModifyPending:
    master_name: str
    master_ticket: int
    slave_order_ticket: int
    symbol: str
    price: float
    stoplimit: float
    sl: float
    tp: float
    type_time: str = "GTC"  # as PlacePending
    expiration: int = 0


@dataclass(frozen=True, slots=True)
class RemovePending:
    master_name: str
    master_ticket: int
    slave_order_ticket: int
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordSkip:
    master_name: str
    master_ticket: int
    reason: str
    kind: str = "position"
    status: str = "SKIPPED"  # or "FAILED" when retries are exhausted
    master_symbol: str = ""
    symbol: str = ""
    direction: str = ""
    master_volume: float = 0.0


@dataclass(frozen=True, slots=True)
class Adopt:
    master_name: str
    master_ticket: int
    slave_ticket: int
    volume: float
    price: float
    kind: str = "position"
    symbol: str = ""
    master_symbol: str = ""
    direction: str = ""
    master_side: str = ""
    master_volume: float = 0.0
    tag: str = ""
    lot_ratio: float = 0.0  # as Open.lot_ratio (a netting copy registered without a deal)


@dataclass(frozen=True, slots=True)
class Flip:
    """A netting master's position changed side under the same identifier: the link keeps
    tracking it, with the new side (``direction`` is the slave's, ``master_side`` the
    master's) and the new volumes. ``status`` is PENDING when the new side is still to be
    opened (hedging slave), else the link's status."""

    master_name: str
    master_ticket: int
    direction: str
    master_side: str
    master_volume: float
    slave_volume: float
    lot_ratio: float
    status: str
    old_direction: str = ""
    reason: str = "master flipped"
    master_contract_size: float = 0.0
    contract_factor: float = 0.0
    fx_symbol: str = ""
    fx_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class MarkClosed:
    master_name: str
    master_ticket: int
    reason: str
    # reasons from history (copier/reasons.py): the cause ("sl", "tp", "so", "manual", "broker",
    # "own", "unknown") and the deal that closed the copy on the slave; "" / 0 when not read
    cause: str = ""
    deal: int = 0


@dataclass(frozen=True, slots=True)
class Rebind:
    """Netting bookkeeping: the link's share now lives in slave position ``slave_ticket``
    (its identifier), so a later disappearance of that position is classified for it."""

    master_name: str
    master_ticket: int
    slave_ticket: int


Action = Open | Close | ModifySLTP | PlacePending | ModifyPending | RemovePending | RecordSkip | Adopt | MarkClosed | Rebind | Flip
ORDER = {Adopt: 0, MarkClosed: 0, Rebind: 0, Flip: 0, Close: 1, RemovePending: 2, Open: 3, PlacePending: 4, ModifySLTP: 5, ModifyPending: 5, RecordSkip: 6}


def sort_actions(actions: list) -> list:
    """Stable safe order: bookkeeping, closes (free margin first), removals, opens, placements,
    level modifications (last, so a netting add cannot overwrite them), skips."""
    return sorted(actions, key=lambda a: ORDER[type(a)])
