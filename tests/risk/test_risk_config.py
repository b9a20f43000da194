"""Profiles, per-account overrides and validation errors that name the field."""
from datetime import time

import pytest

from copier.risk import PROFILES, RiskConfigError, resolve_risk_config


def test_every_profile_resolves_with_an_initial_balance():
    for name in PROFILES:
        cfg = resolve_risk_config({"profile": name, "initial_balance": 100_000})
        assert cfg.profile == name
        assert (cfg.warn_at, cfg.pause_at, cfg.flatten_at) == (0.70, 0.85, 0.95)


def test_profile_values():
    ftmo = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000})
    assert (ftmo.reference, ftmo.reset_tz, ftmo.reset_time) == ("balance", "Europe/Prague", time(0, 0))
    assert ftmo.daily_limit_amount(123_456) == 5_000  # % of INITIAL capital
    assert ftmo.overall_limit_amount() == 10_000
    one = resolve_risk_config({"profile": "ftmo_1step", "initial_balance": 100_000})
    assert (one.daily_limit_pct, one.drawdown_mode) == (3.0, "eod_trailing")
    t5 = resolve_risk_config({"profile": "the5ers_high_stakes", "initial_balance": 100_000})
    assert t5.daily_limit_amount(103_000) == pytest.approx(5_150)  # % of the day's reference
    e8 = resolve_risk_config({"profile": "e8_one", "initial_balance": 50_000})
    assert (e8.drawdown_mode, e8.trail_lock_at, e8.overall_limit_amount()) == ("balance_trailing", 50_000, 3_000)


def test_overrides_win_over_the_profile():
    cfg = resolve_risk_config({
        "profile": "ftmo_2step", "initial_balance": 200_000, "daily_limit_pct": 4, "reset_time": "17:00",
        "reset_tz": "America/New_York", "warn_at": 0.5, "pause_at": 0.6, "flatten_at": 0.8,
        "max_lots_per_order": 5, "max_positions": 3, "server_offset": 180,
    })
    assert cfg.daily_limit_amount(0) == 8_000
    assert cfg.reset_time == time(17, 0) and cfg.reset_tz == "America/New_York"
    assert (cfg.warn_at, cfg.pause_at, cfg.flatten_at) == (0.5, 0.6, 0.8)
    assert cfg.clock.offset == 180
    money = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "daily_limit_money": 3_000})
    assert money.daily_limit_amount(0) == 3_000


def test_masters_default_to_alerts_only():
    assert resolve_risk_config({"profile": "custom"}, is_master=True).actions_enabled is False
    assert resolve_risk_config({"profile": "custom"}).actions_enabled is True
    assert resolve_risk_config({"profile": "custom", "actions_enabled": True}, is_master=True).actions_enabled


@pytest.mark.parametrize(
    "risk, field",
    [
        ({"profile": "ftmo_3step"}, "profile"),
        ({"profile": "ftmo_2step"}, "initial_balance"),
        ({"profile": "ftmo_2step", "initial_balance": -5}, "initial_balance"),
        ({"profile": "ftmo_2step", "initial_balance": "100k"}, "initial_balance"),
        ({"profile": "custom", "daily_limit_pct": 150, "initial_balance": 1}, "daily_limit_pct"),
        ({"profile": "custom", "reference": "equity"}, "reference"),
        ({"profile": "custom", "reset_time": "24:00"}, "reset_time"),
        ({"profile": "custom", "reset_time": 1700}, "reset_time"),
        ({"profile": "custom", "reset_tz": "Europe/Praha"}, "reset_tz"),
        ({"profile": "custom", "server_offset": "EET+2"}, "server_offset"),
        ({"profile": "custom", "drawdown_mode": "trailing"}, "drawdown_mode"),
        ({"profile": "custom", "warn_at": 0.9, "pause_at": 0.8}, "pause_at"),
        ({"profile": "custom", "flatten_at": 1.5}, "flatten_at"),
        ({"profile": "custom", "max_positions": 2.5}, "max_positions"),
        ({"profile": "custom", "actions_enabled": "yes"}, "actions_enabled"),
        ({"profile": "custom", "trail_lock_at": "initial"}, "initial_balance"),
        ({"profile": "custom", "daily_limt_pct": 5}, "daily_limt_pct"),
    ],
)
def test_validation_errors_name_the_field(risk, field):
    with pytest.raises(RiskConfigError) as exc:
        resolve_risk_config(risk)
    assert exc.value.field == field
    assert f"risk.{field}" in str(exc.value)


def test_error_carries_expected_and_got():
    with pytest.raises(RiskConfigError) as exc:
        resolve_risk_config({"profile": "custom", "warn_at": True})
    assert exc.value.got is True and "fraction" in exc.value.expected
    with pytest.raises(RiskConfigError):
        resolve_risk_config(["not", "a", "dict"])
