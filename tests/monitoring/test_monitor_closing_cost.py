"""The guardian counts the exit commission owed on what is open (docs/guardian.md).

Demo login 2004: FTMO 2-Step 10k, hedging, EURUSD.c at $3 per lot and side (the simulator
charges ``commission_per_lot`` on every deal, entry and exit: sim/trading.py ``_commission``).
"""
from __future__ import annotations

import pytest

from copier.reasons import RISK, classify_closure
from terminals.convert import deal_from_mt5
from tests.monitoring.monitor_kit import FTMO_10K, Alerts, Events, drive, market

SP = "SimProp-Server"


def _close(mt5, position, volume=None):
    tick = mt5.symbol_info_tick(position.symbol)
    r = mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": position.symbol,
                        "volume": volume or position.volume, "type": mt5.ORDER_TYPE_SELL, "position": position.ticket,
                        "price": tick.bid, "deviation": 20, "type_filling": mt5.ORDER_FILLING_IOC})
    assert r is not None and r.retcode == mt5.TRADE_RETCODE_DONE, r


class Reads:
    """Counts ``history_deals_get(position=...)`` reads."""

    def __init__(self, mt5):
        self._mt5 = mt5
        self.positions = []

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def history_deals_get(self, *args, **kwargs):
        if "position" in kwargs:
            self.positions.append(kwargs["position"])
        return self._mt5.history_deals_get(*args, **kwargs)


def test_used_counts_the_exit_commission_once_and_equals_the_loss_the_close_realises(env):
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5)
    market(mt5, "EURUSD.c", "BUY", 3.0)
    assert mt5.account_info().balance == 9_991.0  # the entry side (3 x $3) is paid: in balance and equity
    env.sim.move_price("EURUSD.c", -50, broker=SP)
    g.tick(env.clock.step())
    info = g.status_info()
    equity = mt5.account_info().equity
    assert info["closing_cost"] == 9.0 and info["closing_cost_incomplete"] is False
    assert info["daily_used_money"] == pytest.approx(10_000.0 - equity + 9.0)  # not + 18: no double count
    assert info["daily_headroom"] == pytest.approx(500.0 - info["daily_used_money"])
    used_before = info["daily_used_money"]
    _close(mt5, mt5.positions_get()[0])  # at the price the guardian saw
    assert 10_000.0 - mt5.account_info().balance == pytest.approx(used_before, abs=0.005)  # what it measured
    g.tick(env.clock.step())
    assert g.status_info()["closing_cost"] == 0.0
    assert g.status_info()["daily_used_money"] == pytest.approx(used_before, abs=0.005)


def test_a_partial_close_leaves_the_exit_side_owed_on_the_rest_only(env):
    mt5 = env.terminal()
    reads = Reads(mt5)
    g = env.guardian(mt5=reads)
    market(mt5, "EURUSD.c", "BUY", 3.0)
    g.tick(env.clock.step())
    (p,) = mt5.positions_get()
    assert g.status_info()["closing_cost"] == 9.0 and reads.positions == [p.identifier]
    for _ in range(3):  # known: not read again
        g.tick(env.clock.step())
    assert reads.positions == [p.identifier]
    _close(mt5, p, volume=1.0)  # its exit side for 1 lot (3.00) is paid now
    g.tick(env.clock.step())
    assert g.status_info()["closing_cost"] == 6.0  # 2 lots x $3, read again because the volume changed
    assert reads.positions == [p.identifier, p.identifier]
    assert g.status_info()["daily_used_money"] == pytest.approx(10_000.0 - mt5.account_info().equity + 6.0)


def test_a_flatten_at_the_flatten_level_realises_no_more_than_that_level(env):
    """The user's trial, made sharp: 3.1 lots at $3 per side owe 9.30 to close; with
    ``flatten_at`` 99 % the buffer (5.00) is smaller than that. Measured on equity alone the
    flatten realised the trigger + 9.30, past the firm's 500; with the cost counted, the
    realised loss is what the guardian measured when it fired: 99 % of the limit."""
    events, alerts = Events(), Alerts()
    mt5 = env.terminal()
    g = env.guardian({**FTMO_10K, "flatten_at": 0.99}, mt5=mt5, events=events, alerts=alerts)
    market(mt5, "EURUSD.c", "BUY", 3.0)
    market(mt5, "EURUSD.c", "BUY", 0.1)
    assert mt5.account_info().balance == pytest.approx(10_000.0 - 9.30)
    env.sim.move_price("EURUSD.c", -140, broker=SP)
    g.tick(env.clock.step())
    before = g.status_info()
    seen = drive(env, g, points=-1, until=lambda g: g.locked)  # $3.10 per step
    at_flatten = seen[-1]
    assert mt5.positions_get() == ()
    realised = 10_000.0 - mt5.account_info().balance
    assert realised < 500.0 and mt5.account_info().balance > 9_500.0  # within FTMO's line
    assert before["closing_cost"] == 9.30
    [started] = events.of("risk_flatten_started")
    [daily] = [r for r in started["rules"] if r["rule"] == "daily_loss"]
    assert started["closing_cost"] == 9.30 and daily["closing_cost"] == 9.30
    assert 495.0 <= daily["used_money"] < 495.0 + 3.10  # fired at the first step at or past 99 %
    assert "(used includes 9.30 estimated closing cost)" in started["reason"]
    assert realised == pytest.approx(daily["used_money"], abs=0.005)  # no slippage in-process: exactly as measured
    # what the status and the alert showed at the flatten included it
    assert at_flatten["daily_used_money"] == pytest.approx(daily["used_money"])
    assert any("incl. 9.30 estimated closing cost" in a.message for a in alerts.sent if a.rule == "daily_loss")
    assert g.status_info()["last_flatten"]["closing_cost"] == 9.30


def test_the_guardians_closes_carry_its_comment_and_read_as_closed_by_the_guardian(env):
    events = Events()
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5, events=events)
    r = market(mt5, "EURUSD.c", "BUY", 1.0)
    drive(env, g, until=lambda g: g.locked)
    [closed] = events.of("risk_position_closed")
    deals = mt5.history_deals_get(position=r.order)
    assert deals[-1].comment == "copyhub risk flatten" and deals[-1].reason == 3  # EXPERT
    rule = g.state.lock.reason.split(": ", 1)[1].split(" (")[0]  # e.g. "daily_loss 95.2%"
    assert g.risk_close_notes == {r.order: f"flatten ({rule})"}
    closure = classify_closure([deal_from_mt5(d) for d in deals], position_id=r.order, magic=0,
                               risk_notes=g.risk_close_notes)
    assert closure.cause == RISK and closure.final and not closure.own
    assert closure.describe() == f"closed by the guardian: flatten ({rule})"
    assert closed["why"] == "flatten"


class _Rec:
    """A TradeDeal / TradePosition stand-in (the fields the estimate reads)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _rec(ticket, position_id, entry, volume, commission, *, symbol="EURUSD.c", t=0, type_=0):
    return _Rec(ticket=ticket, time_msc=t or ticket, type=type_, entry=entry, volume=volume, price=1.1, profit=0.0,
                commission=commission, swap=0.0, fee=0.0, symbol=symbol, position_id=position_id)


class _Terminal:
    def __init__(self, deals):
        self.deals = deals
        self.fail = False
        self.reads = 0

    def history_deals_get(self, *a, position=None, **kw):
        self.reads += 1
        return None if self.fail else tuple(d for d in self.deals if d.position_id == position)


def test_closing_costs_a_failed_read_and_a_broker_that_charges_on_exit_only():
    from copier.risk import Deal
    from monitoring.terminal import ClosingCosts

    # the history: a closed EURUSD.c position charged nothing on entry and $3.50 per lot on exit
    history_recs = [_rec(1, 10, 0, 1.0, 0.0), _rec(2, 10, 1, 1.0, -3.5, type_=1)]
    open_now = _rec(3, 11, 0, 2.0, 0.0)
    term = _Terminal(history_recs + [open_now])
    history = {r.ticket: Deal.from_mt5(r) for r in history_recs}
    costs = ClosingCosts()
    pos = _Rec(identifier=11, ticket=11, symbol="EURUSD.c", volume=2.0)
    est = costs.estimate(term, [pos], history)
    assert est.money == 7.00 and not est.incomplete  # 2 lots x the symbol's exit charge
    # a terminal error on a new position: its symbol's charge meanwhile, read again next time
    gbp = _Rec(identifier=12, ticket=12, symbol="GBPUSD.c", volume=1.0)
    term.deals.append(_rec(4, 12, 0, 1.0, -3.0, symbol="GBPUSD.c"))
    term.fail = True
    est = costs.estimate(term, [pos, gbp], history)
    assert est.money == 7.00 and est.unknown == (12,)
    term.fail = False
    est = costs.estimate(term, [pos, gbp], history)
    assert est.money == 10.00 and not est.incomplete
    reads = term.reads
    costs.estimate(term, [pos, gbp], history)
    assert term.reads == reads  # known and unchanged: no read
    # a later EURUSD.c exit charged nothing: the broker's scheme is now free on exit
    history[5] = Deal.from_mt5(_rec(5, 13, 1, 1.0, 0.0, t=10, type_=1))
    assert costs.estimate(term, [pos, gbp], history).money == 3.00
    # what the pre-trade check uses (no terminal call)
    assert costs.cached([gbp]).money == 3.00 and term.reads == reads
