"""The guardian loop in-process: levels and actions, the lock, pre-trade refusals, cadence."""
from __future__ import annotations

import pytest

from copier.risk import RiskConfigError
from monitoring.guardian import lock_key, release_key, state_key
from monitoring.reports import request_release
from tests.monitoring.monitor_kit import EVAL_MS, FTMO_10K, Alerts, Events, drive, market

FIRM_FLOOR = 9500.0  # ftmo_2step, 10k: 5 % of initial below the day-start balance


def _lock_account(env, g, mt5, volume=1.0):
    market(mt5, "EURUSD.c", "BUY", volume)
    return drive(env, g, until=lambda g: g.locked)


def test_warn_pause_flatten_in_order_and_flat_before_the_firm_floor(env):
    events, alerts = Events(), Alerts()
    mt5 = env.terminal()
    g = env.guardian(events=events, alerts=alerts, mt5=mt5)
    assert g.status_info()["day_start_balance"] == 10000.0  # funded today: the deposit is the reference
    market(mt5, "EURUSD.c", "BUY", 1.0)
    saw_pause_refusal = None
    levels = []
    for _ in range(100):
        env.sim.move_price("EURUSD.c", -10, broker="SimProp-Server")
        g.tick(env.clock.step())
        info = g.status_info()
        levels.append(info["daily_level"])
        if info["daily_level"] == "PAUSE" and saw_pause_refusal is None:
            assert g.blocks_opens and not g.locked
            tick = mt5.symbol_info_tick("EURUSD.c")
            saw_pause_refusal = g.pre_trade("EURUSD.c", "BUY", 0.01, tick.ask, tick.ask - 0.0010, 0.00001, 1.0)
        if g.locked:
            break
    assert g.locked and g.blocks_opens
    # first time each level appears: warn before pause before flatten
    firsts = [levels.index(x) for x in ("WARN", "PAUSE", "FLATTEN")]
    assert firsts == sorted(firsts) and len(set(firsts)) == 3
    assert saw_pause_refusal is not None and saw_pause_refusal.startswith("risk:") and "paused" in saw_pause_refusal
    # flattened within the evaluation that saw the crossing, before the firm's floor
    assert mt5.positions_get() == ()
    acct = mt5.account_info()
    assert acct.equity > FIRM_FLOOR and acct.balance > FIRM_FLOOR
    assert alerts.levels("daily_loss") == ["warn", "pause", "flatten"]
    assert "flattened" in alerts.sent[-1].action_taken and "locked until" in alerts.sent[-1].action_taken
    kinds = events.kinds()
    assert kinds.index("risk_paused") < kinds.index("risk_flatten_started") < kinds.index("risk_position_closed") < kinds.index("risk_locked")
    [closed] = events.of("risk_position_closed")
    assert closed["why"] == "flatten" and closed["ok"] and closed["copied"] is False
    # the lock is in the store (durable) and mirrored for the CLI
    saved = env.store.get_flag(state_key("A"))
    assert saved["state"]["lock"]["reason"].startswith("flatten level reached: daily_loss")
    assert env.store.get_flag(lock_key("A"))["until_utc_ms"] == saved["state"]["lock"]["until_utc_ms"]


def test_alerts_only_on_level_changes(env):
    alerts = Alerts()
    mt5 = env.terminal()
    g = env.guardian(alerts=alerts, mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    drive(env, g, until=lambda g: g.status_info()["daily_level"] == "WARN")
    for _ in range(20):  # staying at WARN: no repeat
        g.tick(env.clock.step())
    assert alerts.levels("daily_loss") == ["warn"]
    # back up a little (still within the hysteresis band): no recovery alert
    env.sim.move_price("EURUSD.c", 20, broker="SimProp-Server")
    g.tick(env.clock.step())
    assert alerts.levels("daily_loss") == ["warn"]
    env.sim.move_price("EURUSD.c", 150, broker="SimProp-Server")  # clearly back
    g.tick(env.clock.step())
    assert alerts.levels("daily_loss") == ["warn", "info"]
    assert alerts.sent[-1].action_taken == "back within limits"


def test_a_position_opened_while_locked_is_closed_and_recorded(env):
    events, alerts = Events(), Alerts()
    mt5 = env.terminal()
    g = env.guardian(events=events, alerts=alerts, mt5=mt5)
    _lock_account(env, g, mt5)
    market(mt5, "GBPUSD.c", "SELL", 0.1, comment="by hand")
    g.tick(env.clock.step())
    assert mt5.positions_get() == ()
    closed = [e for e in events.of("risk_position_closed") if e["why"] == "locked"]
    assert len(closed) == 1 and closed[0]["symbol"] == "GBPUSD.c" and closed[0]["copied"] is False
    assert alerts.sent[-1].rule == "lock_enforced" and "manual position" in alerts.sent[-1].message
    # pending orders are deleted while locked, too
    tick = mt5.symbol_info_tick("EURUSD.c")
    r = mt5.order_send({"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD.c", "volume": 0.1,
                        "type": mt5.ORDER_TYPE_BUY_LIMIT, "price": round(tick.ask - 0.0050, 5),
                        "type_filling": mt5.ORDER_FILLING_RETURN})
    assert r.retcode == mt5.TRADE_RETCODE_DONE
    g.tick(env.clock.step())
    assert mt5.orders_get() == ()
    assert g.status_info()["lock_closes"] == 1


def test_the_lock_survives_a_restart_and_the_new_process_closes_at_once(env):
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5)
    _lock_account(env, g, mt5)
    market(mt5, "EURUSD.c", "BUY", 0.2)  # opened while the node was down
    events = Events()
    g2 = env.guardian(events=events)  # a new process: same store, new terminal connection
    assert g2.locked and g2.blocks_opens
    assert mt5.positions_get() == ()
    assert [e["why"] for e in events.of("risk_position_closed")] == ["locked"]
    assert events.of("risk_started")[0]["locked"] is True


def test_the_lock_lapses_at_the_firms_next_reset_and_the_day_report_is_final(env):
    from datetime import datetime, timezone

    events = Events()
    mt5 = env.terminal()
    g = env.guardian(events=events, mt5=mt5)
    _lock_account(env, g, mt5)
    lock = env.store.get_flag(lock_key("A"))
    # FTMO resets at midnight Prague = 23:00 UTC in January
    assert datetime.fromtimestamp(lock["until_utc_ms"] / 1000, tz=timezone.utc) == datetime(2025, 1, 6, 23, 0, tzinfo=timezone.utc)
    balance = mt5.account_info().balance
    env.sim.set_time(datetime(2025, 1, 6, 22, 59, 30, tzinfo=timezone.utc))
    env.sim.move_price("EURUSD.c", 1, broker="SimProp-Server")  # a tick just before the reset
    g.tick(env.clock.step())
    assert g.locked
    env.sim.set_time(datetime(2025, 1, 6, 23, 0, 30, tzinfo=timezone.utc))
    env.sim.move_price("EURUSD.c", 1, broker="SimProp-Server")  # the first tick of the new day
    g.tick(env.clock.step())
    assert not g.locked and not g.blocks_opens
    assert "risk_lock_expired" in events.kinds() and "risk_day_rolled" in events.kinds()
    info = g.status_info()
    assert info["day"] == "2025-01-07" and info["day_start_balance"] == pytest.approx(balance)
    assert env.store.get_flag(lock_key("A")) is None
    report = env.store.get_flag("report:A:2025-01-06")
    assert report["final"] is True and report["trades"] == 1 and report["losses"] == 1
    assert report["worst_level"] == "FLATTEN"


def test_operator_release_through_the_store_flag(env):
    events = Events()
    from copier.risk import Lock

    # a lock left by an earlier process, on an account that is within its limits
    env.store.set_flag(state_key("A"), {"state": {"lock": Lock("operator drill", 0, None, by="operator").to_dict()}})
    g = env.guardian(events=events)
    assert g.locked and g.blocks_opens
    request_release(env.store, "A", by="alice")
    g.tick(env.clock.step())
    assert not g.locked and not g.blocks_opens
    assert env.store.get_flag(release_key("A")) is None
    assert events.of("risk_lock_released")[0]["by"] == "alice"
    assert env.store.get_flag(state_key("A"))["state"]["lock"] is None


def test_a_release_while_still_past_the_flatten_level_locks_again(env):
    events = Events()
    mt5 = env.terminal()
    g = env.guardian(events=events, mt5=mt5)
    _lock_account(env, g, mt5)
    assert g.status_info()["daily_used_pct"] >= 95  # the realised loss keeps it there
    g.release_lock(by="bob")
    assert not g.locked
    g.tick(env.clock.step())
    assert g.locked and events.kinds().count("risk_locked") == 2


def test_pre_trade_refuses_an_open_over_the_per_trade_risk_limit(env):
    g = env.guardian({**FTMO_10K, "max_risk_per_trade_pct": 1.0})
    tick = env.terminal().symbol_info_tick("EURUSD.c")
    sl = round(tick.ask - 0.0020, 5)  # 200 points: $200 per lot
    reason = g.pre_trade("EURUSD.c", "BUY", 1.0, tick.ask, sl, 0.00001, 1.0)
    assert reason is not None and reason.startswith("risk:") and "risk at SL" in reason and "max 1.0%" in reason
    assert g.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, sl, 0.00001, 1.0) is None  # $20 = 0.2 %
    assert "no SL" in g.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, 0.0, 0.00001, 1.0)


def test_pre_trade_refuses_an_open_whose_sl_would_cross_the_pause_level(env):
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    drive(env, g, until=lambda g: g.status_info()["daily_used_pct"] >= 60)
    assert not g.blocks_opens
    tick = mt5.symbol_info_tick("EURUSD.c")
    far = g.pre_trade("EURUSD.c", "BUY", 1.0, tick.ask, round(tick.ask - 0.0015, 5), 0.00001, 1.0)
    assert far is not None and "daily_loss after SL hit" in far
    assert g.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, round(tick.ask - 0.0010, 5), 0.00001, 1.0) is None


def test_a_master_only_alerts(env):
    events, alerts = Events(), Alerts()
    mt5 = env.terminal(1001)
    g = env.guardian({"profile": "ftmo_2step", "initial_balance": 100000}, role="master", login=1001, mt5=mt5,
                     events=events, alerts=alerts)
    market(mt5, "EURUSD", "BUY", 10.0)
    drive(env, g, points=-10, broker="SimFX-Live", symbol="EURUSD",
          until=lambda g: g.status_info()["daily_used_pct"] >= 100)
    assert len(mt5.positions_get()) == 1 and not g.locked and not g.blocks_opens
    assert alerts.levels("daily_loss") == ["warn", "pause", "flatten"]
    assert all("alert only" in a.action_taken for a in alerts.sent if a.rule == "daily_loss")
    assert g.pre_trade("EURUSD", "BUY", 1.0, 1.0, 0.0, 0.00001, 1.0) is None
    assert not any(k.startswith("risk_flatten") or k == "risk_paused" for k in events.kinds())


def test_no_risk_field_means_no_limits_but_snapshots_and_reports(env):
    events = Events()
    mt5 = env.terminal()
    g = env.guardian(None, events=events, mt5=mt5, snapshot_interval_ms=1000)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    drive(env, g, points=-50, until=lambda g: g.status_info()["equity"] < 9000)
    assert len(mt5.positions_get()) == 1 and not g.locked and not g.blocks_opens
    assert g.status_info()["level"] == "OK"
    snaps = env.store.list_snapshots("A")
    assert len(snaps) >= 5 and snaps[-1]["metrics"]["equity"] < 9100
    assert env.store.get_flag("report:A:2025-01-06")["login"] == 2004


def test_a_bad_risk_setting_names_the_field(env):
    with pytest.raises(RiskConfigError) as err:
        env.guardian({"profile": "ftmo_2step", "initial_balance": 10000, "daily_limit_pct": 150})
    assert err.value.field == "daily_limit_pct" and "risk.daily_limit_pct" in str(err.value)
    with pytest.raises(RiskConfigError) as err:
        env.guardian({"profile": "ftmo_3step"})
    assert err.value.field == "profile"


def test_a_terminal_error_is_not_a_signal(env):
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    env.sim.inject_fault(2004, "disconnect")
    env.sim.move_price("EURUSD.c", -600, broker="SimProp-Server")
    g.tick(env.clock.step())
    assert g.status_info()["terminal_error"] is not None and not g.locked
    env.sim.inject_fault(2004, "reconnect")
    if not mt5.account_info():
        mt5.initialize(login=2004)
    g.tick(env.clock.step())
    assert g.locked and mt5.positions_get() == ()
    assert g.status_info()["terminal_error"] is None


class Counting:
    def __init__(self, mt5):
        self._mt5, self.calls = mt5, 0

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def account_info(self):
        self.calls += 1
        return self._mt5.account_info()


def test_evaluates_at_most_once_per_interval(env):
    mt5 = Counting(env.terminal())
    g = env.guardian(mt5=mt5)
    base = mt5.calls
    t = env.clock.now
    for dt in (1, 10, 500, EVAL_MS - 1):
        g.tick(t + dt)
    assert mt5.calls == base
    g.tick(t + EVAL_MS)
    assert mt5.calls == base + 1
    assert g.ms_until_due(t + EVAL_MS) == EVAL_MS


def test_server_time_comes_from_the_terminal_never_the_wall_clock(env):
    g = env.guardian(snapshot_interval_ms=1000)
    info = g.status_info()
    assert info["day"] == "2025-01-06"  # the wall clock (fake, 2027) plays no part
    assert abs(info["server_time_msc"] - (env.sim.now_ms() + 2 * 3600_000)) < 60_000  # SimProp is UTC+2 in January
    [snap] = env.store.list_snapshots("A")
    assert abs(snap["ts_ms"] - env.sim.now_ms()) < 60_000 and snap["metrics"]["wall_ms"] == env.clock.now


def test_a_failed_flatten_close_is_retried_at_the_next_evaluation(env):
    events = Events()
    mt5 = env.terminal()
    g = env.guardian(events=events, mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    drive(env, g, until=lambda g: g.status_info()["daily_level"] == "PAUSE")
    env.sim.inject_fault(2004, "retcode", code=10004, count=3)  # three requotes: the executor gives up once
    drive(env, g, until=lambda g: g.locked)
    assert len(mt5.positions_get()) == 1
    [failed] = events.of("risk_close_failed")
    assert failed["why"] == "flatten" and failed["failures"] == 1
    g.tick(env.clock.step())
    assert mt5.positions_get() == ()
    assert [e["why"] for e in events.of("risk_position_closed")] == ["locked"]


class Broken:
    """A terminal whose account_info raises: stands for a bug or a dead bridge."""

    def __init__(self, mt5):
        self._mt5, self.broken = mt5, False

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def account_info(self):
        if self.broken:
            raise RuntimeError("bridge crashed")
        return self._mt5.account_info()


@pytest.mark.parametrize("risk,blocks", [(FTMO_10K, True), (None, False)])
def test_a_guardian_that_cannot_evaluate_stops_opens_on_an_account_with_limits(env, risk, blocks):
    events = Events()
    mt5 = Broken(env.terminal())
    g = env.guardian(risk, mt5=mt5, events=events)
    mt5.broken = True
    for _ in range(2):
        g.tick(env.clock.step())
    assert not g.blocks_opens  # a hiccup is not a reason to stop copying
    g.tick(env.clock.step())
    assert g.blocks_opens is blocks and g.status_info()["blind"] == 3
    assert bool(events.of("risk_blind")) is blocks
    mt5.broken = False
    g.tick(env.clock.step())
    assert not g.blocks_opens and g.status_info()["blind"] == 0


def test_a_release_request_without_a_lock_is_consumed_not_kept_for_later(env):
    events = Events()
    mt5 = env.terminal()
    g = env.guardian(events=events, mt5=mt5)
    request_release(env.store, "A", by="carol")
    g.tick(env.clock.step())
    assert env.store.get_flag(release_key("A")) is None and events.of("risk_release_ignored")[0]["by"] == "carol"
    _lock_account(env, g, mt5)
    g.tick(env.clock.step())
    assert g.locked
