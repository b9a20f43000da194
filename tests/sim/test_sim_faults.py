"""Every fault mode: injected retcodes, latency, lost replies, disconnects, algo trading off."""
import threading

import pytest

from sim import Simulator

SP = "SimProp-Server"
BUY = {"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 0, "type_filling": 1}


@pytest.fixture
def env():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001)
    return sim, mt5


def test_retcode_fault_counts_down_without_trading(env):
    sim, mt5 = env
    sim.inject_fault(2001, "retcode", code=10004, count=2)
    for _ in range(2):
        r = mt5.order_send(BUY)
        assert r.retcode == 10004 and r.comment == "Requote" and r.deal == r.order == 0
        assert r.bid > 0 and r.ask > r.bid
    assert mt5.positions_get() == ()
    assert mt5.order_send(BUY).retcode == 10009
    other = sim.terminal()
    other.initialize(login=2002)
    sim.inject_fault(2001, "retcode", code=10006)
    assert other.order_send(BUY).retcode == 10009  # per login
    assert mt5.order_send(BUY).retcode == 10006


def test_reply_lost_executes_but_returns_none(env):
    sim, mt5 = env
    sim.inject_fault(2001, "reply_lost", count=1)
    assert mt5.order_send({**BUY, "comment": "tag-1"}) is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    (p,) = mt5.positions_get()
    assert p.comment == "tag-1"  # the order did execute: reconcile by tag before resending
    assert mt5.order_send(BUY).retcode == 10009


def test_disconnect_and_reconnect(env):
    sim, mt5 = env
    mt5.order_send(BUY)
    sim.inject_fault(2001, "disconnect")
    checks = [
        (mt5.account_info(), None), (mt5.positions_get(), None), (mt5.orders_get(), None),
        (mt5.symbol_info("EURUSD.c"), None), (mt5.symbol_info_tick("EURUSD.c"), None),
        (mt5.order_send(BUY), None), (mt5.symbol_select("EURUSD.c", True), False),
        (mt5.symbols_total(), 0), (mt5.positions_total(), None), (mt5.terminal_info(), None),
        (mt5.history_deals_get(0, 2**40), None), (mt5.copy_rates_from_pos("EURUSD.c", 1, 0, 5), None),
    ]
    for got, expected in checks:
        assert got is expected or got == expected
    assert mt5.last_error() == (-10004, "No IPC connection")
    fresh = sim.terminal()
    assert fresh.initialize(login=2001) is False and fresh.last_error()[0] == -10004
    sim.inject_fault(2001, "reconnect")
    assert len(mt5.positions_get()) == 1 and mt5.last_error() == (1, "Success")


def test_algo_off_blocks_trading_only(env):
    sim, mt5 = env
    sim.inject_fault(2001, "algo_off")
    assert mt5.terminal_info().trade_allowed is False
    r = mt5.order_send(BUY)
    assert r.retcode == 10027 and r.comment == "AutoTrading disabled by client"
    assert mt5.order_check(BUY).retcode == 10027
    assert mt5.symbol_info_tick("EURUSD.c") is not None and mt5.positions_get() == ()
    sim.inject_fault(2001, "algo_on")
    assert mt5.terminal_info().trade_allowed is True and mt5.order_send(BUY).retcode == 10009


def test_latency_sleeps_outside_the_lock(env, monkeypatch):
    sim, mt5 = env
    sim.inject_fault(2001, "latency", ms=150)
    other = sim.terminal()
    other.initialize(login=2002)
    sleeping, release, slept = threading.Event(), threading.Event(), []

    def fake_sleep(seconds):  # blocks until released, so the test needs no timing
        slept.append(seconds)
        sleeping.set()
        assert release.wait(5)

    monkeypatch.setattr("sim.terminal.time.sleep", fake_sleep)
    th = threading.Thread(target=mt5.account_info)
    th.start()
    assert sleeping.wait(5)
    # login 2001's call is inside its latency; login 2002 is still served (lock not held)
    assert other.account_info() is not None
    assert slept == [0.15]
    release.set()
    th.join(5)
    assert not th.is_alive()
    sim.clear_faults(2001)
    mt5.positions_get()
    assert slept == [0.15]


def test_clear_faults_and_bad_input(env):
    sim, mt5 = env
    sim.inject_fault(2001, "disconnect")
    sim.inject_fault(2001, "retcode", code=10013, count=5)
    sim.clear_faults(2001)
    assert mt5.order_send(BUY).retcode == 10009
    with pytest.raises(ValueError):
        sim.inject_fault(2001, "explode")
    with pytest.raises(ValueError):
        sim.inject_fault(9999, "disconnect")
    with pytest.raises(ValueError):
        sim.inject_fault(2001, "retcode")
    with pytest.raises(TypeError):
        sim.inject_fault(2001, "disconnect", ms=3)


def test_price_after_moves_the_market_right_after_the_named_read_once():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    sim.set_price("EURUSD", 1.10000, broker="SimFX-Live")
    r = mt5.order_send({"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 4, "price": 1.101, "type_filling": 1})
    sim.inject_fault(1001, "price_after", call="orders_get", symbol="EURUSD", bid=1.102, broker="SimFX-Live")
    mt5.positions_get()  # not the named call: nothing moves
    assert mt5.symbol_info_tick("EURUSD").bid == 1.1
    assert [o.ticket for o in mt5.orders_get()] == [r.order]  # the answer was read before the move
    assert mt5.symbol_info_tick("EURUSD").bid == 1.102 and mt5.orders_get() == ()
    assert mt5.positions_get()[0].identifier == r.order
    sim.set_price("EURUSD", 1.10000, broker="SimFX-Live")
    mt5.orders_get()
    assert mt5.symbol_info_tick("EURUSD").bid == 1.1  # one-shot
    with pytest.raises(ValueError):
        sim.inject_fault(1001, "price_after", call="order_send", symbol="EURUSD", bid=1.1)
    with pytest.raises(ValueError):
        sim.inject_fault(1001, "price_after", call="orders_get", symbol="EURUSD", bid=0)
