"""Deal reasons as the terminal records them: API requests are EXPERT, trades by hand are
CLIENT (MOBILE, WEB), the server's own closes are SL/TP/SO (reference §4 and §6)."""
import pytest

from sim import Simulator

SP = "SimProp-Server"


def setup(login):
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=login)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)
    return sim, mt5


def req(side, volume, **extra):
    return {"action": 1, "symbol": "EURUSD.c", "volume": volume, "type": side, "type_filling": 1, **extra}


def test_order_send_from_an_api_client_is_expert():
    sim, mt5 = setup(2001)
    r = mt5.order_send(req(0, 0.1, magic=7))
    (p,) = mt5.positions_get()
    assert p.reason == mt5.POSITION_REASON_EXPERT
    (d,) = mt5.history_deals_get(position=r.order)
    assert (d.reason, d.magic) == (mt5.DEAL_REASON_EXPERT, 7)
    (o,) = mt5.history_orders_get(position=r.order)
    assert o.reason == mt5.ORDER_REASON_EXPERT
    mt5.order_send(req(1, 0.1, position=r.order))
    assert mt5.history_deals_get(position=r.order)[-1].reason == mt5.DEAL_REASON_EXPERT


@pytest.mark.parametrize("source, reason", [("client", 0), ("mobile", 1), ("web", 2)])
def test_a_trade_by_hand_is_client_mobile_or_web(source, reason):
    sim, mt5 = setup(2001)
    r = sim.manual_trade(2001, req(0, 0.2), source=source)
    assert r.retcode == mt5.TRADE_RETCODE_DONE
    (p,) = mt5.positions_get()
    assert p.reason == reason and p.magic == 0
    (o,) = mt5.history_orders_get(position=r.order)
    assert o.reason == reason
    c = sim.manual_trade(2001, req(1, 0.2, position=p.ticket), source=source)
    assert c.retcode == mt5.TRADE_RETCODE_DONE and mt5.positions_get() == ()
    ins, out = mt5.history_deals_get(position=r.order)
    assert (ins.entry, ins.reason) == (mt5.DEAL_ENTRY_IN, reason)
    assert (out.entry, out.reason) == (mt5.DEAL_ENTRY_OUT, reason)


def test_a_hand_close_of_an_experts_position_is_client():
    sim, mt5 = setup(2002)  # netting
    r = mt5.order_send(req(0, 0.3, magic=234000, comment="cH66ye:7"))
    (p,) = mt5.positions_get()
    sim.manual_trade(2002, req(1, 0.1, position=p.ticket))  # partial, by hand
    sim.manual_trade(2002, req(1, 0.2, position=p.ticket))  # the rest
    deals = mt5.history_deals_get(position=r.order)
    assert [(d.entry, d.reason) for d in deals] == [(0, 3), (1, 0), (1, 0)]


def test_a_pending_order_placed_by_hand_fills_as_client():
    sim, mt5 = setup(2001)
    r = sim.manual_trade(2001, {"action": 5, "symbol": "EURUSD.c", "volume": 0.1, "type": 2, "price": 1.09900,
                                "type_filling": 2})
    (o,) = mt5.orders_get()
    assert o.reason == mt5.ORDER_REASON_CLIENT
    sim.set_price("EURUSD.c", 1.09850, broker=SP)
    (d,) = mt5.history_deals_get(position=r.order)
    assert (d.entry, d.reason) == (mt5.DEAL_ENTRY_IN, mt5.DEAL_REASON_CLIENT)


def test_sl_tp_on_a_netting_account_and_a_hand_opened_position():
    sim, mt5 = setup(2002)
    r = sim.manual_trade(2002, req(0, 0.1, sl=1.09850))
    sim.set_price("EURUSD.c", 1.09840, broker=SP)
    assert mt5.positions_get() == ()
    ins, out = mt5.history_deals_get(position=r.order)
    assert (ins.reason, out.reason, out.comment) == (mt5.DEAL_REASON_CLIENT, mt5.DEAL_REASON_SL, "[sl 1.09850]")
    r = mt5.order_send(req(1, 0.1, tp=1.09700))
    sim.set_price("EURUSD.c", 1.09690, broker=SP)
    assert mt5.history_deals_get(position=r.order)[-1].reason == mt5.DEAL_REASON_TP


def test_api_faults_do_not_touch_a_trade_by_hand():
    sim, mt5 = setup(2001)
    sim.inject_fault(2001, "algo_off")
    sim.inject_fault(2001, "retcode", code=10004)
    assert sim.manual_trade(2001, req(0, 0.1)).retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.order_send(req(0, 0.1)).retcode == mt5.TRADE_RETCODE_CLIENT_DISABLES_AT  # still armed for the API
    sim.inject_fault(2001, "algo_on")
    assert mt5.order_send(req(0, 0.1)).retcode == 10004
    sim.inject_fault(2001, "reply_lost")
    assert sim.manual_trade(2001, req(0, 0.1)).retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.order_send(req(0, 0.1)) is None and mt5.last_error()[0] == -10005
    assert len(mt5.positions_get()) == 3


def test_manual_trade_refuses_bad_input():
    sim, _ = setup(2001)
    with pytest.raises(ValueError, match="source"):
        sim.manual_trade(2001, req(0, 0.1), source="expert")
    with pytest.raises(ValueError, match="unknown login"):
        sim.manual_trade(999, req(0, 0.1))
    with pytest.raises(ValueError, match="comment"):
        sim.manual_trade(2001, req(0, 0.1, comment="x" * 80))
    r = sim.manual_trade(2001, req(0, 0.0))
    assert r.retcode == 10014  # a broker refusal is a result, as from order_send
