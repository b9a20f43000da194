"""Margin, profit, equity and currency conversion, checked by hand on examples."""
import pytest

from sim import Simulator

SP, FX = "SimProp-Server", "SimFX-Live"


@pytest.fixture
def sim():
    return Simulator.demo()


def term(sim, login):
    t = sim.terminal()
    assert t.initialize(login=login)
    return t


def test_forex_margin_equity_and_partial_close_by_hand(sim):
    mt5 = term(sim, 2001)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)  # ask 1.10003 (spread 3)
    r = mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 0, "type_filling": 1})
    a = mt5.account_info()
    # margin = 1 lot * 100000 EUR / 100 = 1000 EUR, at the open price 1.10003 -> 1100.03 USD
    assert a.margin == 1100.03
    # commission 3.00 per lot per side, taken at the deal
    assert a.balance == 99997.0
    # floating at bid 1.10000: (1.10000 - 1.10003) * 100000 = -3.00
    assert a.profit == -3.0 and a.equity == 99994.0
    sim.set_price("EURUSD.c", 1.10103, broker=SP)
    a = mt5.account_info()
    assert a.profit == 100.0 and a.equity == 100097.0
    assert a.margin_free == round(100097.0 - 1100.03, 2)
    assert a.margin_level == round(100097.0 / 1100.03 * 100, 2)
    mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 0.4, "type": 1, "position": r.order,
                    "type_filling": 1})
    out = mt5.history_deals_get(position=r.order)[-1]
    assert (out.profit, out.commission) == (40.0, -1.2)
    a = mt5.account_info()
    assert a.balance == round(99997.0 + 40.0 - 1.2, 2)
    assert a.margin == round(0.6 * 1000 * 1.10003, 2)


def test_jpy_profit_converted_to_usd(sim):
    mt5 = term(sim, 1001)
    sim.set_price("USDJPY", 150.000, broker=FX)  # ask 150.010
    mt5.order_send({"action": 1, "symbol": "USDJPY", "volume": 1.0, "type": 0, "type_filling": 0})
    assert mt5.account_info().margin == 1000.0  # margin currency USD = account currency
    sim.set_price("USDJPY", 150.510, broker=FX)
    # (150.510 - 150.010) * 100000 = 50000 JPY; / 150.510 (USDJPY bid) = 332.20 USD
    assert mt5.positions_get()[0].profit == round(50000 / 150.510, 2) == 332.2
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY, "USDJPY", 1.0, 150.010, 150.510) == 332.2
    si = mt5.symbol_info("USDJPY")
    assert si.trade_tick_value == pytest.approx(0.001 * 100000 / 150.510)


def test_cfd_leverage_margin_and_profit(sim):
    mt5 = term(sim, 1001)
    sim.set_price("XAUUSD", 2000.00, broker=FX)  # ask 2000.25
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "XAUUSD", 1.0, 2000.25) == 2000.25  # 1*100*2000.25/100
    mt5.order_send({"action": 1, "symbol": "XAUUSD", "volume": 1.0, "type": 0, "type_filling": 1})
    assert mt5.account_info().margin == 2000.25
    sim.set_price("XAUUSD", 2010.00, broker=FX)
    assert mt5.positions_get()[0].profit == round((2010.00 - 2000.25) * 100, 2) == 975.0
    # US30 contract 10 vs DJ30 contract 1: same lot is 10x the exposure
    sim.set_price("US30", 40000.0, broker=FX)
    assert mt5.order_calc_margin(0, "US30", 1.0, 40002.0) == 4000.2
    slave = term(sim, 2001)
    assert slave.order_calc_margin(0, "DJ30", 1.0, 40004.0) == 400.04
    assert mt5.order_calc_profit(1, "US30", 1.0, 40000.0, 39990.0) == 100.0
    assert slave.order_calc_profit(1, "DJ30", 1.0, 40000.0, 39990.0) == 10.0


def test_forex_margin_cross_conversion(sim):
    mt5 = term(sim, 1001)
    sim.set_price("GBPUSD", 1.25000, broker=FX)
    # GBP margin 1000 * order price 1.25 (symbol quotes GBP against the account currency)
    assert mt5.order_calc_margin(0, "GBPUSD", 1.0, 1.25) == 1250.0
    assert mt5.order_calc_margin(1, "EURUSD", 0.1, 1.1) == 110.0
    assert mt5.order_calc_margin(0, "NOPE", 1.0, 1.0) is None
    assert mt5.last_error() == (-4, "Terminal: Not found")
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_BUY_LIMIT, "EURUSD", 1.0, 1.1, 1.2) is None
    assert mt5.last_error()[0] == -2


def test_netting_reversal_profit_by_hand(sim):
    mt5 = term(sim, 2002)
    sim.set_price("EURUSD.c", 1.10000, broker=SP)
    mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.0, "type": 0, "type_filling": 1})
    sim.set_price("EURUSD.c", 1.10200, broker=SP)
    mt5.order_send({"action": 1, "symbol": "EURUSD.c", "volume": 1.5, "type": 1, "type_filling": 1})
    d = mt5.history_deals_get(0, 2**40)[-1]
    # closes 1.0 lot at bid 1.10200 opened at 1.10003: 197.00; commission on the 1.5 lots: 4.50
    assert (d.entry, d.profit, d.commission, d.volume) == (2, 197.0, -4.5, 1.5)
    a = mt5.account_info()
    assert a.balance == round(50000 - 3.0 + 197.0 - 4.5, 2)
    assert a.margin == round(0.5 * 1000 * 1.102, 2)
