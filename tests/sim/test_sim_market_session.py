"""A broker symbol's market opened and closed by the operator (admin ``set_session``)."""
from __future__ import annotations

import pytest

from sim import Simulator


def _buy(t, symbol="EURUSD.c", sl=0.0):
    tick = t.symbol_info_tick(symbol)
    return t.order_send({"action": t.TRADE_ACTION_DEAL, "symbol": symbol, "volume": 0.1, "type": t.ORDER_TYPE_BUY,
                         "price": tick.ask, "sl": sl, "type_filling": t.ORDER_FILLING_IOC})


@pytest.fixture
def world():
    sim = Simulator.demo(seed=1)
    t = sim.terminal()
    assert t.initialize(login=2001)
    return sim, t


def test_closed_market_refuses_with_10018_and_keeps_its_quote(world):
    sim, t = world
    sim.set_session("EURUSD.c", "SimProp-Server", False)
    before = t.symbol_info_tick("EURUSD.c")
    r = _buy(t)
    assert (r.retcode, r.comment, r.order) == (10018, "Market closed", 0)
    sim.move_price("EURUSD", 100)  # the underlying moves: the closed feed does not tick
    assert t.symbol_info_tick("EURUSD.c").bid == before.bid
    assert _buy(t, "GBPUSD.c").retcode == 10009  # only that symbol is closed
    assert not next(s for b in sim.world_summary()["brokers"] for s in b["symbols"] if s["name"] == "EURUSD.c")["market_open"]


def test_reopened_market_quotes_the_current_price_and_trades(world):
    sim, t = world
    bid = t.symbol_info_tick("EURUSD.c").bid
    sim.set_session("EURUSD.c", "SimProp-Server", False)
    sim.move_price("EURUSD", 100)
    sim.set_session("EURUSD.c", "SimProp-Server", True)
    assert t.symbol_info_tick("EURUSD.c").bid == pytest.approx(bid + 0.001, abs=1e-9)
    assert _buy(t).retcode == 10009
    sim.set_session("EURUSD.c", "SimProp-Server", None)  # back to the world's 24/7 sessions
    assert _buy(t).retcode == 10009


def test_closing_and_modifying_in_a_closed_market_are_refused_too(world):
    sim, t = world
    opened = _buy(t)
    sim.set_session("EURUSD.c", "SimProp-Server", False)
    tick = t.symbol_info_tick("EURUSD.c")
    close = t.order_send({"action": t.TRADE_ACTION_DEAL, "symbol": "EURUSD.c", "volume": 0.1, "type": t.ORDER_TYPE_SELL,
                          "position": opened.order, "price": tick.bid, "type_filling": t.ORDER_FILLING_IOC})
    assert close.retcode == 10018
    sltp = t.order_send({"action": t.TRADE_ACTION_SLTP, "symbol": "EURUSD.c", "position": opened.order, "sl": tick.bid - 0.01, "tp": 0.0})
    assert sltp.retcode == 10018


def test_bad_arguments_are_refused(world):
    sim, _ = world
    with pytest.raises(ValueError):
        sim.set_session("NOPE", "SimProp-Server", False)
    with pytest.raises(ValueError):
        sim.set_session("EURUSD.c", "SimProp-Server", "closed")
