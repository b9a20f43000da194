"""Exposure and the pre-trade check: refuse an open that could breach a limit.

Risk at SL is the money lost if price goes from where we stand to the stop loss:
``|price - sl| / tick_size * tick_value * volume`` (zero when the SL locks profit).
A position without SL has unbounded risk and is flagged. The pre-trade check adds a
proposed open's risk to the loss already used today (and overall) and refuses the
open when the worst case would reach the PAUSE level.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..models import AccountMetrics, Position, SymbolSpec
from .config import RiskConfig
from .deals import ENTRY_IN, Deal
from .levels import Level
from .rules import DAILY, OVERALL, evaluate
from .tracker import TrackerState


def risk_at_sl(side: str, volume: float, from_price: float, sl: float,
               tick_size: float, tick_value: float) -> float | None:
    """Money lost if price moves from ``from_price`` to ``sl``; None without SL."""
    if not sl or sl <= 0:
        return None
    if tick_size <= 0:
        raise ValueError("tick_size must be positive")
    dist = (from_price - sl) if side == "BUY" else (sl - from_price)
    return max(0.0, dist / tick_size * tick_value * volume)


@dataclass(frozen=True)
class PositionRisk:
    ticket: int
    symbol: str
    side: str
    volume: float
    risk_money: float | None  # None: no SL (unbounded)
    risk_pct: float | None  # of equity

    @property
    def unbounded(self) -> bool:
        return self.risk_money is None


@dataclass(frozen=True)
class Exposure:
    positions: tuple[PositionRisk, ...]
    lots_by_symbol: dict[str, float]
    positions_count: int
    total_risk_money: float | None  # None when any position is unbounded
    unbounded_tickets: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "positions": [asdict(p) | {"unbounded": p.unbounded} for p in self.positions],
            "lots_by_symbol": dict(self.lots_by_symbol),
            "positions_count": self.positions_count,
            "total_risk_money": self.total_risk_money,
            "unbounded_tickets": list(self.unbounded_tickets),
        }


def exposure_of(positions: Iterable[Position], specs: Mapping[str, SymbolSpec], equity: float) -> Exposure:
    """Per-position risk at SL (from the current price) and lots per symbol.

    A symbol without a spec is treated like a missing SL: its risk is unknown.
    """
    rows: list[PositionRisk] = []
    lots: dict[str, float] = {}
    for p in positions:
        lots[p.symbol] = round(lots.get(p.symbol, 0.0) + p.volume, 8)
        spec = specs.get(p.symbol)
        price = p.price_current or p.price_open
        risk = None
        if spec is not None:
            risk = risk_at_sl(p.side, p.volume, price, p.sl, spec.tick_size, spec.tick_value)
        pct = None if risk is None or equity <= 0 else risk / equity * 100.0
        rows.append(PositionRisk(p.ticket, p.symbol, p.side, p.volume, risk, pct))
    unbounded = tuple(r.ticket for r in rows if r.unbounded)
    total = None if unbounded else sum(r.risk_money or 0.0 for r in rows)
    return Exposure(tuple(rows), lots, len(rows), total, unbounded)


def trades_opened_since(deals: Iterable[Deal], start_utc_ms: int, clock: Any) -> int:
    """Positions opened (BUY/SELL deals with ``DEAL_ENTRY_IN``) at or after ``start_utc_ms``:
    the trades-per-day count (copies, manual trades and EAs alike)."""
    return sum(1 for d in deals if d.is_trade and d.entry == ENTRY_IN and clock.to_utc_ms(d.time_msc) >= start_utc_ms)


def exposure_breaches(config: RiskConfig, exp: Exposure, trades_today: int | None = None) -> tuple[str, ...]:
    """Standing exposure that violates the per-trade and per-account limits, for every
    position on the account (copies, trades opened by hand, other EAs): missing SL,
    risk at SL, lots per order, per symbol, in total, positions, trades today."""
    out = []
    for r in exp.positions:
        if r.unbounded and (config.require_sl or config.max_risk_per_trade_pct is not None):
            out.append(f"#{r.ticket} {r.symbol}: no SL, risk unbounded")
        elif (config.max_risk_per_trade_pct is not None and r.risk_pct is not None
              and r.risk_pct > config.max_risk_per_trade_pct):
            out.append(f"#{r.ticket} {r.symbol}: risk {r.risk_pct:.2f}% > {config.max_risk_per_trade_pct}%")
        if config.max_lots_per_order is not None and r.volume > config.max_lots_per_order + 1e-9:
            out.append(f"#{r.ticket} {r.symbol}: {r.volume} lots > {config.max_lots_per_order}")
    if config.max_lots_per_symbol is not None:
        for sym, v in sorted(exp.lots_by_symbol.items()):
            if v > config.max_lots_per_symbol + 1e-9:
                out.append(f"{sym}: {v} lots > {config.max_lots_per_symbol}")
    if config.max_positions is not None and exp.positions_count > config.max_positions:
        out.append(f"{exp.positions_count} positions > {config.max_positions}")
    total = round(sum(exp.lots_by_symbol.values()), 8)
    if config.max_total_lots is not None and total > config.max_total_lots + 1e-9:
        out.append(f"{total:g} lots open > {config.max_total_lots:g} in total")
    if config.max_trades_per_day is not None and trades_today is not None and trades_today > config.max_trades_per_day:
        out.append(f"{trades_today} trades today > {config.max_trades_per_day}")
    return tuple(out)


@dataclass(frozen=True)
class ProposedOpen:
    symbol: str
    side: str
    volume: float
    entry: float
    sl: float
    tick_size: float
    tick_value: float


@dataclass(frozen=True)
class AccountRiskState:
    """What the pre-trade check needs to know about the account right now."""

    config: RiskConfig
    tracker: TrackerState
    metrics: AccountMetrics
    now_server_ms: int
    positions: Sequence[Position] = ()
    trades_today: int | None = None  # positions opened since the reset (for max_trades_per_day)
    closing_cost: float = 0.0  # estimated cost to close what is open (exit commission): counted as used


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...] = ()
    risk_money: float | None = None
    risk_pct: float | None = None
    flags: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def pre_trade_check(state: AccountRiskState, proposed: ProposedOpen | tuple) -> Decision:
    """May this open be copied? Refuses (with every reason) when the account is
    locked or paused, when the open exceeds lots/positions/per-trade-risk limits,
    or when hitting its SL would take a loss limit to the PAUSE level."""
    if not isinstance(proposed, ProposedOpen):
        proposed = ProposedOpen(*proposed)
    cfg, m = state.config, state.metrics
    if proposed.side not in ("BUY", "SELL"):
        return Decision(False, (f"side must be BUY or SELL, got {proposed.side!r}",))
    if not proposed.volume > 0:
        return Decision(False, (f"volume must be positive, got {proposed.volume}",))
    reasons: list[str] = []
    flags: list[str] = []
    ev = evaluate(cfg, state.tracker, m, state.now_server_ms, closing_cost=state.closing_cost)
    if ev.locked:
        lock = ev.state.lock
        reasons.append(f"account locked ({lock.reason if lock else 'flat until next reset'})")
    elif ev.level >= Level.PAUSE:
        worst = [r for r in ev.rules if r.level >= Level.PAUSE]
        reasons.append("account paused: " + ", ".join(f"{r.rule} at {r.used_pct:.1f}% of limit" for r in worst))

    if cfg.max_lots_per_order is not None and proposed.volume > cfg.max_lots_per_order + 1e-9:
        reasons.append(f"{proposed.volume} lots > max {cfg.max_lots_per_order} per order")
    if cfg.max_lots_per_symbol is not None:
        held = sum(p.volume for p in state.positions if p.symbol == proposed.symbol)
        if held + proposed.volume > cfg.max_lots_per_symbol + 1e-9:
            reasons.append(
                f"{proposed.symbol}: {held:g} + {proposed.volume:g} lots > max {cfg.max_lots_per_symbol:g} per symbol"
            )
    if cfg.max_positions is not None and len(state.positions) + 1 > cfg.max_positions:
        reasons.append(f"{len(state.positions)} positions open, max {cfg.max_positions}")
    if cfg.max_total_lots is not None:
        held_all = round(sum(p.volume for p in state.positions), 8)
        if held_all + proposed.volume > cfg.max_total_lots + 1e-9:
            reasons.append(f"{held_all:g} + {proposed.volume:g} lots > max {cfg.max_total_lots:g} open in total")
    if cfg.max_trades_per_day is not None:
        if state.trades_today is None:
            reasons.append("trades today unknown (no deal history), max_trades_per_day set: not opening blind")
        elif state.trades_today + 1 > cfg.max_trades_per_day:
            reasons.append(f"{state.trades_today} trades opened today, max {cfg.max_trades_per_day} per day")

    risk = risk_at_sl(proposed.side, proposed.volume, proposed.entry, proposed.sl,
                      proposed.tick_size, proposed.tick_value)
    risk_pct = None if risk is None or m.equity <= 0 else risk / m.equity * 100.0
    if risk is None:
        flags.append("no_sl")
        if cfg.require_sl or cfg.max_risk_per_trade_pct is not None:
            reasons.append("no SL: risk unbounded")
    else:
        if cfg.max_risk_per_trade_pct is not None and risk_pct is not None and risk_pct > cfg.max_risk_per_trade_pct:
            reasons.append(f"risk at SL {risk:.2f} = {risk_pct:.2f}% of equity > max {cfg.max_risk_per_trade_pct}%")
        for rv in ev.rules:
            if rv.rule not in (DAILY, OVERALL) or rv.limit_money is None or rv.used_money is None:
                continue
            after = rv.used_money + risk
            frac = after / rv.limit_money if rv.limit_money > 0 else 1.0
            if frac >= cfg.pause_at:
                reasons.append(
                    f"{rv.rule} after SL hit would be {after:.2f} = {frac * 100:.1f}% of {rv.limit_money:.2f} "
                    f"(pause at {cfg.pause_at * 100:.0f}%)"
                )
    return Decision(not reasons, tuple(reasons), risk, risk_pct, tuple(flags))
