"""The seed's slippage guard: ``|current_price - master_price| / point <= slippage_tolerance``.

``current`` is the price the slave would trade at now: ask for a BUY, bid for a SELL (the
slave's side, so a reversed copy is checked at the price it will really get). The distance
is measured in the SLAVE's points.

Choice (documented in docs/copier.md): master and slave brokers quote with a small offset,
and the seed compares the two prices directly. We keep that formula: the offset counts as
slippage, which errs on the safe side (a copy at a worse price is skipped, never opened).
A tolerance of 0 demands an identical price.
"""
from __future__ import annotations

from copier.models import Quote


def current_price(side: str, quote: Quote) -> float:
    return quote.ask if side == "BUY" else quote.bid


def slippage_points(side: str, current_quote: Quote, master_open_price: float, point: float) -> float:
    if point <= 0:
        raise ValueError("point must be positive")
    return abs(current_price(side, current_quote) - master_open_price) / point


def within_tolerance(side: str, current_quote: Quote, master_open_price: float, point: float, tolerance_points: float) -> bool:
    # a hair of float slack so that exactly-at-tolerance passes as the seed's "<=" intends
    return slippage_points(side, current_quote, master_open_price, point) <= tolerance_points + 1e-6
