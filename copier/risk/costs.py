"""The cost to close what is open now: the exit commission the broker will charge.

A flatten turns floating P/L into realised P/L, and the closing deals pay the exit
commission (and fee) on top. MT5's equity does not contain that charge yet: the entry
side was taken from the balance when the position opened (it is in the balance, hence in
the equity, already), the exit side is taken only by the closing deal. A guardian that
judges equity alone therefore realises *more* than it measured: on FTMO's 10k account
3.1 lots at $3 per lot per side added $9.30 to a flatten, past the firm's line (FTMO
counts commissions in the daily loss).

The rules measure ``used = reference − (equity − closing cost)``: the loss the account
would show once everything open now were closed at the current prices.

How the cost is estimated (conservative, never the entry side again):

* the broker's charge per lot and side is read from the position's own deals
  (``history_deals_get(position=identifier)``): ``−(commission + fee) / volume`` of its
  opening deals (IN, and the INOUT of a netting reversal), and of its closing deals when
  it was partly closed already (the exit side observed). The larger of the two is used,
  and where the account's history shows a larger exit charge on the same symbol (a broker
  that charges on exit only), that one;
* it is multiplied by the volume still open: a position partly closed has paid the exit
  side of the closed part already, and owes it only on what remains;
* the assumption is the same commission per side as the opening deal (the usual MT5 raw
  account: half the round turn at each side). A broker that takes the whole round turn on
  the opening deal is over-estimated (the guardian then acts slightly early; safe);
* a rebate (a positive commission) counts as no charge, never as a gain.

Pure: the node reads the deals and passes them in.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .deals import ENTRY_IN, ENTRY_INOUT, ENTRY_OUT, ENTRY_OUT_BY, Deal

_OPENING = (ENTRY_IN, ENTRY_INOUT)
_CLOSING = (ENTRY_OUT, ENTRY_OUT_BY, ENTRY_INOUT)


def _charge(deals: Iterable[Deal]) -> float | None:
    """Charge per lot over ``deals`` (money taken as a positive number), None without volume."""
    money = volume = 0.0
    for d in deals:
        money += -(d.commission + d.fee)
        volume += abs(d.volume)
    if volume <= 0:
        return None
    return max(0.0, money / volume)


@dataclass(frozen=True)
class SideCharge:
    """What one position's deals say about the broker's charge per lot and side."""

    per_lot: float  # the charge per lot the estimate uses (>= 0)
    entry_per_lot: float | None  # observed on its opening deals (None: none in the history)
    exit_per_lot: float | None  # observed on its closing deals (a partial close), None if none

    @property
    def known(self) -> bool:
        return self.entry_per_lot is not None or self.exit_per_lot is not None


def side_charge(deals: Iterable[Deal], position_id: int | None = None) -> SideCharge:
    """The charge per lot and side of one position, from its trade deals (all of them, or
    those of ``position_id``): the larger of its entry side and its exit side observed."""
    mine = [d for d in deals if d.is_trade and (position_id is None or d.position_id == position_id)]
    entry = _charge(d for d in mine if d.entry in _OPENING)
    exit_ = _charge(d for d in mine if d.entry in _CLOSING)
    return SideCharge(max(entry or 0.0, exit_ or 0.0), entry, exit_)


def symbol_exit_charges(deals: Iterable[Deal]) -> dict[str, float]:
    """Per symbol, the exit charge per lot of its latest closing deal in the history (only
    symbols whose exits were charged): what a broker that charges on exit takes."""
    out: dict[str, float] = {}
    for d in sorted((d for d in deals if d.is_trade and d.entry in _CLOSING and d.volume > 0),
                    key=lambda d: (d.time_msc, d.ticket)):
        rate = _charge((d,)) or 0.0
        if rate > 0:
            out[d.symbol] = rate
        else:
            out.pop(d.symbol, None)
    return out


@dataclass(frozen=True)
class OpenVolume:
    """One open position as the estimate needs it (from ``positions_get``)."""

    identifier: int
    symbol: str
    volume: float  # still open, lots


@dataclass(frozen=True)
class ClosingCost:
    """The estimated cost to close every position open now (account currency, >= 0)."""

    money: float = 0.0
    positions: int = 0
    unknown: tuple[int, ...] = ()  # identifiers whose deals could not be read (symbol rate or 0 used)

    @property
    def incomplete(self) -> bool:
        return bool(self.unknown)

    def to_dict(self) -> dict[str, object]:
        return {"money": self.money, "positions": self.positions, "unknown": list(self.unknown)}


def closing_cost(positions: Iterable[OpenVolume], charges: Mapping[int, SideCharge],
                 symbol_exit: Mapping[str, float] | None = None) -> ClosingCost:
    """Sum over the open positions of charge per lot x volume still open (see the module
    docstring). ``charges``: identifier -> ``side_charge`` of its deals; a position missing
    there (its deals not readable yet) takes its symbol's exit charge, else 0, and is
    listed in ``unknown``."""
    symbol_exit = symbol_exit or {}
    total = 0.0
    count = 0
    unknown: list[int] = []
    for p in positions:
        count += 1
        ch = charges.get(p.identifier)
        if ch is None or not ch.known:
            unknown.append(p.identifier)
            rate = symbol_exit.get(p.symbol, 0.0)
        else:
            rate = max(ch.per_lot, symbol_exit.get(p.symbol, 0.0))
        total += rate * abs(p.volume)
    return ClosingCost(round(total, 2) if total else 0.0, count, tuple(unknown))
