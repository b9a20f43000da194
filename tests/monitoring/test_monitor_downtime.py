"""A node that was down across the firm's reset (issue 10, fault 2) or lost its stored
peak (fault 3) rebuilds the equity figures from the deal history and M1 bars, on the
simulator."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitoring.guardian import state_key
from tests.monitoring.monitor_kit import Alerts, Events, market

BROKER = "SimProp-Server"
THE5ERS_100K = {"profile": "the5ers_high_stakes", "initial_balance": 100_000}


def _utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


class NoBars:
    """A terminal without price history: copy_rates_range gives None."""

    def __init__(self, mt5):
        self._mt5 = mt5

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def copy_rates_range(self, *a):
        return None


def _over_the_reset(env, *, login, side, volume, reset_utc, move, deposit_to=None):
    """Open ``side`` ``volume`` EURUSD.c at 15:00 UTC, top the balance up to ``deposit_to``,
    quote ``move`` from the open price one second before the reset, and let the
    simulator run to 09:00 UTC the next day with nobody watching. Returns (mt5, open price)."""
    env.sim.set_time(_utc(2025, 1, 7, 15))
    mt5 = env.terminal(login)
    env.sim.set_price("EURUSD.c", 1.10000, broker=BROKER)
    price = market(mt5, "EURUSD.c", side, volume).price
    if deposit_to is not None:
        env.sim.balance_operation(login, round(deposit_to - mt5.account_info().balance, 2))
    env.sim.set_time(reset_utc - timedelta(seconds=1))
    spread = 0.00003  # EURUSD.c: 3 points
    bid = price + move if side == "BUY" else price - move - spread
    env.sim.set_price("EURUSD.c", round(bid, 5), broker=BROKER)
    env.sim.set_time(_utc(2025, 1, 8, 9))
    return mt5, price


def test_the5ers_after_downtime_over_the_reset_is_97_09_pct_and_flattens(env):
    """Balance 100,000 at the reset (22:00 UTC = 00:00 server), 10 lots EURUSD up 30 pips:
    equity 103,000 then. Next morning equity 98,000: used (103,000 - 98,000) / 5 % of
    103,000 = 5,000 / 5,150 = 97.09 % -> flatten. The old estimate (balance alone) read
    2,000 / 5,000 = 40 %. The guardian also counts the exit commission owed on the 10 lots
    (10 x $3 = 30, docs/guardian.md): (5,000 + 30) / 5,150 = 97.67 %."""
    mt5, price = _over_the_reset(env, login=2001, side="BUY", volume=10.0, reset_utc=_utc(2025, 1, 7, 22),
                                 move=0.00300, deposit_to=100_000.0)
    swap = mt5.positions_get()[0].swap  # charged at the rollover, after the reset
    floating = -2_000.0 - swap
    env.sim.set_price("EURUSD.c", round(price + floating / 1_000_000, 5), broker=BROKER)
    assert mt5.account_info().equity == pytest.approx(98_000.0)
    events = Events()
    g = env.guardian(THE5ERS_100K, login=2001, events=events)
    info = g.status_info()
    assert info["reference_source"] == "rebuilt" and not info["reference_estimated"]
    assert info["day_start_balance"] == 100_000.0 and info["day_start_equity"] == pytest.approx(103_000.0)
    assert info["daily_reference"] == pytest.approx(103_000.0) and info["daily_limit"] == pytest.approx(5_150.0)
    assert info["closing_cost"] == 30.0
    assert (info["daily_used_money"] - info["closing_cost"]) / info["daily_limit"] * 100 == pytest.approx(97.09, abs=0.005)
    assert info["daily_used_pct"] == pytest.approx(97.67, abs=0.005)
    assert "risk_flatten_started" in events.kinds() and info["locked"]
    assert mt5.positions_get() == ()
    assert events.of("risk_history_equity")[0]["priced"] == ["EURUSD.c"]


def test_the5ers_without_bars_assumes_the_strictest_reference_and_says_so(env):
    mt5, price = _over_the_reset(env, login=2001, side="BUY", volume=10.0, reset_utc=_utc(2025, 1, 7, 22),
                                 move=0.00300, deposit_to=100_000.0)
    alerts = Alerts()
    g = env.guardian(THE5ERS_100K, login=2001, mt5=NoBars(env.terminal(2001)), alerts=alerts)
    info = g.status_info()
    assert info["reference_source"] == "assumed_strictest" and info["reference_estimated"]
    # the strictest the terminal allows: the equity now (the highest seen since start), not the balance
    assert info["daily_reference"] == pytest.approx(max(100_000.0, mt5.account_info().equity))
    assert alerts.sent[0].rule == "reference_estimated" and "strictest" in alerts.sent[0].message


def test_fundingpips_sell_over_its_utc_plus_3_reset(env):
    """FundingPips: higher of balance and equity at 00:00 UTC+3 (21:00 UTC), a SELL priced at
    the ask of the last bar before it: 2 lots 50 pips in profit = +1,000 (50k account)."""
    mt5, price = _over_the_reset(env, login=2002, side="SELL", volume=2.0, reset_utc=_utc(2025, 1, 7, 21),
                                 move=0.00500, deposit_to=50_000.0)
    g = env.guardian({"profile": "fundingpips_2step", "initial_balance": 50_000}, login=2002)
    info = g.status_info()
    assert info["reference_source"] == "rebuilt"
    assert info["day_start_equity"] == pytest.approx(51_000.0)
    assert info["daily_reference"] == pytest.approx(51_000.0) and info["daily_limit"] == pytest.approx(2_550.0)


def test_a_running_guardian_that_missed_the_reset_snapshot_rebuilds_it_at_the_roll(env):
    """Running, but the first tick after the reset came late (> 120 s): the roll rebuilds
    the equity at the reset from the bars instead of assuming it."""
    env.sim.set_time(_utc(2025, 1, 7, 15))
    mt5 = env.terminal(2001)
    env.sim.set_price("EURUSD.c", 1.10000, broker=BROKER)
    price = market(mt5, "EURUSD.c", "BUY", 10.0).price
    env.sim.balance_operation(2001, 30.0)
    g = env.guardian(THE5ERS_100K, login=2001)
    env.sim.set_time(_utc(2025, 1, 7, 21, 59, 59))
    env.sim.set_price("EURUSD.c", round(price + 0.003, 5), broker=BROKER)
    g.tick(env.clock.step())
    env.sim.set_time(_utc(2025, 1, 7, 22, 10))  # ten minutes late
    g.tick(env.clock.step())
    info = g.status_info()
    assert info["day"] == "2025-01-08" and info["reference_source"] == "rebuilt"
    assert info["day_start_equity"] == pytest.approx(103_000.0)


# ---------------------------------------------------------------- intraday trailing peak
APEX_STYLE = {"profile": "custom", "initial_balance": 50_000, "overall_limit_money": 2_000,
              "drawdown_mode": "intraday_trailing"}


def _peak_then_drop(env):
    """50,000 on the balance, 1 lot EURUSD up 150 pips (equity 51,500), then 40 pips down
    (equity 49,600). Nothing leaves the simulator's clock: no swap, only these quotes."""
    env.sim.set_time(_utc(2025, 1, 8, 10))
    mt5 = env.terminal(2002)
    env.sim.set_price("EURUSD.c", 1.10000, broker=BROKER)
    env.sim.balance_operation(2002, 3.0)  # pays the 3.00 commission: 50,000 after the open
    price = market(mt5, "EURUSD.c", "BUY", 1.0).price
    assert mt5.account_info().balance == 50_000.0
    return mt5, price


def test_intraday_trailing_peak_after_a_restart_with_no_stored_state(env):
    """Expected threshold 51,500 - 2,000 = 49,500 and 1,900 / 2,000 = 95 % (a flatten);
    the closed balance alone gave 48,000 and 20 %. With the exit commission owed on the
    lot (3.00): 1,903 / 2,000 = 95.15 %."""
    mt5, price = _peak_then_drop(env)
    env.sim.set_price("EURUSD.c", round(price + 0.015, 5), broker=BROKER)
    assert mt5.account_info().equity == pytest.approx(51_500.0)
    env.sim.set_price("EURUSD.c", round(price - 0.004, 5), broker=BROKER)
    assert mt5.account_info().equity == pytest.approx(49_600.0)
    events = Events()
    g = env.guardian(APEX_STYLE, login=2002, events=events)
    info = g.status_info()
    assert info["peak_source"] == "rebuilt" and info["equity_high"] == pytest.approx(51_500.0)
    assert info["overall_floor_equity"] == pytest.approx(49_500.0)
    assert info["closing_cost"] == 3.0 and info["overall_used_pct"] == pytest.approx(95.15)
    assert "risk_flatten_started" in events.kinds()


def test_intraday_trailing_peak_is_stored_on_every_raise_and_survives_a_restart(env):
    mt5, price = _peak_then_drop(env)
    g = env.guardian(APEX_STYLE, login=2002)
    for pips in (5, 10, 12):  # the peak rises three times; each raise is in the store at once
        env.sim.set_price("EURUSD.c", round(price + pips / 1000, 5), broker=BROKER)
        g.tick(env.clock.step())
        stored = env.store.get_flag(state_key("A"))["state"]["equity_high"]
        assert stored == pytest.approx(50_000.0 + pips * 100.0)
    env.sim.set_price("EURUSD.c", round(price - 0.002, 5), broker=BROKER)
    # a new process (the old one died without a word): the stored peak, no bars needed
    again = env.guardian(APEX_STYLE, login=2002, mt5=NoBars(env.terminal(2002)))
    info = again.status_info()
    assert info["peak_source"] == "stored" and info["overall_floor_equity"] == pytest.approx(49_200.0)
    # 600 of 2,000 left on equity, less the 3.00 exit commission owed on the open lot
    assert info["overall_used_pct"] == pytest.approx(2_000.0 / 2_000.0 * 100.0 - (49_800 - 49_200 - 3.0) / 20.0)


def test_intraday_trailing_peak_from_stored_snapshots_when_bars_are_missing(env):
    mt5, price = _peak_then_drop(env)
    g = env.guardian(APEX_STYLE, login=2002, snapshot_interval_ms=1)
    env.sim.set_price("EURUSD.c", round(price + 0.010, 5), broker=BROKER)
    g.tick(env.clock.step())  # snapshot with equity 51,000
    env.sim.set_price("EURUSD.c", round(price - 0.001, 5), broker=BROKER)
    env.store.delete_flag(state_key("A"))
    again = env.guardian(APEX_STYLE, login=2002, mt5=NoBars(env.terminal(2002)))
    info = again.status_info()
    assert info["peak_source"] == "rebuilt_incomplete"
    assert info["equity_high"] == pytest.approx(51_000.0) and info["overall_floor_equity"] == pytest.approx(49_000.0)
