"""Rule evaluation: how much of each limit is used now, and what to do about it.

``evaluate`` is pure: config + persisted state + one snapshot + the time in, an
``Evaluation`` out (per-rule figures, the highest level, the actions, and the new
state to persist). Losses are measured on EQUITY, so floating P/L, swaps and
commissions count, as every firm counts them; and the node passes the estimated cost to
close what is open now (``closing_cost``: the exit commission the closing deals will
charge, ``copier.risk.costs``), so "used" is the loss the account would realise if it were
flattened at the current prices, not less.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..models import AccountMetrics
from .clock import ms_from_utc, next_reset_instant
from .config import RiskConfig
from .deals import Deal
from .levels import Action, Level, actions_for, level_for
from .lock import Lock, is_locked
from .tracker import TrackerState, observe, trading_equity

DAILY = "daily_loss"
OVERALL = "overall_loss"
MARGIN = "margin_level"


@dataclass(frozen=True)
class RuleValue:
    """One limit's figures. ``used_pct`` is the share of the limit used (100 = touched)."""

    rule: str
    used_money: float | None
    limit_money: float | None
    used_pct: float
    headroom_money: float | None
    level: Level
    reference: float | None = None  # money level the loss is measured from
    floor_equity: float | None = None  # equity at which the firm's limit is touched
    value: float | None = None  # the measured value (margin level %)
    estimated: bool = False
    closing_cost: float = 0.0  # part of used_money: the estimated cost to close what is open

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "used_money": self.used_money,
            "limit_money": self.limit_money,
            "used_pct": self.used_pct,
            "headroom_money": self.headroom_money,
            "level": self.level.name,
            "reference": self.reference,
            "floor_equity": self.floor_equity,
            "value": self.value,
            "estimated": self.estimated,
            "closing_cost": self.closing_cost,
        }


@dataclass(frozen=True)
class Evaluation:
    rules: tuple[RuleValue, ...]
    level: Level
    actions: tuple[Action, ...]
    locked: bool
    state: TrackerState
    now_utc_ms: int
    flags: tuple[str, ...] = field(default=())

    def rule(self, name: str) -> RuleValue | None:
        return next((r for r in self.rules if r.rule == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "level": self.level.name,
            "actions": [a.value for a in self.actions],
            "locked": self.locked,
            "lock": self.state.lock.to_dict() if self.state.lock else None,
            "day_id": self.state.day_id,
            "now_utc_ms": self.now_utc_ms,
            "flags": list(self.flags),
        }


def _fraction(used: float, limit: float) -> float:
    """Share of a limit used; a limit already at or below zero counts as fully used."""
    if limit <= 0:
        return 1.0
    return used / limit


def _rule(config: RiskConfig, name: str, reference: float, limit: float, equity: float,
          estimated: bool, closing_cost: float = 0.0) -> RuleValue:
    """``used`` = reference - equity + the cost to close what is open (exit commission):
    the loss a flatten now would realise. ``floor_equity`` stays the firm's line on equity."""
    used = reference - equity + closing_cost
    frac = _fraction(used, limit)
    return RuleValue(
        rule=name,
        used_money=used,
        limit_money=limit,
        used_pct=frac * 100.0,
        headroom_money=limit - used,
        level=level_for(frac, config.warn_at, config.pause_at, config.flatten_at),
        reference=reference,
        floor_equity=reference - limit,
        estimated=estimated,
        closing_cost=closing_cost,
    )


def daily_reference(config: RiskConfig, st: TrackerState, metrics: AccountMetrics) -> tuple[float, float, bool]:
    """(reference, limit money, estimated) of today's daily-loss rule.

    * balance — balance at the reset; the loss is equity below it.
    * max_balance_equity — max(balance, equity) at the reset. The equity then comes from
      a snapshot near the reset or is rebuilt by the node (positions open at the reset
      priced with M1 bars, ``equity_at_reset``); when neither could tell, the strictest
      value the terminal allows is assumed: the day's equity high-water mark since the
      node started (never below the balance at the reset), flagged estimated.
    * initial_plus_day_profit — FundedNext's wording: the allowance is the daily
      percentage of the initial balance *plus the profit banked today* (minus today's
      realised losses), measured from the current balance. The equity floor is the
      same as day-start balance minus the allowance; used % reads like their dashboard.
    * equity_high — the day's equity high-water mark.
    """
    start_bal = st.day_start_balance if st.day_start_balance is not None else metrics.balance
    est = st.reference_estimated
    mode = config.reference
    if mode == "balance":
        ref = start_bal
    elif mode == "max_balance_equity":
        if st.day_start_equity is not None:
            ref = max(start_bal, st.day_start_equity)
        else:
            ref = _highest(start_bal, st.day_equity_high)
    elif mode == "initial_plus_day_profit":
        realised = metrics.balance - start_bal
        base = config.daily_limit_amount(start_bal) or 0.0
        return metrics.balance, base + realised, est
    else:  # equity_high
        ref = _highest(st.day_equity_high, start_bal)
    return ref, config.daily_limit_amount(ref) or 0.0, est


def _highest(*vals: float | None) -> float:
    return max(v for v in vals if v is not None)


def overall_reference(config: RiskConfig, st: TrackerState) -> tuple[float, float]:
    """(peak the loss is measured from, limit money) of the overall-loss rule."""
    initial = config.initial_balance or 0.0
    limit = config.overall_limit_amount() or 0.0
    mode = config.drawdown_mode
    if mode == "static":
        return initial, limit
    if mode == "eod_trailing":
        peak = _highest(initial, st.eod_balance_high)
    elif mode == "intraday_trailing":
        peak = _highest(initial, st.equity_high)
    else:  # balance_trailing
        peak = _highest(initial, st.balance_high)
    floor = peak - limit
    if config.trail_lock_at is not None:
        floor = min(floor, config.trail_lock_at)  # stops trailing once it reaches the lock
    floor = max(floor, initial - limit)
    return floor + limit, limit


def margin_rule(config: RiskConfig, metrics: AccountMetrics) -> RuleValue:
    """Margin level = equity / margin x 100. Used fraction = minimum / current level,
    so the same warn/pause/flatten fractions apply (1.0 = at the minimum)."""
    ml = metrics.margin_level
    minimum = config.min_margin_level or 0.0
    frac = 0.0 if ml is None else (minimum / ml if ml > 0 else float("inf"))
    frac = min(frac, 10.0)
    return RuleValue(
        rule=MARGIN,
        used_money=None,
        limit_money=None,
        used_pct=frac * 100.0,
        headroom_money=None,
        level=level_for(frac, config.warn_at, config.pause_at, config.flatten_at),
        reference=minimum,
        value=ml,
    )


def margin_warning(config: RiskConfig, metrics: AccountMetrics) -> RuleValue:
    """The default margin-level watch (``margin_warn_level``, 150 % unless set): an alert
    (WARN) when equity / margin x 100 falls below it, never a pause or a flatten. The
    used share reads ``warn_at`` x warn level / current level, so the warning starts
    exactly at the level and the alert hysteresis works as for the other rules; it is
    capped below the pause level. ``min_margin_level`` replaces it with the full rule."""
    ml = metrics.margin_level
    warn = config.margin_warn_level or 0.0
    frac = 0.0 if ml is None else (config.warn_at * warn / ml if ml > 0 else float("inf"))
    frac = min(frac, max(config.warn_at, config.pause_at - 1e-6))
    return RuleValue(
        rule=MARGIN,
        used_money=None,
        limit_money=None,
        used_pct=frac * 100.0,
        headroom_money=None,
        level=min(level_for(frac, config.warn_at, config.pause_at, config.flatten_at), Level.WARN),
        reference=warn,
        value=ml,
    )


def evaluate(
    config: RiskConfig,
    state: TrackerState,
    metrics: AccountMetrics,
    now_server_ms: int,
    deals: Sequence[Deal] | None = None,
    closing_cost: float = 0.0,
) -> Evaluation:
    """Fold the snapshot into the state and judge every configured rule.

    ``closing_cost`` (>= 0, account currency): the estimated cost to close every position
    open now (``copier.risk.costs.closing_cost``), counted in the daily and overall loss
    used, so a flatten triggered at the flatten level realises no more than that level
    (slippage aside). The equity marks (day high, trailing peaks) stay the firm's: equity.

    Actions: WARN -> ALERT; PAUSE -> stop opening copies; FLATTEN -> close all,
    delete pendings, and lock until the next reset (the lock is set in the returned
    state). While locked, the actions keep demanding a flat account. Accounts with
    ``actions_enabled`` False (masters by default) only get ALERT.
    """
    st = observe(config, state, metrics, now_server_ms, deals)
    now_utc = config.clock.to_utc(now_server_ms)
    now_ms = ms_from_utc(now_utc)
    rules: list[RuleValue] = []
    flags: list[str] = []
    cost = max(0.0, float(closing_cost or 0.0))
    if config.has_daily_limit:
        ref, limit, est = daily_reference(config, st, metrics)
        rules.append(_rule(config, DAILY, ref, limit, trading_equity(metrics), est, cost))
        if est:
            flags.append("reference_estimated")
    if config.has_overall_limit:
        peak, limit = overall_reference(config, st)
        rules.append(_rule(config, OVERALL, peak, limit, trading_equity(metrics), False, cost))
    if config.min_margin_level is not None:
        rules.append(margin_rule(config, metrics))
    elif config.margin_warn_level is not None:
        rules.append(margin_warning(config, metrics))

    level = max((r.level for r in rules), default=Level.OK)
    locked = is_locked(st.lock, now_ms)
    if level >= Level.FLATTEN and config.actions_enabled and not locked:
        reasons = ", ".join(f"{r.rule} {r.used_pct:.1f}%" for r in rules if r.level >= Level.FLATTEN)
        if cost > 0 and any(r.level >= Level.FLATTEN and r.rule != MARGIN for r in rules):
            reasons += f" (used includes {cost:.2f} estimated closing cost)"
        until = next_reset_instant(now_utc, config.reset_time, config.reset_tz, config.clock)
        st = replace(st, lock=Lock(
            reason=f"flatten level reached: {reasons}",
            locked_at_utc_ms=now_ms,
            until_utc_ms=ms_from_utc(until),
            day_id=st.day_id or "",
        ))
        locked = True
    if locked:
        flags.append("locked")
        actions = actions_for(Level.FLATTEN if config.actions_enabled else level, config.actions_enabled)
    else:
        actions = actions_for(level, config.actions_enabled)
    return Evaluation(
        rules=tuple(rules),
        level=level,
        actions=actions,
        locked=locked,
        state=st,
        now_utc_ms=now_ms,
        flags=tuple(flags),
    )
