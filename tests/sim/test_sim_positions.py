"""Hedging vs netting lifecycles, SL/TP and pending triggers, stop-out, expiry, swaps."""
import pytest

from sim import Simulator

SP = "SimProp-Server"


def setup(login):
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=login)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)
    return sim, mt5


def deal(mt5, side, volume, **extra):
    return mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": volume, "type": side,
                           "type_filling": 1, **extra})


def test_netting_add_reduce_reverse():
    sim, mt5 = setup(2002)
    r1 = deal(mt5, 0, 1.0)  # buy 1.0 @ 1.10003
    sim.set_price("EURUSD.c", 1.10100, broker=SP)
    r2 = deal(mt5, 0, 0.5)  # buy 0.5 @ 1.10103 -> add
    (p,) = mt5.positions_get()
    assert p.ticket == p.identifier == r1.order and r2.order != p.ticket
    assert p.volume == 1.5 and p.price_open == pytest.approx((1.10003 * 1.0 + 1.10103 * 0.5) / 1.5)
    r3 = deal(mt5, 1, 0.5)  # reduce
    (p,) = mt5.positions_get()
    assert p.ticket == r1.order and p.volume == 1.0
    r4 = deal(mt5, 1, 3.0)  # reverse: closes 1.0, opens SELL 2.0
    (p,) = mt5.positions_get()
    assert p.type == mt5.POSITION_TYPE_SELL and p.volume == 2.0
    assert p.identifier == r1.order and p.ticket == r4.order != r1.order
    assert p.price_open == 1.101
    deals = mt5.history_deals_get(position=r1.order)
    assert [d.entry for d in deals] == [mt5.DEAL_ENTRY_IN, mt5.DEAL_ENTRY_IN, mt5.DEAL_ENTRY_OUT,
                                        mt5.DEAL_ENTRY_INOUT]
    assert [d.order for d in deals] == [r1.order, r2.order, r3.order, r4.order]
    assert deals[-1].volume == 3.0 and deals[-1].type == mt5.DEAL_TYPE_SELL
    # deal ticket from result resolves the position through position_id
    assert next(d for d in deals if d.ticket == r2.deal).position_id == r1.order
    assert [o.position_id for o in mt5.history_orders_get(position=r1.order)] == [r1.order] * 4
    r5 = deal(mt5, 0, 2.0, position=p.ticket)  # close
    assert r5.retcode == 10009 and mt5.positions_get() == ()


def test_netting_one_position_per_symbol_and_position_key_ignored():
    sim, mt5 = setup(2002)
    deal(mt5, 0, 0.3)
    deal(mt5, 0, 0.2, position=123456)
    assert len(mt5.positions_get()) == 1 and mt5.positions_get()[0].volume == 0.5


def test_hedging_positions_are_independent():
    sim, mt5 = setup(2001)
    a, b = deal(mt5, 0, 1.0), deal(mt5, 0, 0.5)
    assert {p.ticket for p in mt5.positions_get()} == {a.order, b.order}
    deal(mt5, 1, 0.5, position=a.order)
    vols = {p.ticket: p.volume for p in mt5.positions_get()}
    assert vols == {a.order: 0.5, b.order: 0.5}
    out = [d for d in mt5.history_deals_get(position=a.order) if d.entry == mt5.DEAL_ENTRY_OUT]
    assert len(out) == 1 and out[0].position_id == a.order


def test_sl_and_tp_fire_with_reasons():
    sim, mt5 = setup(2001)
    a = deal(mt5, 0, 1.0, sl=1.09900, tp=1.10200)
    b = deal(mt5, 1, 1.0, sl=1.10300, tp=1.09950)
    sim.set_price("EURUSD.c", 1.10200, broker=SP)  # bid hits A's TP; ask 1.10203 < B's SL
    assert [p.ticket for p in mt5.positions_get()] == [b.order]
    out = mt5.history_deals_get(position=a.order)[-1]
    assert out.reason == mt5.DEAL_REASON_TP and out.entry == mt5.DEAL_ENTRY_OUT and out.price == 1.102
    assert out.comment == "[tp 1.10200]" and out.profit == round((1.102 - 1.10003) * 100000, 2)
    sim.set_price("EURUSD.c", 1.10310, broker=SP)  # ask 1.10313 >= B's SL 1.103
    assert mt5.positions_get() == ()
    out = mt5.history_deals_get(position=b.order)[-1]
    assert out.reason == mt5.DEAL_REASON_SL and out.type == mt5.DEAL_TYPE_BUY and out.price == 1.10313
    (o,) = [o for o in mt5.history_orders_get(position=b.order) if o.reason == mt5.ORDER_REASON_SL]
    assert o.state == mt5.ORDER_STATE_FILLED


def test_sl_fires_during_random_walk_advance():
    sim, mt5 = setup(2001)
    a = deal(mt5, 0, 0.1, sl=1.09990, tp=1.10013)
    for _ in range(20000):
        sim.advance(1.0)
        if not mt5.positions_get():
            break
    assert mt5.positions_get() == ()
    assert mt5.history_deals_get(position=a.order)[-1].reason in (4, 5)


def test_pending_buy_limit_fills_into_position():
    sim, mt5 = setup(2001)
    r = mt5.order_send({"action": 5, "symbol": "EURUSD.c", "volume": 0.5, "type": 2, "price": 1.09900,
                        "type_filling": 2, "sl": 1.09, "tp": 1.11, "magic": 42, "comment": "lim"})
    sim.set_price("EURUSD.c", 1.09950, broker=SP)
    assert mt5.positions_get() == ()
    sim.set_price("EURUSD.c", 1.09896, broker=SP)  # ask 1.09899 <= 1.099
    (p,) = mt5.positions_get()
    assert p.ticket == p.identifier == r.order and p.price_open == 1.09899
    assert (p.sl, p.tp, p.magic, p.comment, p.reason) == (1.09, 1.11, 42, "lim", mt5.POSITION_REASON_EXPERT)
    assert mt5.orders_get() == ()
    (o,) = mt5.history_orders_get(ticket=r.order)
    assert o.state == mt5.ORDER_STATE_FILLED and o.position_id == r.order and o.volume_current == 0.0
    (d,) = mt5.history_deals_get(ticket=r.order)
    assert d.entry == mt5.DEAL_ENTRY_IN and d.reason == mt5.DEAL_REASON_EXPERT


def test_stop_and_stop_limit_triggers():
    sim, mt5 = setup(2001)
    stop = mt5.order_send({"action": 5, "symbol": "EURUSD.c", "volume": 0.1, "type": 5, "price": 1.0990,
                           "type_filling": 2})
    sl = mt5.order_send({"action": 5, "symbol": "EURUSD.c", "volume": 0.1, "type": 6, "price": 1.1010,
                         "stoplimit": 1.1005, "type_filling": 2})
    sim.set_price("EURUSD.c", 1.10100, broker=SP)  # ask 1.10103 >= 1.1010: stop-limit -> buy limit @1.1005
    (o,) = mt5.orders_get(ticket=sl.order)
    assert o.type == mt5.ORDER_TYPE_BUY_LIMIT and o.price_open == 1.1005
    sim.set_price("EURUSD.c", 1.10040, broker=SP)  # ask 1.10043 <= 1.1005: fills
    assert [p.ticket for p in mt5.positions_get()] == [sl.order]
    sim.set_price("EURUSD.c", 1.09890, broker=SP)  # bid <= 1.099: sell stop fills
    assert {p.ticket for p in mt5.positions_get()} == {sl.order, stop.order}


def test_pending_expiry():
    sim, mt5 = setup(2001)
    now = mt5.symbol_info_tick("EURUSD.c").time
    r = mt5.order_send({"action": 5, "symbol": "EURUSD.c", "volume": 0.1, "type": 2, "price": 1.09,
                        "type_filling": 2, "type_time": mt5.ORDER_TIME_SPECIFIED, "expiration": now + 30})
    o = mt5.orders_get()[0]
    assert o.time_expiration == now + 30 and o.type_time == 2
    sim.advance(20)
    assert mt5.orders_total() == 1
    sim.advance(15)
    assert mt5.orders_total() == 0
    assert mt5.history_orders_get(ticket=r.order)[0].state == mt5.ORDER_STATE_EXPIRED


def test_stop_out_closes_worst_positions():
    sim, mt5 = setup(2004)  # 10k balance, stop-out 50%
    big = deal(mt5, 0, 8.0)  # margin 8800.24, commission -24
    small = mt5.order_send({"action": 1, "symbol": "GBPUSD.c", "volume": 0.5, "type": 0, "type_filling": 1})
    assert big.retcode == small.retcode == 10009
    acc = mt5.account_info()
    assert acc.margin_level > 50
    sim.set_price("EURUSD.c", 1.09300, broker=SP)  # loss (1.09300-1.10003)*800000 = -5624 -> level ~46%
    acc = mt5.account_info()
    assert [p.ticket for p in mt5.positions_get()] == [small.order]
    so = mt5.history_deals_get(position=big.order)[-1]
    assert so.reason == mt5.DEAL_REASON_SO and so.comment.startswith("[so ")
    assert acc.margin_level >= 50 or acc.margin == 0


def test_swap_rollover_at_server_midnight():
    sim, mt5 = setup(2001)  # EURUSD.c swap_long -7 points, start Monday 12:00 server
    r = deal(mt5, 0, 1.0)
    sim.advance(11 * 3600 + 59 * 60)  # 23:59 server
    assert mt5.positions_get()[0].swap == 0.0
    sim.advance(120)  # crosses Monday midnight: -7 * 0.00001 * 100000 * 1.0 = -7.00
    assert mt5.positions_get()[0].swap == -7.0
    sim.advance(2 * 86400)  # Tue (x1), Wed (x3)
    assert mt5.positions_get()[0].swap == -35.0
    bal = mt5.account_info().balance
    deal(mt5, 1, 1.0, position=r.order)
    out = mt5.history_deals_get(position=r.order)[-1]
    assert out.swap == -35.0
    assert mt5.account_info().balance == round(bal + out.profit + out.swap + out.commission, 2)


def test_netting_sltp_by_symbol_after_reversal():
    sim, mt5 = setup(2002)
    first = deal(mt5, 0, 0.5)
    deal(mt5, 1, 1.0)  # reversal: ticket changes
    (p,) = mt5.positions_get()
    r = mt5.order_send({"action": 6, "symbol": "EURUSD.c", "position": first.order, "sl": 1.102, "tp": 1.095})
    assert r.retcode == 10009
    assert (mt5.positions_get()[0].sl, mt5.positions_get()[0].tp) == (1.102, 1.095) and p.ticket != first.order
