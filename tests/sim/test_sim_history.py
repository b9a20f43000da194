"""Trade history queries: date ranges, ticket=/position=/group= filters, entries and links."""
from datetime import datetime, timedelta, timezone

import pytest

from sim import Simulator

SP = "SimProp-Server"


@pytest.fixture
def traded():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    mt5.initialize(login=2001)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)
    a = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 0, "type_filling": 1,
                        "comment": "A"})
    sim.advance(600)
    b = mt5.order_send({"action": 1, "symbol": "GBPUSD.c", "volume": 0.2, "type": 1, "type_filling": 1,
                        "comment": "B"})
    sim.advance(600)
    c = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 1, "type_filling": 1,
                        "position": a.order})
    return sim, mt5, a, b, c


def test_balance_deal_and_full_range(traded):
    sim, mt5, a, b, c = traded
    deals = mt5.history_deals_get(datetime(2020, 1, 1), datetime(2030, 1, 1))
    assert deals[0].type == mt5.DEAL_TYPE_BALANCE and deals[0].profit == 100000.0
    assert [d.entry for d in deals[1:]] == [0, 0, 1]
    assert mt5.history_deals_total(datetime(2020, 1, 1), datetime(2030, 1, 1)) == 4
    assert mt5.history_orders_total(0, 2**40) == 3


def test_date_range_in_server_time(traded):
    sim, mt5, a, b, c = traded
    (oa,) = mt5.history_orders_get(ticket=a.order)
    # order times are server time (UTC+2 in January): 10:00 UTC -> 12:00 "as if UTC"
    assert oa.time_setup == int(datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc).timestamp())
    naive = datetime(2025, 1, 6, 12, 5)  # naive = read as server-time-as-UTC
    got = mt5.history_deals_get(naive, naive + timedelta(hours=2))
    assert [d.order for d in got] == [b.order, c.order]
    assert mt5.history_deals_get(naive, naive + timedelta(minutes=1)) == ()
    secs = int(naive.replace(tzinfo=timezone.utc).timestamp())
    assert len(mt5.history_deals_get(secs, secs + 900)) == 2  # int seconds work too


def test_group_filter(traded):
    sim, mt5, a, b, c = traded
    got = mt5.history_deals_get(0, 2**40, "*GBP*")
    assert [d.symbol for d in got] == ["GBPUSD.c"]
    got = mt5.history_deals_get(0, 2**40, group="*,!*GBP*")
    assert [d.symbol for d in got] == ["", "EURUSD.c", "EURUSD.c"]  # "*" also matches the balance deal


def test_ticket_and_position_filters(traded):
    sim, mt5, a, b, c = traded
    # ticket= on deals matches DEAL_ORDER (documented behaviour)
    (d,) = mt5.history_deals_get(ticket=c.order)
    assert d.ticket == c.deal and d.entry == mt5.DEAL_ENTRY_OUT and d.position_id == a.order
    assert mt5.history_deals_get(ticket=c.deal) == ()  # deal ticket is not the key
    pos = mt5.history_deals_get(position=a.order)
    assert [(x.entry, x.order) for x in pos] == [(0, a.order), (1, c.order)]
    assert [o.ticket for o in mt5.history_orders_get(position=a.order)] == [a.order, c.order]
    (o,) = mt5.history_orders_get(ticket=c.order)
    assert o.position_id == a.order and o.type == mt5.ORDER_TYPE_SELL and o.state == mt5.ORDER_STATE_FILLED
    assert o.reason == mt5.ORDER_REASON_EXPERT and o.time_done_msc == o.time_setup_msc
    assert mt5.history_deals_get(position=424242) == ()


def test_history_requires_dates_or_key(traded):
    sim, mt5, *_ = traded
    assert mt5.history_deals_get() is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.history_orders_get("x", "y") is None


def test_positions_and_orders_filters(traded):
    sim, mt5, a, b, c = traded
    assert [p.ticket for p in mt5.positions_get()] == [b.order]
    assert mt5.positions_get(symbol="EURUSD.c") == ()
    assert mt5.positions_get(ticket=999) == ()
    assert mt5.positions_get(symbol="GBPUSD.c", ticket=999)[0].ticket == b.order  # ticket ignored
    assert [p.ticket for p in mt5.positions_get(group="*,!*EUR*")] == [b.order]
    assert mt5.positions_get(group="*EUR*") == ()
    assert mt5.positions_total() == 1 and mt5.orders_total() == 0 and mt5.orders_get() == ()
