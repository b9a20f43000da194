"""What the seed risk monitors had, on every position of the account (issue 10, "Also")."""
from __future__ import annotations

from tests.monitoring.monitor_kit import Alerts, Events, market


def test_a_hand_opened_20_lot_position_raises_an_exposure_alert(env):
    risk = {"profile": "ftmo_2step", "initial_balance": 100_000, "max_lots_per_order": 5, "max_total_lots": 10}
    events, alerts = Events(), Alerts()
    mt5 = env.terminal(2001)
    g = env.guardian(risk, login=2001, mt5=mt5, events=events, alerts=alerts)
    market(mt5, "EURUSD.c", "BUY", 20.0)  # by hand, not a copy
    g.tick(env.clock.step())
    breach, = events.of("risk_exposure_breach")
    assert any("20.0 lots > 5.0" in b for b in breach["breaches"])
    assert any("20 lots open > 10 in total" in b for b in breach["breaches"])
    assert [a.rule for a in alerts.sent if a.rule == "exposure"] == ["exposure"]
    assert g.status_info()["exposure_breaches"]
    env.sim.move_price("EURUSD.c", 5, broker="SimProp-Server")
    g.tick(env.clock.step())
    assert len(events.of("risk_exposure_breach")) == 1  # alerted once, not every evaluation
    assert mt5.positions_get()  # an alert, not a close


def test_max_trades_per_day_refuses_the_next_open(env):
    risk = {"profile": "ftmo_2step", "initial_balance": 100_000, "max_trades_per_day": 2}
    mt5 = env.terminal(2001)
    g = env.guardian(risk, login=2001, mt5=mt5)
    tick = mt5.symbol_info_tick("EURUSD.c")
    assert g.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, 0.0, 0.00001, 1.0) is None
    market(mt5, "EURUSD.c", "BUY", 0.1)
    market(mt5, "EURUSD.c", "SELL", 0.1)
    reason = g.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, 0.0, 0.00001, 1.0)
    assert reason is not None and "2 trades opened today, max 2 per day" in reason


def test_margin_level_warning_is_on_by_default(env):
    events, alerts = Events(), Alerts()
    mt5 = env.terminal(2004)  # 10k, leverage 100
    g = env.guardian({"profile": "ftmo_2step", "initial_balance": 10_000}, mt5=mt5, events=events, alerts=alerts)
    market(mt5, "EURUSD.c", "BUY", 7.0)  # ~7,600 margin on 10k equity: ~130 %
    g.tick(env.clock.step())
    info = g.status_info()
    assert info["margin_level"] is not None and 100.0 < info["margin_level"] < 150.0
    assert info["margin_used_pct"] >= 70.0 and info["margin_level"] > 0 and g.ev.rule("margin_level").level.name == "WARN"
    assert [a.level for a in alerts.sent if a.rule == "margin_level"] == ["warn"]
    assert "risk_flatten_started" not in events.kinds() and not info["blocks_opens"]
