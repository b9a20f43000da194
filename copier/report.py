"""Daily account report, per trading day on the account's own reset clock.

Pure: deals and snapshots in, figures out. The day runs from the firm's reset to
the next one (e.g. midnight Prague for FTMO), not from server or local midnight,
so the numbers match what the firm's dashboard shows.

Balances at the day's edges are rebuilt from the nearest snapshot and the deals in
between; with no snapshot at all, from the deal history alone (which must then
start with the initial deposit). Rule headroom replays the day's snapshots through
the risk guardian, so it is what the guardian saw.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

from .models import AccountMetrics
from .risk.clock import day_bounds, ms_from_utc
from .risk.config import RiskConfig
from .risk.deals import ENTRY_IN, Deal
from .risk.levels import Level
from .risk.rules import DAILY, OVERALL, evaluate
from .risk.tracker import rebuild_state


@dataclass(frozen=True)
class DailyReport:
    login: int | None
    day: str
    start_utc_ms: int
    end_utc_ms: int
    starting_balance: float
    ending_balance: float
    starting_equity: float | None  # first snapshot of the day
    ending_equity: float | None  # last snapshot of the day
    realised_pl: float  # trading P/L incl. commission, swap, fee
    balance_ops: float  # deposits, withdrawals, corrections
    floating_pl: float | None  # equity - balance at the last snapshot
    trades: int  # positions closed (fully or partly) during the day
    wins: int
    losses: int
    win_rate: float | None  # wins / trades
    profit_factor: float | None  # gross win / gross loss; None without a loss
    max_drawdown_money: float | None  # peak-to-trough equity within the day
    max_drawdown_pct: float | None  # of the peak
    daily_limit_money: float | None
    daily_headroom_min: float | None
    daily_headroom_end: float | None
    overall_limit_money: float | None
    overall_headroom_min: float | None
    overall_headroom_end: float | None
    worst_level: str
    reference_estimated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(DailyReport)]


def _deal(d: Deal | Mapping[str, Any]) -> Deal:
    return d if isinstance(d, Deal) else Deal.from_dict(d)


def _snap(s: AccountMetrics | Mapping[str, Any]) -> AccountMetrics:
    return s if isinstance(s, AccountMetrics) else AccountMetrics.from_dict(s)


def _balance_before(at_ms: int, timed: list[tuple[int, Deal]], snaps: list[tuple[int, AccountMetrics]]) -> float:
    """Balance just before ``at_ms``, from the nearest snapshot (deals at a
    snapshot's own millisecond count as already in its balance)."""
    moving = [(t, d) for t, d in timed if d.affects_balance]
    if not snaps:
        return sum(d.net for t, d in moving if t < at_ms)
    ts, s = min(snaps, key=lambda p: abs(p[0] - at_ms))
    if ts >= at_ms:
        return s.balance - sum(d.net for t, d in moving if at_ms <= t <= ts)
    return s.balance + sum(d.net for t, d in moving if ts < t < at_ms)


def daily_report(
    deals: Iterable[Deal | Mapping[str, Any]],
    snapshots: Iterable[AccountMetrics | Mapping[str, Any]],
    config: RiskConfig,
    day: date,
    login: int | None = None,
) -> DailyReport:
    """Report for the trading day labelled ``day`` (see ``clock.trading_day_of``).

    Snapshots must carry ``server_time_msc`` (their broker server time); deals should
    cover the account's history up to the day's end (for balances and trailing marks).
    """
    clock = config.clock
    start, end = day_bounds(day, config.reset_time, config.reset_tz, clock)
    s_ms, e_ms = ms_from_utc(start), ms_from_utc(end)
    all_deals = sorted((_deal(d) for d in deals), key=lambda d: (d.time_msc, d.ticket))
    timed = [(clock.to_utc_ms(d.time_msc), d) for d in all_deals]
    snaps = sorted(((clock.to_utc_ms(s.server_time_msc), s) for s in map(_snap, snapshots)), key=lambda p: p[0])
    in_day = [(t, s) for t, s in snaps if s_ms <= t < e_ms]
    if login is None and snaps:
        login = snaps[-1][1].login

    start_bal = _balance_before(s_ms, timed, snaps)
    end_bal = _balance_before(e_ms, timed, snaps)
    day_deals = [d for t, d in timed if s_ms <= t < e_ms]
    realised = sum(d.net for d in day_deals if d.affects_balance and not d.is_balance_op)
    ops = sum(d.net for d in day_deals if d.is_balance_op)

    # Trades: positions closed today; entry costs of the same position are charged to it.
    entry_costs: dict[int, float] = {}
    for d in all_deals:
        if d.is_trade and d.entry == ENTRY_IN:
            entry_costs[d.position_id] = entry_costs.get(d.position_id, 0.0) + d.commission + d.fee
    results: dict[int, float] = {}
    for d in day_deals:
        if d.is_close:
            key = d.position_id or d.ticket
            if key not in results:
                results[key] = entry_costs.pop(d.position_id, 0.0) if d.position_id else 0.0
            results[key] += d.net
    wins = sum(1 for v in results.values() if v > 0)
    losses_n = sum(1 for v in results.values() if v < 0)
    gross_win = sum(v for v in results.values() if v > 0)
    gross_loss = -sum(v for v in results.values() if v < 0)

    # Intraday drawdown from snapshots.
    max_dd = max_dd_pct = None
    peak = None
    for _, s in in_day:
        peak = s.equity if peak is None else max(peak, s.equity)
        dd = peak - s.equity
        if max_dd is None or dd > max_dd:
            max_dd = dd
            max_dd_pct = dd / peak * 100.0 if peak > 0 else None

    # Rule headroom as the guardian saw it.
    heads: dict[str, list[float]] = {DAILY: [], OVERALL: []}
    limits: dict[str, float | None] = {DAILY: None, OVERALL: None}
    worst = Level.OK
    estimated = False
    state = None
    for t, s in in_day:
        if state is None:
            state = rebuild_state(config, s, [d for tt, d in timed if tt <= t], s.server_time_msc)
        ev = evaluate(config, state, s, s.server_time_msc)
        state = ev.state
        worst = max(worst, ev.level)
        estimated = estimated or "reference_estimated" in ev.flags
        for r in ev.rules:
            if r.rule in heads and r.headroom_money is not None:
                heads[r.rule].append(r.headroom_money)
                limits[r.rule] = r.limit_money

    first = in_day[0][1] if in_day else None
    last = in_day[-1][1] if in_day else None
    n = len(results)
    return DailyReport(
        login=login,
        day=day.isoformat(),
        start_utc_ms=s_ms,
        end_utc_ms=e_ms,
        starting_balance=round(start_bal, 2),
        ending_balance=round(end_bal, 2),
        starting_equity=first.equity if first else None,
        ending_equity=last.equity if last else None,
        realised_pl=round(realised, 2),
        balance_ops=round(ops, 2),
        floating_pl=round(last.equity - last.balance, 2) if last else None,
        trades=n,
        wins=wins,
        losses=losses_n,
        win_rate=wins / n if n else None,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        max_drawdown_money=round(max_dd, 2) if max_dd is not None else None,
        max_drawdown_pct=max_dd_pct,
        daily_limit_money=limits[DAILY],
        daily_headroom_min=min(heads[DAILY]) if heads[DAILY] else None,
        daily_headroom_end=heads[DAILY][-1] if heads[DAILY] else None,
        overall_limit_money=limits[OVERALL],
        overall_headroom_min=min(heads[OVERALL]) if heads[OVERALL] else None,
        overall_headroom_end=heads[OVERALL][-1] if heads[OVERALL] else None,
        worst_level=worst.name,
        reference_estimated=estimated,
    )


def to_csv(reports: Sequence[DailyReport]) -> str:
    """One row per report, fixed column order; empty cells for unknown values."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in reports:
        w.writerow({k: ("" if v is None else v) for k, v in r.to_dict().items()})
    return buf.getvalue()


def to_json(reports: Sequence[DailyReport]) -> str:
    return json.dumps([r.to_dict() for r in reports], indent=2)
