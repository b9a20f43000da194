"""Stop loss / take profit for a copy.

* ``absolute`` (default): the master's levels, rounded to the slave's digits.
* ``distance``: the master's distance from ITS entry, applied from the slave's entry
  (useful when the two brokers quote with an offset).
* ``reverse``: the copy trades the other side, so the master's SL becomes the slave's TP
  and the master's TP the slave's SL (a reversed copy profits where the master loses).
* 0 stays 0: no level on the master means none on the slave.

Stops level (choice): a level closer to the current price than ``stops_level × point`` or
on the wrong side would be refused by the broker (10016). The SL is moved OUT to the
nearest valid level (a prop-firm account must not be left without a stop); the TP is
dropped to 0 (the master's own close will close the copy).
"""
from __future__ import annotations

from typing import Any

from copier.models import Quote, SymbolSpec


def _round(price: float, digits: int) -> float:
    return round(price, digits) if price else 0.0


def raw_sltp(master: Any, *, slave_side: str, slave_entry_price: float, slave_spec: SymbolSpec, mode: str, reverse: bool) -> tuple[float, float]:
    """The target levels before any stops-level adjustment."""
    src_sl, src_tp = (master.tp, master.sl) if reverse else (master.sl, master.tp)
    if mode == "distance":
        sign = 1.0 if slave_side == "BUY" else -1.0
        sl = slave_entry_price - sign * abs(src_sl - master.price_open) if src_sl else 0.0
        tp = slave_entry_price + sign * abs(src_tp - master.price_open) if src_tp else 0.0
    elif mode == "absolute":
        sl, tp = src_sl, src_tp
    else:
        raise ValueError(f"unknown sltp_mode {mode!r}")
    if sl < 0:
        sl = 0.0
    if tp < 0:
        tp = 0.0
    return _round(sl, slave_spec.digits), _round(tp, slave_spec.digits)


def _min_distance(spec: SymbolSpec) -> float:
    return max(spec.stops_level, 0) * spec.point


def level_valid(kind: str, level: float, side: str, quote: Quote, spec: SymbolSpec) -> bool:
    """Would the broker accept this SL ("sl") or TP ("tp") for a position of ``side`` now?"""
    if not level:
        return True
    ref = quote.bid if side == "BUY" else quote.ask  # the price that closes the position
    dist = _min_distance(spec)
    eps = spec.point * 1e-3
    below = (kind == "sl") == (side == "BUY")  # BUY SL / SELL TP sit below the price
    if below:
        return level < ref - eps and ref - level >= dist - eps
    return level > ref + eps and level - ref >= dist - eps


def enforce_stops(side: str, sl: float, tp: float, quote: Quote, spec: SymbolSpec) -> tuple[float, float]:
    """Move an invalid SL out to the nearest valid level; drop an invalid TP."""
    if sl and not level_valid("sl", sl, side, quote, spec):
        gap = max(_min_distance(spec), spec.point)
        sl = quote.bid - gap if side == "BUY" else quote.ask + gap
        sl = _round(sl, spec.digits)
        # rounding can land a hair inside; step one more point out if so
        if not level_valid("sl", sl, side, quote, spec):
            sl = _round(sl - spec.point if side == "BUY" else sl + spec.point, spec.digits)
    if tp and not level_valid("tp", tp, side, quote, spec):
        tp = 0.0
    return sl, tp


def translate_sltp(
    master: Any,
    *,
    slave_side: str,
    slave_entry_price: float,
    slave_spec: SymbolSpec,
    quote: Quote | None,
    mode: str = "absolute",
    reverse: bool = False,
) -> tuple[float, float]:
    """``(sl, tp)`` for the slave; with a quote, adjusted to the broker's stops level."""
    sl, tp = raw_sltp(master, slave_side=slave_side, slave_entry_price=slave_entry_price, slave_spec=slave_spec, mode=mode, reverse=reverse)
    if quote is None:
        return sl, tp
    return enforce_stops(slave_side, sl, tp, quote, slave_spec)
