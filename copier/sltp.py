"""Stop loss / take profit for a copy.

* ``absolute`` (default): the master's levels, rounded to the slave's digits.
* ``distance``: the master's distance from ITS entry, applied from the slave's entry
  (useful when the two brokers quote with an offset).
* ``reverse``: the copy trades the other side, so the master's SL becomes the slave's TP
  and the master's TP the slave's SL (a reversed copy profits where the master loses).
* 0 stays 0: no level on the master means none on the slave.

Stops level (choice): a level closer to the current price than the minimum distance or
on the wrong side would be refused by the broker (10016). The minimum distance is
``max(trade_stops_level, trade_freeze_level) × point`` from the price that closes the
position (bid for a BUY, ask for a SELL): the stops level is what the server accepts, and a
level inside the freeze level could be placed but never modified again ("Requirements and
Limitations in Making Trades", https://book.mql4.com/appendix/limits; MT5 has the same
SYMBOL_TRADE_STOPS_LEVEL / SYMBOL_TRADE_FREEZE_LEVEL, in points). The SL is moved OUT to the
nearest valid level (a prop-firm account must not be left without a stop); the TP is
dropped to 0 (the master's own close will close the copy). ``adjust_stops`` says what it
changed, for the event and the log line.
"""
from __future__ import annotations

from dataclasses import dataclass
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


def min_stop_points(spec: SymbolSpec) -> int:
    """Minimum SL/TP distance in points: max(stops level, freeze level)."""
    return max(int(spec.stops_level or 0), int(getattr(spec, "freeze_level", 0) or 0), 0)


def _min_distance(spec: SymbolSpec) -> float:
    return min_stop_points(spec) * spec.point


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


@dataclass(frozen=True, slots=True)
class StopsAdjustment:
    """Levels the broker will accept now, and what was changed (``note`` empty: nothing)."""

    sl: float
    tp: float
    note: str = ""


def adjust_stops(side: str, sl: float, tp: float, quote: Quote, spec: SymbolSpec) -> StopsAdjustment:
    """Move an invalid SL out to the nearest valid level; drop an invalid TP.

    Example: GOLD (point 0.001, stops level 50, freeze level 10), BUY, bid 2649.850, wanted
    SL 2649.830 (20 points) -> SL 2649.800 (50 points), note "SL 2649.83 -> 2649.8 ...".
    """
    notes = []
    ref_name, ref = ("bid", quote.bid) if side == "BUY" else ("ask", quote.ask)
    limits = f"stops level {spec.stops_level}, freeze level {getattr(spec, 'freeze_level', 0)} points; {ref_name} {ref:.{spec.digits}f}"
    new_sl = sl
    if sl and not level_valid("sl", sl, side, quote, spec):
        gap = max(_min_distance(spec), spec.point)
        new_sl = _round(quote.bid - gap if side == "BUY" else quote.ask + gap, spec.digits)
        # rounding can land a hair inside; step one more point out if so
        if not level_valid("sl", new_sl, side, quote, spec):
            new_sl = _round(new_sl - spec.point if side == "BUY" else new_sl + spec.point, spec.digits)
        notes.append(f"SL {sl:.{spec.digits}f} -> {new_sl:.{spec.digits}f}")
    new_tp = tp
    if tp and not level_valid("tp", tp, side, quote, spec):
        new_tp = 0.0
        notes.append(f"TP {tp:.{spec.digits}f} dropped")
    note = f"{', '.join(notes)} ({limits})" if notes else ""
    return StopsAdjustment(new_sl, new_tp, note)


def enforce_stops(side: str, sl: float, tp: float, quote: Quote, spec: SymbolSpec) -> tuple[float, float]:
    """Move an invalid SL out to the nearest valid level; drop an invalid TP."""
    adj = adjust_stops(side, sl, tp, quote, spec)
    return adj.sl, adj.tp


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
