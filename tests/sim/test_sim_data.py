"""Market data calls, symbol selection, login/initialize rules and determinism."""
from datetime import datetime

import numpy as np
import pytest

from sim import RATES_DTYPE, TICKS_DTYPE, Simulator
from sim.world import parse_world

SP = "SimProp-Server"


@pytest.fixture
def env():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001)
    return sim, mt5


def test_symbols(env):
    sim, mt5 = env
    assert mt5.symbols_total() == 5
    assert [s.name for s in mt5.symbols_get()] == ["EURUSD.c", "GBPUSD.c", "USDJPY.c", "GOLD", "DJ30"]
    assert [s.name for s in mt5.symbols_get("*USD*,!*JPY*")] == ["EURUSD.c", "GBPUSD.c"]
    g = mt5.symbol_info("GOLD")
    assert (g.digits, g.point, g.trade_contract_size, g.filling_mode, g.trade_exemode) == (3, 0.001, 100.0, 1, 1)
    assert (g.trade_stops_level, g.trade_freeze_level, g.spread) == (50, 10, 300)
    assert g.ask == round(g.bid + 0.3, 3) and g.currency_profit == "USD" and g.path == "Metals\\GOLD"
    assert mt5.symbol_info("XAUUSD") is None and mt5.last_error() == (-4, "Terminal: Not found")


def test_symbol_select_and_tick(env):
    sim, mt5 = env
    assert mt5.symbol_select("DJ30", False) is True
    assert mt5.symbol_info("DJ30").select is False
    assert mt5.symbol_info_tick("DJ30") is None
    assert mt5.symbol_select("DJ30", True) is True and mt5.symbol_info_tick("DJ30") is not None
    mt5.order_send({"action": 1, "symbol": "DJ30", "volume": 0.1, "type": 0, "type_filling": 1})
    assert mt5.symbol_select("DJ30", False) is False  # open position


def test_market_book(env):
    sim, mt5 = env
    assert mt5.market_book_get("EURUSD.c") is None
    assert mt5.market_book_add("EURUSD.c") is True
    book = mt5.market_book_get("EURUSD.c")
    tick = mt5.symbol_info_tick("EURUSD.c")
    assert [b.type for b in book] == [1] * 5 + [2] * 5
    assert book[4].price == tick.ask and book[5].price == tick.bid
    assert type(book[0]).__name__ == "BookInfo"
    assert mt5.market_book_release("EURUSD.c") is True


def test_rates_built_from_ticks(env):
    sim, mt5 = env
    m1 = mt5.copy_rates_from_pos("EURUSD.c", mt5.TIMEFRAME_M1, 0, 50)
    assert m1.dtype == RATES_DTYPE and len(m1) == 50
    assert np.all(np.diff(m1["time"]) > 0) and np.all(m1["time"] % 60 == 0)
    assert np.all(m1["high"] >= np.maximum(m1["open"], m1["close"]))
    assert np.all(m1["low"] <= np.minimum(m1["open"], m1["close"]))
    h1 = mt5.copy_rates_from_pos("EURUSD.c", mt5.TIMEFRAME_H1, 0, 3)
    last_hour = m1[m1["time"] >= h1["time"][-1]]
    assert h1["high"][-1] == last_hour["high"].max() and h1["close"][-1] == m1["close"][-1]
    assert h1["tick_volume"][-1] == last_hour["tick_volume"].sum()
    ticks = mt5.copy_ticks_range("EURUSD.c", int(h1["time"][-1]), int(h1["time"][-1]) + 3599, mt5.COPY_TICKS_ALL)
    assert len(ticks) == h1["tick_volume"][-1] and ticks["bid"].max() == h1["high"][-1]
    cur = mt5.symbol_info_tick("EURUSD.c")
    assert m1["close"][-1] == cur.bid
    rng = mt5.copy_rates_range("EURUSD.c", mt5.TIMEFRAME_M5, datetime(2025, 1, 6, 11, 0), datetime(2025, 1, 6, 11, 30))
    assert list(rng["time"] - rng["time"][0]) == [0, 300, 600, 900, 1200, 1500, 1800]
    frm = mt5.copy_rates_from("EURUSD.c", mt5.TIMEFRAME_M5, datetime(2025, 1, 6, 11, 30), 3)
    assert list(frm["time"]) == list(rng["time"][-3:])
    assert mt5.copy_rates_from_pos("EURUSD.c", 32768, 0, 10) is None  # W1 sent as 32768
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.copy_rates_from_pos("EURUSD.c", mt5.TIMEFRAME_M1, 0, 200_000) is None
    assert len(mt5.copy_rates_from_pos("EURUSD.c", mt5.TIMEFRAME_W1, 0, 10)) == 10  # the demo world has deep history


def test_ticks(env):
    sim, mt5 = env
    sim.advance(5)
    t = mt5.copy_ticks_from("EURUSD.c", datetime(2025, 1, 6, 11, 0), 10, mt5.COPY_TICKS_ALL)
    assert t.dtype == TICKS_DTYPE and len(t) == 10
    assert np.all(t["time_msc"] >= 1736161200000) and np.all(t["ask"] > t["bid"]) and np.all(t["flags"] == 6)
    assert len(mt5.copy_ticks_from("EURUSD.c", 0, 10, mt5.COPY_TICKS_TRADE)) == 0
    assert mt5.copy_ticks_from("EURUSD.c", 0, 10, 77) is None


def test_deterministic_under_seed():
    def run(seed):
        sim = Simulator.demo(seed=seed)
        mt5 = sim.terminal()
        mt5.initialize(login=1001)
        for _ in range(50):
            sim.advance(0.1)
        sim.advance(600)
        return [mt5.symbol_info_tick(s).bid for s in ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30")]
    assert run(0) == run(0)
    assert run(0) != run(1)


def test_initialize_login_and_password():
    w = parse_world({
        "underlyings": {"EURUSD": {"price": 1.1}},
        "brokers": {"B": {"symbols": {"EURUSD": {
            "digits": 5, "contract_size": 100000, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 10,
            "filling_mode": 1, "spread": 10, "calc_mode": "forex", "currency_base": "EUR",
            "currency_profit": "USD"}}}},
        "accounts": [{"login": 1, "broker": "B", "balance": 1000, "password": "s3cret"},
                     {"login": 2, "broker": "B", "balance": 2000}],
        "terminals": [{"path": "C:\\MT5\\terminal64.exe"}],  # installed, not logged in
    })
    sim = Simulator(w)
    mt5 = sim.terminal()
    assert mt5.initialize(login=1) is False and mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.initialize(login=1, password="nope") is False
    assert mt5.initialize(login=1, password="s3cret", server="Other") is False
    assert mt5.initialize(login=99) is False
    assert mt5.initialize() is False  # no saved account in this terminal
    assert mt5.initialize("C:\\MT5\\terminal64.exe") is False  # the terminal is logged into nothing
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.initialize("C:\\MT5\\terminal64.exe", login=1, password="s3cret", server="B", timeout=5000) is True
    assert mt5.login(2) is True and mt5.account_info().login == 2
    assert mt5.login(1, password="bad") is False and mt5.account_info().login == 2
    saved = sim.terminal(login=1, password="s3cret")
    assert saved.initialize() is True and saved.account_info().balance == 1000.0
