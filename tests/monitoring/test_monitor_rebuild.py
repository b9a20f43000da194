"""A node (re)starting in the middle of the day rebuilds the day-start reference from the
deal history, and gets the same figure as a guardian that ran through the reset."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from monitoring.guardian import state_key
from tests.monitoring.monitor_kit import FTMO_10K, Alerts, Events, market


def _utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def _close_all(mt5):
    for p in mt5.positions_get():
        tick = mt5.symbol_info_tick(p.symbol)
        r = mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": p.symbol, "volume": p.volume, "position": p.ticket,
                            "type": mt5.ORDER_TYPE_SELL if p.type == 0 else mt5.ORDER_TYPE_BUY,
                            "price": tick.bid if p.type == 0 else tick.ask, "deviation": 50,
                            "type_filling": mt5.ORDER_FILLING_IOC})
        assert r.retcode == mt5.TRADE_RETCODE_DONE


def _trade(env, mt5, side, points, volume=0.5):
    market(mt5, "EURUSD.c", side, volume)
    env.sim.move_price("EURUSD.c", points, broker="SimProp-Server")
    _close_all(mt5)


@pytest.mark.parametrize("risk", [
    FTMO_10K,  # balance at midnight Prague (23:00 UTC in winter)
    {"profile": "the5ers_high_stakes", "initial_balance": 10000},  # max(balance, equity) at server midnight
    {"profile": "fundednext_stellar", "initial_balance": 10000},
])
def test_restart_mid_day_rebuilds_the_reference_the_running_guardian_tracked(env, risk):
    # start the world on Sunday evening, before both resets (22:00 UTC = 00:00 server in winter)
    env.sim.set_time(_utc(2025, 1, 5, 21, 30))
    mt5 = env.terminal()
    running = env.guardian(risk, name="A", mt5=mt5)
    _trade(env, mt5, "BUY", +120)  # a win on the previous day
    running.tick(env.clock.step())
    for t in (_utc(2025, 1, 5, 22, 0, 30), _utc(2025, 1, 5, 23, 0, 30)):  # across server midnight and Prague midnight
        env.sim.set_time(t)
        env.sim.move_price("EURUSD.c", 1, broker="SimProp-Server")
        running.tick(env.clock.step())
    day_start = running.status_info()["day_start_balance"]
    _trade(env, mt5, "SELL", +80)  # a loss today
    _trade(env, mt5, "BUY", +30)  # a small win today
    market(mt5, "EURUSD.c", "BUY", 0.3)  # and an open position, floating
    env.sim.set_time(_utc(2025, 1, 6, 9, 0))
    env.sim.move_price("EURUSD.c", -40, broker="SimProp-Server")
    running.tick(env.clock.step())
    before = running.status_info()
    assert before["day"] == "2025-01-06" and before["day_start_balance"] == pytest.approx(day_start)
    assert mt5.account_info().balance != pytest.approx(day_start)  # today's deals moved the balance

    # a fresh process, nothing persisted (the store was lost): history alone
    env.store.delete_flag(state_key("A"))
    events = Events()
    fresh = env.guardian(risk, name="A", events=events)
    after = fresh.status_info()
    assert after["day"] == before["day"]
    assert after["day_start_balance"] == pytest.approx(before["day_start_balance"])
    assert after["daily_reference"] == pytest.approx(before["daily_reference"])
    assert after["daily_used_pct"] == pytest.approx(before["daily_used_pct"])
    assert events.of("risk_started")[0]["deals"] >= 7


def test_restart_keeps_what_history_cannot_tell(env):
    """max(balance, equity) at the reset needs the equity then: only the persisted state has it."""
    risk = {"profile": "the5ers_high_stakes", "initial_balance": 10000}
    env.sim.set_time(_utc(2025, 1, 5, 21, 30))
    mt5 = env.terminal()
    running = env.guardian(risk, mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    env.sim.move_price("EURUSD.c", 200, broker="SimProp-Server")  # floating profit over the reset
    env.sim.set_time(_utc(2025, 1, 5, 22, 0, 20))
    env.sim.move_price("EURUSD.c", 1, broker="SimProp-Server")
    running.tick(env.clock.step())
    seen = running.status_info()
    assert seen["day_start_equity"] > seen["day_start_balance"] and not seen["reference_estimated"]
    env.sim.set_time(_utc(2025, 1, 6, 8, 0))
    env.sim.move_price("EURUSD.c", 1, broker="SimProp-Server")
    restarted = env.guardian(risk, mt5=env.terminal())
    info = restarted.status_info()
    assert info["day_start_equity"] == pytest.approx(seen["day_start_equity"])
    assert info["daily_reference"] == pytest.approx(seen["day_start_equity"])
    assert not info["reference_estimated"]
    # without the persisted state the equity at the reset is rebuilt from the M1 bars
    # (the position open then, priced at the last bar before the reset)
    env.store.delete_flag(state_key("A"))
    rebuilt = env.guardian(risk, name="A", mt5=env.terminal()).status_info()
    assert rebuilt["reference_source"] == "rebuilt" and not rebuilt["reference_estimated"]
    assert rebuilt["day_start_equity"] == pytest.approx(seen["day_start_equity"], abs=30.0)
    # and where the terminal cannot tell (no bars), the strictest reference: flagged, never silent
    env.store.delete_flag(state_key("A"))
    alerts = Alerts()
    blind = env.guardian(risk, name="A", mt5=NoBars(env.terminal()), alerts=alerts)
    assert blind.status_info()["reference_estimated"] is True
    assert blind.status_info()["reference_source"] == "assumed_strictest"
    assert [a.rule for a in alerts.sent][:1] == ["reference_estimated"]


class NoBars:
    """A terminal whose price history is empty (copy_rates_range gives None)."""

    def __init__(self, mt5):
        self._mt5 = mt5

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def copy_rates_range(self, *a):
        return None
