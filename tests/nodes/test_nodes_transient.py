"""Transient rejects are not final (invariant 8, fault 5) and invalid stops never end a copy
(fault 10): the slave loop driven in-process against the simulator."""
from __future__ import annotations

import pytest

from copier.accounts import validate_account
from db import open_store
from messaging.schema import Snapshot
from nodes.runtime import utc_ms
from nodes.slave import SlaveLoop
from sim import Simulator
from terminals.convert import ContractSizes, orders_by_ticket, positions_by_identifier
from tests.nodes.master_feed import feed
from tests.nodes.test_nodes_slave_inprocess import FakeRuntime

PROP = "SimProp-Server"


@pytest.fixture
def world(tmp_path):
    sim = Simulator.demo(seed=3)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1001}})
    store.upsert_account({"name": "S", "type": "SLAVE", "suffix": ".c", "slippage_tolerance": 300,
                          "symbol_map": {"XAUUSD": "GOLD"}, "terminal": {"kind": "sim", "login": 2001}})
    store.set_flag("follow:S:M", {"since_ms": 0})
    master = sim.terminal()
    master.initialize(login=1001)
    slave = sim.terminal()
    slave.initialize(login=2001)
    yield sim, store, master, slave
    store.close()


class Counting:
    def __init__(self, mt5):
        self._mt5 = mt5
        self.sent = []

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def order_send(self, request):
        self.sent.append(request)
        return self._mt5.order_send(request)


def _loop(store, mt5):
    rt = FakeRuntime("S", store)
    loop = SlaveLoop(rt, mt5, validate_account(store.get_account("S")), stale_after_ms=60_000, max_attempts=3)
    loop.executor.sleep = lambda s: None  # in-action retries without waiting
    loop.start()
    return loop


def _snapshot(master, seq):
    sizes = ContractSizes(master)
    return Snapshot(master="M", epoch="e1", seq=seq, ts_ms=utc_ms(),
                    positions=tuple(positions_by_identifier(master.positions_get(), contract_size=sizes).values()),
                    orders=tuple(orders_by_ticket(master.orders_get(), contract_size=sizes).values()))


def _buy(mt5, symbol="EURUSD", volume=0.1, sl=0.0):
    tick = mt5.symbol_info_tick(symbol)
    r = mt5.order_send({"action": 1, "symbol": symbol, "volume": volume, "type": 0, "price": tick.ask, "sl": sl,
                        "deviation": 10, "type_filling": 1})
    assert r.retcode == 10009, r
    return r


def _link(store):
    [link] = store.list_trades(slave_name="S")
    return link


def _pass(loop, master, seq, *, expire_backoff=True):
    if expire_backoff:
        loop.actions.backoff.clear()  # as if the backoff delay had passed
    feed(loop, _snapshot(master, seq))
    loop.reconcile()


# ----------------------------------------------------------------------------- fault 5
def test_fault5_market_closed_is_not_final_and_the_copy_is_made_when_it_opens(world):
    sim, store, master, slave = world
    sim.set_session("EURUSD.c", PROP, False)
    counting = Counting(slave)
    loop = _loop(store, counting)
    _buy(master)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["status"] == "PENDING" and link["retcode"] == 10018 and link["attempts"] == 0
    assert link["retry_reason"] == "10018 MARKET_CLOSED (market is closed; transient); planned again while the master holds it"
    assert [k for k, _ in loop.rt.events if k == "copy_deferred"] == ["copy_deferred"]
    sends = len(counting.sent)
    _pass(loop, master, 2, expire_backoff=False)
    assert len(counting.sent) == sends  # backing off: no order_send on every pass
    for seq in range(3, 8):  # far more than max_attempts (3) transient rejects: still not FAILED
        _pass(loop, master, seq)
    assert _link(store)["status"] == "PENDING" and _link(store)["deferrals"] == 6
    sim.set_session("EURUSD.c", PROP, True)  # opens at the same price
    _pass(loop, master, 9)
    link = _link(store)
    assert link["status"] == "OPEN" and link["retry_reason"] == ""
    assert [round(p.volume, 2) for p in slave.positions_get()] == [0.1]


def test_fault5_market_opens_beyond_the_tolerance_the_copy_is_skipped_with_the_slippage_reason(world):
    sim, store, master, slave = world
    sim.set_session("EURUSD.c", PROP, False)
    loop = _loop(store, slave)
    _buy(master)
    _pass(loop, master, 1)
    assert _link(store)["status"] == "PENDING"
    sim.move_price("EURUSD", 500)  # the master's market moves 500 points; the follower's is frozen
    _pass(loop, master, 2)
    assert _link(store)["status"] == "PENDING"  # still closed, and at the old price: within tolerance
    sim.set_session("EURUSD.c", PROP, True)
    _pass(loop, master, 3)
    link = _link(store)
    # the follower's ask sits 2 points under the master's entry; +500 points -> 498 > 300
    assert link["status"] == "SKIPPED" and link["skip_reason"].startswith("slippage 498.0 points > tolerance 300")
    assert slave.positions_get() == ()


def test_master_closes_while_the_market_is_closed_the_link_is_closed_not_failed(world):
    sim, store, master, slave = world
    sim.set_session("EURUSD.c", PROP, False)
    loop = _loop(store, slave)
    opened = _buy(master)
    _pass(loop, master, 1)
    tick = master.symbol_info_tick("EURUSD")
    assert master.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "position": opened.order,
                              "price": tick.bid, "type_filling": 1}).retcode == 10009
    _pass(loop, master, 2)
    link = _link(store)
    assert link["status"] == "CLOSED" and "master closed" in link["close_reason"]


@pytest.mark.parametrize("fault,params,code", [
    ("retcode", {"code": 10021, "count": 3}, 10021),  # no quotes on every in-action retry
    ("retcode", {"code": 10031, "count": 1}, 10031),  # no connection: looked for, not found
    ("algo_off", {}, 10027),  # AutoTrading disabled by client
    ("retcode", {"code": 10026, "count": 1}, 10026),  # AutoTrading disabled by server
    ("retcode", {"code": 10017, "count": 1}, 10017),  # trade disabled
    ("retcode", {"code": 10044, "count": 1}, 10044),  # close only
    ("retcode", {"code": 10024, "count": 3}, 10024),  # too many requests
])
def test_other_transient_rejects_keep_the_copy_pending_then_copy_it(world, fault, params, code):
    sim, store, master, slave = world
    sim.inject_fault(2001, fault, **params)
    loop = _loop(store, slave)
    _buy(master)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["status"] == "PENDING" and link["retcode"] == code and link["attempts"] == 0, link
    sim.clear_faults(2001)
    _pass(loop, master, 2)
    assert _link(store)["status"] == "OPEN" and len(slave.positions_get()) == 1


@pytest.mark.parametrize("code", [10019, 10006, 10013])
def test_permanent_rejects_still_fail_with_the_class_in_the_reason(world, code):
    sim, store, master, slave = world
    sim.inject_fault(2001, "retcode", code=code, count=1)
    loop = _loop(store, slave)
    _buy(master)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["status"] == "FAILED" and link["retcode"] == code and "(permanent)" in link["skip_reason"]


def test_a_transient_reject_of_a_pending_order_copy_is_placed_later(world):
    sim, store, master, slave = world
    tick = master.symbol_info_tick("EURUSD")
    placed = master.order_send({"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "price": round(tick.ask - 0.005, 5),
                                "type_filling": 1, "type_time": 0})
    assert placed.retcode in (10008, 10009)
    sim.set_session("EURUSD.c", PROP, False)
    loop = _loop(store, slave)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["kind"] == "order" and link["status"] == "PENDING" and link["retcode"] == 10018
    assert [k for k, _ in loop.rt.events if k == "pending_deferred"] == ["pending_deferred"]
    for seq in range(2, 6):
        _pass(loop, master, seq)
    assert _link(store)["status"] == "PENDING"
    sim.set_session("EURUSD.c", PROP, True)
    _pass(loop, master, 6)
    link = _link(store)
    assert link["status"] == "OPEN" and [o.ticket for o in slave.orders_get()] == [link["slave_ticket"]]


def test_a_transient_reject_of_a_close_is_retried_later(world):
    sim, store, master, slave = world
    loop = _loop(store, slave)
    opened = _buy(master)
    _pass(loop, master, 1)
    assert len(slave.positions_get()) == 1
    sim.set_session("EURUSD.c", PROP, False)
    tick = master.symbol_info_tick("EURUSD")
    master.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "position": opened.order, "price": tick.bid, "type_filling": 1})
    _pass(loop, master, 2)
    assert len(slave.positions_get()) == 1 and _link(store)["status"] == "OPEN"
    sim.set_session("EURUSD.c", PROP, True)
    _pass(loop, master, 3)
    _pass(loop, master, 4)
    assert slave.positions_get() == () and _link(store)["status"] == "CLOSED"


# ----------------------------------------------------------------------------- fault 10
def _gold_buy_with_sl_20_points_inside(sim, master, slave):
    """Master XAUUSD BUY at bid 2650.00 with SL 2649.83: on the follower's GOLD (bid 2649.850,
    0.15 under XAUUSD, 3 digits, stops level 50, freeze level 10) that level is 20 points away."""
    sim.set_price("XAUUSD", 2650.00)
    assert slave.symbol_info_tick("GOLD").bid == 2649.850
    return _buy(master, "XAUUSD", 0.1, sl=2649.83)


def test_fault10_sl_inside_the_stops_level_is_placed_at_the_nearest_valid_level(world):
    sim, store, master, slave = world
    assert slave.symbol_info("GOLD").trade_stops_level == 50 and slave.symbol_info("GOLD").trade_freeze_level == 10
    loop = _loop(store, slave)
    _gold_buy_with_sl_20_points_inside(sim, master, slave)
    _pass(loop, master, 1)
    (pos,) = slave.positions_get()
    assert pos.sl == 2649.800  # 50 points under the bid, not 20
    assert _link(store)["status"] == "OPEN"
    (note,) = [d for k, d in loop.rt.events if k == "stops_adjusted"]
    assert note["adjustment"] == "SL 2649.830 -> 2649.800 (stops level 50, freeze level 10 points; bid 2649.850)"


def test_fault10_invalid_stops_reject_opens_without_stops_then_sets_them(world):
    sim, store, master, slave = world
    sim.inject_fault(2001, "retcode", code=10016, count=1)  # the server refuses the stops once
    loop = _loop(store, slave)
    _gold_buy_with_sl_20_points_inside(sim, master, slave)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["status"] == "OPEN"  # was FAILED for good
    (pos,) = slave.positions_get()
    (note,) = [d for k, d in loop.rt.events if k == "stops_adjusted"]
    assert note["dropped"] is True and "10016 INVALID_STOPS" in note["adjustment"]
    _pass(loop, master, 2)  # next pass: the nearest valid SL is set
    (pos,) = slave.positions_get()
    assert pos.sl == 2649.800


def test_a_close_only_symbol_defers_the_copy_and_copies_when_trading_returns(world):
    """Brokers switch a symbol to close-only around rollover or expiry and back: transient (10044)."""
    import dataclasses

    sim, store, master, slave = world
    broker = sim.brokers[PROP]
    full = broker.d.symbols["EURUSD.c"]
    close_only = dataclasses.replace(full, trade_mode=3)  # SYMBOL_TRADE_MODE_CLOSEONLY
    broker.d.symbols["EURUSD.c"] = sim.market.feeds[(PROP, "EURUSD.c")].sym = close_only
    loop = _loop(store, slave)
    _buy(master)
    _pass(loop, master, 1)
    link = _link(store)
    assert link["status"] == "PENDING" and link["retcode"] == 10044, link
    for seq in range(2, 6):
        _pass(loop, master, seq)
    assert _link(store)["status"] == "PENDING"
    broker.d.symbols["EURUSD.c"] = sim.market.feeds[(PROP, "EURUSD.c")].sym = full
    loop.specs.clear()  # the slave re-reads the symbol's spec (its cache lives 60 s)
    _pass(loop, master, 6)
    assert _link(store)["status"] == "OPEN"
    assert [round(p.volume, 2) for p in slave.positions_get()] == [0.1]
