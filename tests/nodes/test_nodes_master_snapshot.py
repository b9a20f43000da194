"""Fault 8 (issue 9): a pending order that fills between the master's two terminal reads.

Invariant 1 must hold within one poll: the published state either holds the order or the
position it opened (or the terminal's history says the order is really gone)."""
from __future__ import annotations

from types import SimpleNamespace as NS

import structlog

from nodes.master import VANISHED_HOLD_POLLS, MasterLoop
from sim import Simulator

FX = "SimFX-Live"


class FakeRuntime:
    def __init__(self):
        self.name = "M"
        self.log = structlog.get_logger("test")
        self.last_error = None
        self.publisher = self
        self.published = []
        self.events = []

    def publish(self, msg):
        self.published.append(msg)

    def event(self, kind, **data):
        self.events.append((kind, data))

    def set_error(self, error):
        self.last_error = error


def _loop(mt5):
    return MasterLoop(FakeRuntime(), mt5, poll_ms=20, heartbeat_ms=10**9)


def test_a_buy_stop_filling_between_the_two_reads_is_published_as_its_position():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    sim.set_price("EURUSD", 1.10000, broker=FX)
    r = mt5.order_send({"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.5,
                        "type": mt5.ORDER_TYPE_BUY_STOP, "price": 1.10100, "type_filling": 1})
    assert r.retcode == 10009
    loop = _loop(mt5)
    assert loop.poll_once() and set(loop.orders) == {r.order} and loop.positions == {}
    # the price triggers the stop right after the FIRST of the two reads of the next poll,
    # whichever it is: with positions read first, the state would hold neither
    sim.inject_fault(1001, "price_after", call="positions_get,orders_get", symbol="EURUSD", bid=1.10200, broker=FX)
    assert loop.poll_once()
    assert mt5.orders_get() == () and mt5.positions_get()[0].identifier == r.order  # it did fill
    assert r.order in loop.positions, "the published state lost both the order and its position"
    assert loop.positions[r.order].volume == 0.5
    # and the delta the followers received never removed the order without the position
    last = loop.rt.published[-1]
    assert r.order in {p.identifier for p in last.upsert_positions}


class HalfwayTerminal:
    """A terminal whose order list already dropped a filled order while its position list
    does not show the position yet (a real terminal applies a fill as several events)."""

    def __init__(self):
        self.order = NS(ticket=77, symbol="EURUSD", type=4, volume_current=0.5, price_open=1.101, price_stoplimit=0.0,
                        sl=0.0, tp=0.0, time_setup_msc=0, magic=0, comment="")
        self.position = NS(ticket=77, identifier=77, symbol="EURUSD", type=0, volume=0.5, price_open=1.101, sl=0.0, tp=0.0,
                           time_msc=0, time_update_msc=0, magic=0, comment="", price_current=1.101, profit=0.0)
        self.orders, self.positions, self.history = [self.order], [], []
        self.position_by_ticket = {}
        self.calls = []

    def orders_get(self):
        return tuple(self.orders)

    def positions_get(self, ticket=None):
        if ticket is not None:
            self.calls.append(("positions_get", ticket))
            return tuple(x for x in (self.position_by_ticket.get(ticket),) if x is not None)
        return tuple(self.positions)

    def history_orders_get(self, ticket=None):
        self.calls.append(("history_orders_get", ticket))
        return tuple(self.history)

    def symbol_info(self, symbol):
        return NS(trade_contract_size=100000.0)

    def last_error(self):
        return (1, "Success")

    def account_info(self):
        return None

    def symbols_get(self):
        return ()


def test_a_vanished_order_stays_published_until_the_history_accounts_for_it():
    mt5 = HalfwayTerminal()
    loop = _loop(mt5)
    assert loop.poll_once() and set(loop.orders) == {77}
    mt5.orders = []  # gone from the list, no position yet, nothing in the history yet
    assert loop.poll_once()
    assert set(loop.orders) == {77} and loop.positions == {}  # still published: not a close
    assert ("history_orders_get", 77) in mt5.calls
    # the history now says FILLED into position 77, which the position list still misses
    mt5.history = [NS(ticket=77, state=4, position_id=77)]
    mt5.position_by_ticket[77] = mt5.position
    assert loop.poll_once()
    assert set(loop.positions) == {77} and loop.orders == {}


def test_a_cancelled_order_is_published_as_gone_at_once():
    mt5 = HalfwayTerminal()
    loop = _loop(mt5)
    loop.poll_once()
    mt5.orders = []
    mt5.history = [NS(ticket=77, state=2, position_id=0)]  # ORDER_STATE_CANCELED
    assert loop.poll_once()
    assert loop.orders == {} and loop.positions == {}
    assert loop.rt.published[-1].remove_orders == (77,)


def test_an_order_the_history_never_explains_is_released_after_a_bounded_wait():
    mt5 = HalfwayTerminal()
    loop = _loop(mt5)
    loop.poll_once()
    mt5.orders = []
    for _ in range(VANISHED_HOLD_POLLS):
        loop.poll_once()
        assert set(loop.orders) == {77}
    loop.poll_once()
    assert loop.orders == {}
