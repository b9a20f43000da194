"""Equity in the past, rebuilt from what an MT5 terminal keeps: the deal history and
M1 bars (``copy_rates_range``).

A node that was down when something happened cannot have a snapshot of it. Two figures
the firms' rules need are equity-based:

* the **equity at the reset** (The5ers, FundingPips: the day's reference is the higher
  of balance and equity then) = balance at the reset + the floating P/L of the
  positions open at the reset, each priced at the last M1 bar before the reset
  (``equity_at``);
* the **peak equity** an intraday trailing drawdown follows (Apex-style), which a node
  that lost its stored state must not under-state: ``equity_high_bound`` gives the
  strictest value the history allows, every position valued at the best price of each
  minute it was open (bar high for a buy, bar low + spread for a sell) on top of the
  balance of that minute.

Pure: deals are ``Deal`` values, bars are ``Bar`` values (server seconds), and the
money a price move makes comes in per symbol as ``SymbolBars.money_per_unit`` (account
money for 1.0 of price per lot: ``trade_tick_value / trade_tick_size``). Swaps accrued
on open positions are not in the history before the close and are left out.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .deals import ENTRY_IN, ENTRY_INOUT, ENTRY_OUT, ENTRY_OUT_BY, Deal

MINUTE_S = 60


@dataclass(frozen=True, slots=True)
class Bar:
    """One M1 bar as ``copy_rates_*`` returns it: ``time`` in server seconds (the bar's
    start), bid prices, ``spread`` in points."""

    time: int
    open: float
    high: float
    low: float
    close: float
    spread: int = 0


@dataclass(frozen=True)
class SymbolBars:
    """The M1 bars of one symbol and how much a price move is worth."""

    bars: Sequence[Bar]  # oldest first
    point: float
    money_per_unit: float  # account money per 1.0 price move per lot (tick_value / tick_size)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time during which a position held a constant volume."""

    position_id: int
    symbol: str
    side: str  # "BUY" | "SELL"
    volume: float
    price_open: float
    start_ms: int  # server ms
    end_ms: int | None  # server ms; None: still open


def position_segments(deals: Iterable[Deal]) -> list[Segment]:
    """Every position's open volume over time, from its entry and exit deals.

    A partial close starts a new segment with the remaining volume. A netting reversal
    (``DEAL_ENTRY_INOUT``) starts a new segment on the other side.
    """
    by_pos: dict[int, list[Deal]] = {}
    for d in deals:
        if d.is_trade and d.position_id:
            by_pos.setdefault(d.position_id, []).append(d)
    out: list[Segment] = []
    for pid, ds in by_pos.items():
        ds.sort(key=lambda d: (d.time_msc, d.ticket))
        side, vol, price, since = "", 0.0, 0.0, 0
        for d in ds:
            if vol > 1e-9:
                out.append(Segment(pid, d.symbol, side, round(vol, 8), price, since, d.time_msc))
            if d.entry == ENTRY_IN:
                if vol <= 1e-9:
                    side, vol, price = d.type, d.volume, d.price
                else:  # adding to a position (netting): volume-weighted open price
                    price = (price * vol + d.price * d.volume) / (vol + d.volume)
                    vol += d.volume
            elif d.entry in (ENTRY_OUT, ENTRY_OUT_BY):
                vol = max(0.0, vol - d.volume)
            elif d.entry == ENTRY_INOUT:
                left = d.volume - vol
                side, vol, price = d.type, max(0.0, left), d.price
            since = d.time_msc
        if vol > 1e-9:
            out.append(Segment(pid, ds[-1].symbol, side, round(vol, 8), price, since, None))
    out.sort(key=lambda s: (s.start_ms, s.position_id))
    return out


def positions_open_at(deals: Iterable[Deal], at_server_ms: int) -> list[Segment]:
    """Positions open at the instant ``at_server_ms`` (a deal stamped exactly then counts after it)."""
    return [s for s in position_segments(deals)
            if s.start_ms < at_server_ms and (s.end_ms is None or s.end_ms >= at_server_ms)]


def price_at(bars: Sequence[Bar], at_server_s: int, side: str, point: float) -> float | None:
    """The price a position of ``side`` would close at, at the instant ``at_server_s``:
    the close of the last M1 bar that started before it (the last quote before the
    instant; over a weekend that is the last quote of the week), else the open of the
    first bar after it. Bars are bid prices; a sell closes at the ask (bid + spread).
    None without any bar."""
    times = [b.time for b in bars]
    i = bisect.bisect_left(times, at_server_s)
    if i > 0:
        b, bid = bars[i - 1], bars[i - 1].close
    elif bars:
        b, bid = bars[0], bars[0].open
    else:
        return None
    return bid if side == "BUY" else bid + b.spread * point


def floating(seg: Segment, price: float, money_per_unit: float) -> float:
    """Floating P/L of ``seg`` valued at ``price`` (account money)."""
    move = price - seg.price_open if seg.side == "BUY" else seg.price_open - price
    return round(move * seg.volume * money_per_unit, 2)  # account money is in cents, as MT5 reports it


def equity_at(balance_then: float, open_then: Sequence[Segment], at_server_ms: int,
              market: Mapping[str, SymbolBars]) -> tuple[float | None, tuple[str, ...]]:
    """(equity at ``at_server_ms``, symbols that could not be priced).

    Equity = the balance then + each open position's floating P/L at ``price_at``.
    None (with the symbols missing) when a position's symbol has no bars: the
    terminal cannot tell, and the caller must assume the strictest reference.
    """
    total = balance_then
    missing: list[str] = []
    for seg in open_then:
        sb = market.get(seg.symbol)
        price = None if sb is None else price_at(sb.bars, at_server_ms // 1000, seg.side, sb.point)
        if sb is None or price is None:
            missing.append(seg.symbol)
            continue
        total += floating(seg, price, sb.money_per_unit)
    if missing:
        return None, tuple(sorted(set(missing)))
    return total, ()


def _balance_steps(current_balance: float, deals: Sequence[Deal]) -> tuple[list[int], list[float]]:
    """(server ms of each balance-moving deal, balance after it), oldest first."""
    moving = sorted((d for d in deals if d.affects_balance), key=lambda d: (d.time_msc, d.ticket))
    bal = current_balance - sum(d.net for d in moving)
    times, after = [], []
    for d in moving:
        bal += d.net
        times.append(d.time_msc)
        after.append(bal)
    return times, after


def balance_at_server_ms(current_balance: float, deals: Sequence[Deal], at_server_ms: int) -> float:
    """Balance just before ``at_server_ms`` (server ms), from the current balance and history."""
    later = sum(d.net for d in deals if d.affects_balance and d.time_msc >= at_server_ms)
    return current_balance - later


def equity_high_bound(current_balance: float, deals: Sequence[Deal], market: Mapping[str, SymbolBars],
                      *, since_server_ms: int | None = None,
                      until_server_ms: int | None = None) -> tuple[float, bool]:
    """(the highest equity the history allows, complete).

    For every minute a position was open (within ``since``..``until``, server ms), its
    floating P/L at the best price of that minute's bar is added to the highest balance
    of that minute; the bound is the maximum over the minutes, and never below the
    highest closed balance in the window. It is an upper bound of the true peak (a bar's
    extreme need not coincide for two positions), which is what an intraday trailing
    rule must assume after its stored peak is lost. ``complete`` is False when a
    position's symbol had no bars for some minute it was open (that stretch could not
    be valued).
    """
    times, after = _balance_steps(current_balance, deals)
    start_bal = current_balance - sum(d.net for d in deals if d.affects_balance)

    def bal_before(t_ms: int) -> float:
        i = bisect.bisect_left(times, t_ms)
        return after[i - 1] if i > 0 else start_bal

    lo = since_server_ms if since_server_ms is not None else -(2**62)
    hi = until_server_ms if until_server_ms is not None else 2**62
    best_closed = max([current_balance] + ([bal_before(lo)] if since_server_ms is not None else [])
                      + [b for t, b in zip(times, after) if lo <= t <= hi])
    per_minute: dict[int, float] = {}
    complete = True
    for seg in position_segments(deals):
        s_ms = max(seg.start_ms, lo)
        e_ms = min(seg.end_ms if seg.end_ms is not None else hi, hi)
        if e_ms < s_ms:
            continue
        sb = market.get(seg.symbol)
        if sb is None or not sb.bars:
            complete = False
            continue
        first_min = s_ms // 1000 // MINUTE_S * MINUTE_S
        last_min = max(s_ms, e_ms - 1) // 1000 // MINUTE_S * MINUTE_S
        bar_times = [b.time for b in sb.bars]
        if bar_times[0] > first_min:
            complete = False  # the bars do not reach back to when it opened
        i = bisect.bisect_left(bar_times, first_min)
        while i < len(sb.bars) and bar_times[i] <= last_min:
            b = sb.bars[i]
            price = b.high if seg.side == "BUY" else b.low + b.spread * sb.point
            per_minute[b.time] = per_minute.get(b.time, 0.0) + floating(seg, price, sb.money_per_unit)
            i += 1
    bound = best_closed
    for minute, fl in per_minute.items():
        m_ms = minute * 1000
        # the balance when the minute began: a position closed within the minute is still
        # counted as floating (at its best price, which is at least what it closed at)
        bound = max(bound, bal_before(max(m_ms, lo)) + fl)
    return bound, complete
