"""Rebuilding day-start balances and high-water marks from deal history.

A node that starts mid-day must not take "now" as the day's start: the day began at
the firm's reset, and the balance then was the current balance minus everything the
deals since the reset moved (profit, commission, swap, fee, deposits, withdrawals).
Equity at the reset cannot be rebuilt (floating P/L is not in the history); callers
fall back to the balance and flag the figure as estimated.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time

from .clock import ServerClock, last_reset_instant, ms_from_utc, next_reset_instant, utc_from_ms
from .deals import Deal


def deals_in_window(
    deals: Iterable[Deal], start_utc_ms: int, end_utc_ms: int | None, clock: ServerClock
) -> list[Deal]:
    """Deals with start <= UTC time < end (end None = open), in time order."""
    out = []
    for d in deals:
        t = clock.to_utc_ms(d.time_msc)
        if t >= start_utc_ms and (end_utc_ms is None or t < end_utc_ms):
            out.append(d)
    out.sort(key=lambda d: (d.time_msc, d.ticket))
    return out


def balance_at(current_balance: float, deals: Iterable[Deal], at_utc_ms: int, clock: ServerClock) -> float:
    """Balance just before ``at_utc_ms``: a deal stamped exactly at the instant counts after it."""
    later = sum(d.net for d in deals if d.affects_balance and clock.to_utc_ms(d.time_msc) >= at_utc_ms)
    return current_balance - later


def rebuild_day_start_balance(
    current_balance: float, deals: Iterable[Deal], reset_utc: datetime, clock: ServerClock
) -> float:
    """Balance at the reset instant = current balance - what moved it since then."""
    return balance_at(current_balance, deals, ms_from_utc(reset_utc), clock)


def _balance_path(current_balance: float, deals: Sequence[Deal], clock: ServerClock) -> list[tuple[int, float]]:
    """(utc_ms, balance after the deal) for every balance-moving deal, oldest first."""
    moving = sorted((d for d in deals if d.affects_balance), key=lambda d: (d.time_msc, d.ticket))
    total = sum(d.net for d in moving)
    bal = current_balance - total
    path = []
    for d in moving:
        bal += d.net
        path.append((clock.to_utc_ms(d.time_msc), bal))
    return path


def rebuild_balance_high(
    initial: float, current_balance: float, deals: Sequence[Deal], clock: ServerClock
) -> float:
    """Highest closed balance ever (never below ``initial``)."""
    path = _balance_path(current_balance, deals, clock)
    return max([initial, current_balance] + [b for _, b in path])


def rebuild_eod_balance_high(
    initial: float,
    current_balance: float,
    deals: Sequence[Deal],
    now_utc: datetime,
    reset_time: time,
    tz: str,
    clock: ServerClock,
) -> float:
    """Highest balance recorded at any reset from the first deal up to the latest one.

    That is the "highest end-of-day balance" firms trail from; today's open day is
    not an end of day yet, so its balance is not counted.
    """
    path = _balance_path(current_balance, deals, clock)
    best = initial
    if not path:
        return best
    latest_reset = last_reset_instant(now_utc, reset_time, tz, clock)
    # Walk every reset after the first deal, carrying the balance along the path.
    reset = next_reset_instant(utc_from_ms(path[0][0]), reset_time, tz, clock)
    i, bal = 0, path[0][1]
    while reset <= latest_reset:
        r_ms = ms_from_utc(reset)
        while i < len(path) and path[i][0] < r_ms:
            bal = path[i][1]
            i += 1
        best = max(best, bal)
        reset = next_reset_instant(reset, reset_time, tz, clock)
    return best
