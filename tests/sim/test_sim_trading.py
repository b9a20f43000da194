"""Every order_send / order_check retcode path a copier meets, checked on the demo world
and on small hand-written worlds."""

import pytest

from sim import Simulator
from sim.world import parse_world

SP = "SimProp-Server"


def mini_world(symbol=None, account=None, sessions="24/7"):
    """One broker, one EURUSD-like symbol, one hedging account; overrides per test."""
    sym = {"underlying": "EURUSD", "digits": 5, "contract_size": 100000, "volume_min": 0.01,
           "volume_step": 0.01, "volume_max": 10, "filling_mode": 3, "spread": 10, "calc_mode": "forex",
           "currency_base": "EUR", "currency_profit": "USD", "sessions": sessions}
    sym.update(symbol or {})
    acc = {"login": 1, "broker": "B", "balance": 10000, "leverage": 100, "margin_mode": "hedging"}
    acc.update(account or {})
    return parse_world({
        "world": {"start": "2025-01-06T10:00:00Z", "history_hours": 0.1},
        "underlyings": {"EURUSD": {"price": 1.1, "volatility": 0.001}},
        "brokers": {"B": {"utc_offset": 2, "symbols": {"EURUSD": sym}}},
        "accounts": [acc],
    }, "mini")


def mini(symbol=None, account=None, **kw):
    sim = Simulator(mini_world(symbol, account, **kw))
    mt5 = sim.terminal()
    assert mt5.initialize(login=1)
    sim.set_price("EURUSD", 1.10000, broker="B")
    return sim, mt5


@pytest.fixture
def demo():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001, server=SP)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)
    return sim, mt5


def buy(mt5, symbol="EURUSD.c", volume=1.0, filling=1, **extra):
    req = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume, "type": mt5.ORDER_TYPE_BUY,
           "type_filling": filling, "magic": 7, "comment": "t"}
    req.update(extra)
    return mt5.order_send(req)


def test_market_buy_done_fields(demo):
    sim, mt5 = demo
    r = buy(mt5)
    assert r.retcode == mt5.TRADE_RETCODE_DONE == 10009
    assert r.comment == "Request executed"
    assert r.volume == 1.0 and r.price == 1.10003 and r.bid == 1.1 and r.ask == 1.10003
    assert r.deal > 0 and r.order > 0 and r.retcode_external == 0
    assert type(r.request).__name__ == "TradeRequest" and r.request.symbol == "EURUSD.c"
    assert r.request.sl == 0.0 and r.request.position == 0  # omitted keys echo as zero
    (p,) = mt5.positions_get()
    assert p.ticket == r.order == p.identifier and p.reason == mt5.POSITION_REASON_EXPERT
    assert p.magic == 7 and p.comment == "t" and p.price_open == 1.10003
    assert mt5.last_error() == (1, "Success")


def test_filling_from_bitmask(demo):
    sim, mt5 = demo
    assert buy(mt5, filling=mt5.ORDER_FILLING_FOK).retcode == 10030  # EURUSD.c is IOC-only
    r = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 0})  # omitted -> FOK
    assert r.retcode == mt5.TRADE_RETCODE_INVALID_FILL and r.comment == "Unsupported filling mode"
    assert buy(mt5, filling=mt5.ORDER_FILLING_RETURN).retcode == 10009  # market execution allows RETURN
    assert buy(mt5, filling=mt5.ORDER_FILLING_BOC).retcode == 10030
    # instant-execution GOLD: FOK only, RETURN refused
    tick = mt5.symbol_info_tick("GOLD")
    assert buy(mt5, "GOLD", 0.1, mt5.ORDER_FILLING_RETURN, price=tick.ask, deviation=10).retcode == 10030
    assert buy(mt5, "GOLD", 0.1, mt5.ORDER_FILLING_FOK, price=tick.ask, deviation=10).retcode == 10009


def test_instant_execution_requote_and_invalid_price(demo):
    sim, mt5 = demo
    sim.set_price("GOLD", 2650.000, broker=SP)
    ask = mt5.symbol_info_tick("GOLD").ask
    assert ask == 2650.3
    r = buy(mt5, "GOLD", 0.1, 0, price=ask - 0.050, deviation=20)  # 50 points away, 20 allowed
    assert r.retcode == mt5.TRADE_RETCODE_REQUOTE and r.comment == "Requote"
    assert (r.bid, r.ask) == (2650.0, 2650.3) and r.deal == 0 and r.order == 0
    assert buy(mt5, "GOLD", 0.1, 0, price=ask - 0.050, deviation=50).retcode == 10009
    assert buy(mt5, "GOLD", 0.1, 0, deviation=50).retcode == mt5.TRADE_RETCODE_INVALID_PRICE  # no price


def test_volume_validation(demo):
    sim, mt5 = demo
    for v in (0.0, 0.001, 0.015, 51.0, -1.0):
        assert buy(mt5, volume=v).retcode == mt5.TRADE_RETCODE_INVALID_VOLUME, v
    assert buy(mt5, "DJ30", 0.05).retcode == 10014  # DJ30 min 0.1
    assert buy(mt5, volume=1).retcode == 10009  # int volume accepted


def test_stops_validation(demo):
    sim, mt5 = demo  # EURUSD.c stops level 10 points, bid 1.10000 ask 1.10003
    assert buy(mt5, sl=1.09995).retcode == mt5.TRADE_RETCODE_INVALID_STOPS  # 5 points < 10
    assert buy(mt5, sl=1.10010).retcode == 10016  # SL above bid for a BUY
    assert buy(mt5, tp=1.09900).retcode == 10016  # TP below for a BUY
    assert buy(mt5, sl=1.09990, tp=1.10010).retcode == 10009  # exactly 10 points each side
    r = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 1, "type_filling": 1,
                        "sl": 1.09, "tp": 1.11})  # SELL with stops on the wrong sides
    assert r.retcode == 10016


def test_sltp_modify_and_no_changes(demo):
    sim, mt5 = demo
    r = buy(mt5, sl=1.099, tp=1.102)
    p = mt5.positions_get(ticket=r.order)[0]
    assert (p.sl, p.tp) == (1.099, 1.102)
    sim.advance(1)
    req = {"action": mt5.TRADE_ACTION_SLTP, "symbol": "EURUSD.c", "position": r.order, "sl": 1.099, "tp": 1.102}
    res = mt5.order_send(req)
    assert res.retcode == mt5.TRADE_RETCODE_NO_CHANGES and res.comment == "No changes"
    res = mt5.order_send({**req, "sl": 1.0985})
    assert res.retcode == 10009 and res.deal == 0
    p2 = mt5.positions_get(ticket=r.order)[0]
    assert p2.sl == 1.0985 and p2.tp == 1.102 and p2.time_update_msc > p.time_update_msc
    res = mt5.order_send({"action": 6, "symbol": "EURUSD.c", "position": r.order, "sl": 1.0985})  # tp omitted
    assert res.retcode == 10009 and mt5.positions_get(ticket=r.order)[0].tp == 0.0
    assert mt5.order_send({**req, "position": 999}).retcode == mt5.TRADE_RETCODE_INVALID


def test_close_partial_and_position_closed(demo):
    sim, mt5 = demo
    r = buy(mt5)
    close = {"action": 1, "symbol": "EURUSD.c", "type": mt5.ORDER_TYPE_SELL, "position": r.order,
             "type_filling": 1}
    assert mt5.order_send({**close, "volume": 1.5}).retcode == mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME
    assert mt5.order_send({**close, "volume": 0.4}).retcode == 10009
    (p,) = mt5.positions_get()
    assert p.ticket == r.order and p.volume == 0.6
    assert mt5.order_send({**close, "volume": 0.6}).retcode == 10009
    assert mt5.positions_get() == ()
    assert mt5.order_send({**close, "volume": 0.6}).retcode == mt5.TRADE_RETCODE_POSITION_CLOSED
    same_side = {**close, "type": mt5.ORDER_TYPE_BUY, "volume": 0.1}
    r2 = buy(mt5)
    assert mt5.order_send({**same_side, "position": r2.order}).retcode == 10013


def test_hedging_opposite_deal_without_position_opens_hedge(demo):
    sim, mt5 = demo
    buy(mt5)
    r = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 1, "type_filling": 1})
    assert r.retcode == 10009
    assert sorted(p.type for p in mt5.positions_get()) == [0, 1]


def test_no_money():
    sim, mt5 = mini(account={"balance": 1000})
    r = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 1.0, "type": 0})  # margin 1100 > 1000
    assert r.retcode == mt5.TRADE_RETCODE_NO_MONEY and r.comment == "No money"
    assert mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.5, "type": 0}).retcode == 10009


@pytest.mark.parametrize("mode,opens,code", [
    ("disabled", 0, 10017), ("closeonly", 0, 10044), ("longonly", 1, 10042), ("shortonly", 0, 10043),
])
def test_trade_mode_restrictions(mode, opens, code):
    sim, mt5 = mini(symbol={"trade_mode": mode})
    r = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": opens})
    assert r.retcode == code
    assert mt5.symbol_info("EURUSD").trade_mode == mini_world({"trade_mode": mode}).brokers["B"].symbols["EURUSD"].trade_mode


def test_closeonly_still_allows_closing():
    sim, mt5 = mini()
    r = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    w = mini_world({"trade_mode": "closeonly"})
    # swap the symbol definition in place: the broker switched the symbol to close-only
    sim.brokers["B"].d.symbols["EURUSD"] = w.brokers["B"].symbols["EURUSD"]
    sim.market.feeds[("B", "EURUSD")].sym = w.brokers["B"].symbols["EURUSD"]
    assert mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}).retcode == 10044
    assert mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1,
                           "position": r.order}).retcode == 10009


def test_unknown_symbol_action_and_type(demo):
    sim, mt5 = demo
    assert buy(mt5, "NOPE").retcode == mt5.TRADE_RETCODE_INVALID
    assert mt5.order_send({"action": 99, "symbol": "EURUSD.c"}).retcode == 10013
    r = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 2, "type_filling": 1})
    assert r.retcode == mt5.TRADE_RETCODE_INVALID_ORDER


def test_malformed_requests_return_none(demo):
    sim, mt5 = demo
    assert mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": None, "type": 0}) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert mt5.order_send({"action": 1, "symbol": 5, "volume": 0.1, "type": 0}) is None
    assert mt5.last_error() == (-2, 'Invalid "symbol" argument')
    assert mt5.order_send({"action": 1.0, "symbol": "EURUSD.c"}) is None
    assert mt5.last_error() == (-2, 'Invalid "action" argument')
    assert mt5.order_check({"action": 1, "symbol": "EURUSD.c", "volume": "1", "type": 0}) is None
    assert mt5.positions_get() == ()


def test_comment_limit_default_and_configurable(demo):
    sim, mt5 = demo
    assert buy(mt5, comment="x" * 31).retcode == 10009
    assert buy(mt5, comment="x" * 32) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')
    assert len(mt5.positions_get()) == 1  # the rejected one never traded
    sim28 = Simulator.demo(comment_limit=28)
    t = sim28.terminal()
    t.initialize(login=2001)
    assert buy(t, comment="c" * 28).retcode == 10009
    assert buy(t, comment="c" * 29) is None


def test_pending_orders_place_modify_remove(demo):
    sim, mt5 = demo  # bid 1.10000 ask 1.10003, stops level 10
    base = {"action": mt5.TRADE_ACTION_PENDING, "symbol": "EURUSD.c", "volume": 0.5,
            "type": mt5.ORDER_TYPE_BUY_LIMIT, "type_filling": mt5.ORDER_FILLING_RETURN, "magic": 3}
    assert mt5.order_send({**base, "price": 1.10100}).retcode == mt5.TRADE_RETCODE_INVALID_PRICE  # above ask
    assert mt5.order_send({**base, "price": 1.09998}).retcode == 10015  # within stops level
    assert mt5.order_send({**base, "price": 1.099, "sl": 1.0995}).retcode == 10016
    assert mt5.order_send({**base, "price": 1.099, "type_filling": 0}).retcode == 10030  # FOK not allowed
    r = mt5.order_send({**base, "price": 1.099, "sl": 1.098, "tp": 1.105})
    assert r.retcode == 10009 and r.order > 0 and r.deal == 0
    assert mt5.orders_total() == 1
    (o,) = mt5.orders_get()
    assert (o.ticket, o.type, o.state, o.price_open, o.volume_current) == (r.order, 2, mt5.ORDER_STATE_PLACED, 1.099, 0.5)
    mod = {"action": mt5.TRADE_ACTION_MODIFY, "order": r.order, "price": 1.099, "sl": 1.098, "tp": 1.105}
    assert mt5.order_send(mod).retcode == mt5.TRADE_RETCODE_NO_CHANGES
    assert mt5.order_send({**mod, "price": 1.0985}).retcode == 10009
    assert mt5.orders_get(ticket=r.order)[0].price_open == 1.0985
    assert mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": r.order}).retcode == 10009
    assert mt5.orders_get() == ()
    (h,) = mt5.history_orders_get(ticket=r.order)
    assert h.state == mt5.ORDER_STATE_CANCELED
    assert mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": r.order}).retcode == 10013
    for t, price in ((3, 1.101), (4, 1.101), (5, 1.099)):
        assert mt5.order_send({**base, "type": t, "price": price}).retcode == 10009, t
    assert mt5.order_send({**base, "type": 6, "price": 1.101, "stoplimit": 1.1005}).retcode == 10009
    assert mt5.order_send({**base, "type": 6, "price": 1.101, "stoplimit": 1.1015}).retcode == 10015


def test_pending_expiration_validation(demo):
    sim, mt5 = demo
    now_server = mt5.symbol_info_tick("EURUSD.c").time
    base = {"action": 5, "symbol": "EURUSD.c", "volume": 0.1, "type": 2, "price": 1.09, "type_filling": 2}
    assert mt5.order_send({**base, "type_time": 2, "expiration": now_server - 10}).retcode == \
        mt5.TRADE_RETCODE_INVALID_EXPIRATION
    assert mt5.order_send({**base, "type_time": 9}).retcode == 10022
    assert mt5.order_send({**base, "type_time": 2, "expiration": now_server + 60}).retcode == 10009


def test_limit_orders_per_account():
    sim, mt5 = mini(account={"limit_orders": 1})
    base = {"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "type_filling": 2}
    assert mt5.order_send({**base, "price": 1.09}).retcode == 10009
    assert mt5.order_send({**base, "price": 1.08}).retcode == mt5.TRADE_RETCODE_LIMIT_ORDERS


def test_freeze_level(demo):
    sim, mt5 = demo
    sim.set_price("GOLD", 2650.0, broker=SP)
    r = buy(mt5, "GOLD", 0.1, 0, price=2650.3, deviation=5, tp=2650.2)
    assert r.retcode == 10009
    sim.set_price("GOLD", 2650.195, broker=SP)  # bid 5 points under TP, freeze level 10
    req = {"action": 6, "symbol": "GOLD", "position": r.order, "sl": 0.0, "tp": 2655.0}
    assert mt5.order_send(req).retcode == mt5.TRADE_RETCODE_FROZEN


def test_close_by_out_by_deals(demo):
    sim, mt5 = demo
    a = buy(mt5, volume=1.0)
    sim.set_price("EURUSD.c", 1.10100, broker=SP)
    b = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 0.4, "type": 1, "type_filling": 1})
    r = mt5.order_send({"action": mt5.TRADE_ACTION_CLOSE_BY, "position": a.order, "position_by": b.order})
    assert r.retcode == 10009
    (left,) = mt5.positions_get()
    assert left.ticket == a.order and left.volume == 0.6
    deals = [d for d in mt5.history_deals_get(ticket=r.order)]
    assert [d.entry for d in deals] == [mt5.DEAL_ENTRY_OUT_BY] * 2
    assert {d.position_id for d in deals} == {a.order, b.order}
    # profit of the pair = (sell open - buy open) * 0.4 lot = (1.10100 - 1.10003) * 40000
    assert round(sum(d.profit for d in deals), 2) == 38.8
    (o,) = mt5.history_orders_get(ticket=r.order)
    assert o.type == mt5.ORDER_TYPE_CLOSE_BY and o.position_by_id == b.order


def test_order_check(demo):
    sim, mt5 = demo
    res = mt5.order_check({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 0, "type_filling": 1})
    assert res.retcode == 0 and res.comment == "Done"
    assert res.margin == 1100.03 and res.balance == 99997.0 and res.equity == 99997.0
    assert res.margin_free == round(99997.0 - 1100.03, 2)
    assert mt5.positions_get() == ()  # nothing traded
    bad = mt5.order_check({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 0})
    assert bad.retcode == 10030 and bad.comment == "Unsupported filling mode"
    assert type(bad.request).__name__ == "TradeRequest"


def test_fifo_close_rule():
    sim, mt5 = mini(account={"fifo_close": True})
    a = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    sim.advance(1)
    b = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    close = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1}
    assert mt5.order_send({**close, "position": b.order}).retcode == mt5.TRADE_RETCODE_FIFO_CLOSE
    assert mt5.order_send({**close, "position": a.order}).retcode == 10009


def test_symbol_volume_limit():
    sim, mt5 = mini(symbol={"volume_limit": 0.3})
    assert mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.2, "type": 0}).retcode == 10009
    r = mt5.order_send({"action": 5, "symbol": "EURUSD", "volume": 0.2, "type": 2, "price": 1.09,
                        "type_filling": 2})
    assert r.retcode == mt5.TRADE_RETCODE_LIMIT_VOLUME


def test_pending_fill_without_margin_is_rejected():
    sim, mt5 = mini(account={"balance": 1000})
    r = mt5.order_send({"action": 5, "symbol": "EURUSD", "volume": 1.0, "type": 2, "price": 1.095,
                        "type_filling": 2})
    assert r.retcode == 10009  # pending orders need no margin until they fill
    sim.set_price("EURUSD", 1.0948, broker="B")
    assert mt5.positions_get() == () and mt5.orders_get() == ()
    assert mt5.history_orders_get(ticket=r.order)[0].state == mt5.ORDER_STATE_REJECTED


def test_day_order_expires_at_server_midnight():
    sim, mt5 = mini()  # starts Monday 12:00 server time
    r = mt5.order_send({"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 2, "price": 1.09,
                        "type_filling": 2, "type_time": mt5.ORDER_TIME_DAY})
    o = mt5.orders_get()[0]
    assert o.time_expiration % 86400 == 0 and o.time_expiration - o.time_setup == 12 * 3600
    sim.advance(12 * 3600 - 5)
    assert mt5.orders_total() == 1
    sim.advance(10)
    assert mt5.orders_total() == 0
    assert mt5.history_orders_get(ticket=r.order)[0].state == mt5.ORDER_STATE_EXPIRED
