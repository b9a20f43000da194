"""Prop-firm risk guardian: pure rules that stop copying and flatten an account
*before* the firm's daily or overall loss limit is touched.

Public API (see docs/risk.md):

* ``resolve_risk_config(risk_dict, is_master=False) -> RiskConfig`` — profile + overrides.
* ``evaluate(config, state, metrics, now_server_ms, deals=None, closing_cost=0.0) -> Evaluation``
  — per-rule figures, level, actions, and the new ``TrackerState`` to persist;
  ``closing_cost`` (``costs.closing_cost``) is the exit commission owed on what is open.
* ``rebuild_state(config, metrics, deals, now_server_ms)`` — state for a node starting mid-day.
* ``pre_trade_check(AccountRiskState, ProposedOpen) -> Decision``.
* ``Lock``, ``is_locked``, ``positions_to_close_when_locked``; time helpers in ``clock``.
"""
from .clock import (
    NY_CLOSE,
    SERVER,
    ServerClock,
    day_bounds,
    last_reset_instant,
    next_reset_instant,
    server_ms_to_utc,
    to_firm_time,
    trading_day_of,
)
from .config import DRAWDOWN_MODES, REFERENCE_MODES, RiskConfig, RiskConfigError, resolve_risk_config
from .costs import ClosingCost, OpenVolume, SideCharge, closing_cost, side_charge, symbol_exit_charges
from .deals import Deal
from .exposure import (
    AccountRiskState,
    Decision,
    Exposure,
    PositionRisk,
    ProposedOpen,
    exposure_breaches,
    exposure_of,
    pre_trade_check,
    risk_at_sl,
    trades_opened_since,
)
from .levels import Action, Level, actions_for, level_for
from .lock import Lock, is_locked, positions_to_close_when_locked
from .profiles import PROFILES
from .reference import rebuild_balance_high, rebuild_day_start_balance, rebuild_eod_balance_high
from .rules import DAILY, MARGIN, OVERALL, Evaluation, RuleValue, evaluate
from .tracker import TrackerState, observe, operator_lock, rebuild_state, release_lock, with_balance_operations

__all__ = [name for name in dir() if not name.startswith("_")]
