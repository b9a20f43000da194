"""Built-in rule sets, one per prop-firm program, named after what they model.

Values were checked against the firms' published help pages on 2026-11-21 and again on
2026-11-30 (sources and dates per profile in docs/risk.md). Firms change their rules: every value here is only a default,
overridable per account through the ``risk: {...}`` dict.
"""
from __future__ import annotations

from typing import Any

# Keys match ``resolve_risk_config``'s dict keys.
PROFILES: dict[str, dict[str, Any]] = {
    # FTMO 2-Step: daily 5 % of initial capital below the balance at midnight
    # Prague; max loss 10 % of initial, static.
    "ftmo_2step": {
        "reference": "balance",
        "reset_time": "00:00",
        "reset_tz": "Europe/Prague",
        "daily_limit_pct": 5.0,
        "daily_limit_base": "initial",
        "overall_limit_pct": 10.0,
        "drawdown_mode": "static",
        "trail_lock_at": None,
    },
    # FTMO 1-Step: daily 3 % of initial; max loss 10 % of initial below the highest
    # end-of-day balance (midnight Prague), never below initial - 10 %. FTMO's page
    # states no lock, so none by default (set trail_lock_at to cap it).
    "ftmo_1step": {
        "reference": "balance",
        "reset_time": "00:00",
        "reset_tz": "Europe/Prague",
        "daily_limit_pct": 3.0,
        "daily_limit_base": "initial",
        "overall_limit_pct": 10.0,
        "drawdown_mode": "eod_trailing",
        "trail_lock_at": None,
    },
    # The5ers High Stakes: daily 5 % of the higher of balance and equity at the day
    # start (00:00 server, UTC+3 in summer = 17:00 New York); max loss 10 % of
    # initial, static.
    "the5ers_high_stakes": {
        "reference": "max_balance_equity",
        "reset_time": "00:00",
        "reset_tz": "server",
        "daily_limit_pct": 5.0,
        "daily_limit_base": "reference",
        "overall_limit_pct": 10.0,
        "drawdown_mode": "static",
        "trail_lock_at": None,
    },
    # FundedNext Stellar 2-Step: daily 5 % of initial balance, plus the profit
    # banked during the day, reset 00:00 server (GMT+2/+3); max loss 10 % static.
    "fundednext_stellar": {
        "reference": "initial_plus_day_profit",
        "reset_time": "00:00",
        "reset_tz": "server",
        "daily_limit_pct": 5.0,
        "daily_limit_base": "initial",
        "overall_limit_pct": 10.0,
        "drawdown_mode": "static",
        "trail_lock_at": None,
    },
    # E8 One (preset): daily 3 % below the day's starting balance, 00:00 server;
    # 6 % trailing drawdown from the closed-balance high-water mark, updated at
    # once, locking at the initial balance. Whether the 3 % is of the initial capital
    # or of the day's balance could not be confirmed on E8's own site: the smaller of
    # the two is used ("lower"), the conservative choice.
    "e8_one": {
        "reference": "balance",
        "reset_time": "00:00",
        "reset_tz": "server",
        "daily_limit_pct": 3.0,
        "daily_limit_base": "lower",
        "overall_limit_pct": 6.0,
        "drawdown_mode": "balance_trailing",
        "trail_lock_at": "initial",
    },
    # FundingPips 2-Step (Standard): daily 5 % of the higher of the day's starting balance
    # and equity, reset 00:00 UTC+3 (platform time, fixed); max loss 10 % of initial, static.
    "fundingpips_2step": {
        "reference": "max_balance_equity",
        "reset_time": "00:00",
        "reset_tz": "Etc/GMT-3",
        "daily_limit_pct": 5.0,
        "daily_limit_base": "reference",
        "overall_limit_pct": 10.0,
        "drawdown_mode": "static",
        "trail_lock_at": None,
    },
    # Your own rules: nothing enforced until you set it.
    "custom": {
        "reference": "balance",
        "reset_time": "00:00",
        "reset_tz": "server",
        "daily_limit_pct": None,
        "daily_limit_base": "initial",
        "overall_limit_pct": None,
        "drawdown_mode": "static",
        "trail_lock_at": None,
    },
}
