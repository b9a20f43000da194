"""The simulator as a drop-in MetaTrader5 (issue 13): each difference from the real package,
with the package's behaviour as the expected value, then ``python -m sim run``.

Expected values come from the reference (shared/reference/mt5-python-api.md) and the issue:
record types are module attributes, keywords are accepted, ``Buy``/``Sell``/``Close``/
``_RawOrder`` exist, a wrong path fails with -10003, an unknown keyword answers None with
(-2, 'Terminal: Invalid params'), records do not pickle, history is as deep as the world
says, a zero commission is 0.0.
"""
from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sim import RECORD_TYPES, Simulator
from sim.client import connect
from sim.server import SimServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "scripts" / "public_style.py"
FAR = (datetime(2000, 1, 1), datetime(2100, 1, 1))
INVALID_PARAMS = (-2, "Terminal: Invalid params")
RECORD_NAMES = ("AccountInfo", "TerminalInfo", "SymbolInfo", "Tick", "BookInfo", "TradeOrder",
                "TradePosition", "TradeDeal", "TradeRequest", "OrderCheckResult", "OrderSendResult")


@pytest.fixture
def served():
    """A served demo world (frozen clock) for the same checks over ZeroMQ."""
    server = SimServer(Simulator.demo(), "tcp://127.0.0.1:*", tick_hz=0, workers=2)
    endpoint = server.start()
    yield endpoint
    server.stop()


@pytest.fixture(params=["in-process", "served"])
def mt5(request):
    if request.param == "in-process":
        term = Simulator.demo().terminal()
    else:
        term = connect(request.getfixturevalue("served"), timeout_ms=10_000)
    assert term.initialize(login=1001, server="SimFX-Live")
    yield term
    term.shutdown()


# --- 1. record types are module attributes -----------------------------------------------

def test_record_types_are_attributes_and_what_calls_return(mt5):
    for name in RECORD_NAMES:
        assert getattr(mt5, name) is RECORD_TYPES[name], name
    assert type(mt5.account_info()) is mt5.AccountInfo
    assert type(mt5.symbol_info_tick("EURUSD")) is mt5.Tick
    result = mt5.Buy("EURUSD", 0.1)
    assert type(result) is mt5.OrderSendResult and type(result.request) is mt5.TradeRequest
    pos = mt5.positions_get()[0]
    assert type(pos) is mt5.TradePosition


def test_records_construct_like_struct_sequences(mt5):
    # public code does mt5.TradePosition(p) on an element of positions_get()
    mt5.Buy("EURUSD", 0.1)
    p = mt5.positions_get()[0]
    again = mt5.TradePosition(p)
    assert again == p and again.ticket == p.ticket and type(again) is mt5.TradePosition
    assert mt5.BookInfo(1, 1.1, 10, 10.0).volume_dbl == 10.0
    assert mt5.TradePosition(list(p))._asdict() == p._asdict()


def test_the_standin_module_exports_the_record_types(tmp_path):
    script = tmp_path / "imports.py"
    script.write_text(
        "from MetaTrader5 import BookInfo, AccountInfo, TradePosition, OrderSendResult\n"
        "import MetaTrader5 as mt5\n"
        "assert mt5.BookInfo is BookInfo and mt5.TradeDeal.__name__ == 'TradeDeal'\n"
        "assert callable(mt5.Buy) and callable(mt5.Close) and callable(mt5._RawOrder)\n"
        "assert mt5.TIMEFRAME_H1 == 16385 and mt5.__author__ == 'MetaQuotes Ltd.'\n"
        "print('ok')\n")
    out = _run("--tick-hz", "0", str(script))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- 2. keywords (landed earlier; re-checked here through both transports) ---------------

def test_initialize_and_login_take_keywords(mt5):
    assert mt5.initialize(path=None, login=1001, password=None, server="SimFX-Live",
                          timeout=60000, portable=False) is True
    assert mt5.login(login=2003, server="SimFX-Live", timeout=60000) is True
    assert mt5.account_info().login == 2003


# --- 3. helpers -----------------------------------------------------------------------------

def test_buy_sell_close_and_raw_order(mt5):
    buy = mt5.Buy("EURUSD", 0.1)
    assert buy.retcode == mt5.TRADE_RETCODE_DONE
    assert buy.request.deviation == 10 and buy.request.type_filling == mt5.ORDER_FILLING_FOK
    assert buy.request.price == mt5.symbol_info_tick("EURUSD").ask
    sell = mt5.Sell("EURUSD", 0.2, comment="s")
    assert sell.retcode == mt5.TRADE_RETCODE_DONE and sell.request.type == mt5.ORDER_TYPE_SELL
    raw = mt5._RawOrder(mt5.ORDER_TYPE_BUY, "EURUSD", 0.1, mt5.symbol_info_tick("EURUSD").ask, "r")
    assert raw.retcode == mt5.TRADE_RETCODE_DONE and raw.request.comment == "r"
    assert mt5.positions_total() == 3
    one = mt5.positions_get(ticket=sell.order)[0]
    assert mt5.Close("EURUSD", ticket=one.ticket) is True
    assert mt5.positions_total() == 2
    assert mt5.Close("EURUSD") is True and mt5.positions_total() == 0
    assert mt5.Close("EURUSD") is False  # nothing to close
    closing = [d for d in mt5.history_deals_get(*FAR) if d.entry == mt5.DEAL_ENTRY_OUT]
    assert len(closing) == 3 and all(d.reason == mt5.DEAL_REASON_EXPERT for d in closing)


def test_buy_keeps_the_package_fok_default_so_an_ioc_only_symbol_refuses_it():
    mt5 = Simulator.demo().terminal()
    assert mt5.initialize(login=2001)
    r = mt5.Buy("EURUSD.c", 0.1)  # SimProp: IOC only, as on a real account -> 10030
    assert r.retcode == mt5.TRADE_RETCODE_INVALID_FILL and mt5.positions_total() == 0


def test_close_partially_when_one_close_is_refused():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    mt5.Buy("EURUSD", 0.1)
    mt5.Buy("EURUSD", 0.1)
    sim.inject_fault(1001, "retcode", code=10006)  # the first close is rejected
    assert mt5.Close("EURUSD") == "Partially"
    assert mt5.positions_total() == 1
    sim.inject_fault(1001, "retcode", code=10006)
    assert mt5.Close("EURUSD") is False


def test_buy_retries_a_requote_with_a_fresh_price():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    sim.inject_fault(1001, "retcode", code=10004, count=2)
    r = mt5.Buy("EURUSD", 0.1)
    assert r.retcode == 10009 and r.request_id == 3  # two requotes, then done
    sim.inject_fault(1001, "retcode", code=10004, count=1)
    assert mt5.Buy("EURUSD", 0.1, 1.2).retcode == 10004  # an explicit price is not retried


def test_close_on_a_lost_terminal_answers_none():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    sim.inject_fault(1001, "disconnect")
    assert mt5.Close("EURUSD") is None and mt5.Buy("EURUSD", 0.1) is None
    assert mt5.last_error() == (-10004, "No IPC connection")


# --- 4. a path that does not exist fails (landed earlier; re-checked) ----------------------

def test_wrong_path_fails_like_windows(mt5):
    assert mt5.initialize("C:\\nonexistent\\terminal64.exe") is False
    assert mt5.last_error() == (-10003, "IPC initialize failed, Process create failed")


# --- 5. unknown keywords answer None + invalid params, not TypeError ----------------------

@pytest.mark.parametrize("call, fail", [
    (lambda m: m.history_deals_get(*FAR, datetime_from=1), None),
    (lambda m: m.history_orders_get(*FAR, datetime_to=1), None),
    (lambda m: m.positions_get(symbol="EURUSD", magic=1), None),
    (lambda m: m.orders_get(tickets=1), None),
    (lambda m: m.symbols_get(groups="*"), None),
    (lambda m: m.login(1001, passwd="x"), False),
    (lambda m: m.initialize(login=1001, pasword="x"), False),
])
def test_unknown_keywords_answer_failure_with_invalid_params(mt5, call, fail):
    assert call(mt5) is fail
    assert mt5.last_error() == INVALID_PARAMS


def test_known_keywords_still_work_after_an_unknown_one(mt5):
    assert mt5.positions_get(foo=1) is None
    assert mt5.positions_get(symbol="EURUSD") == ()
    assert mt5.last_error() == (1, "Success")


# --- 6. records cannot be pickled; the transports convert them themselves ----------------

def test_records_do_not_pickle_like_the_packages(mt5):
    mt5.Buy("EURUSD", 0.1)
    for record in (mt5.account_info(), mt5.terminal_info(), mt5.symbol_info("EURUSD"),
                   mt5.positions_get()[0], mt5.history_deals_get(*FAR)[-1]):
        with pytest.raises(pickle.PicklingError):
            pickle.dumps(record)
        assert type(record).__module__ == "builtins"  # where the package's types live
        assert copy.deepcopy(record) == record  # copying works, as on the package


def test_records_cross_the_zeromq_transport_as_the_same_types(served):
    term = connect(served, timeout_ms=10_000)
    assert term.initialize(login=2003)
    assert type(term.account_info()) is RECORD_TYPES["AccountInfo"]
    assert type(term.symbol_info("EURUSD")) is RECORD_TYPES["SymbolInfo"]
    term.shutdown()


# --- 7. deep history ---------------------------------------------------------------------

def test_copy_rates_from_2023_returns_ten_bars(mt5):
    rates = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, datetime(2023, 10, 5), 10)
    assert len(rates) == 10
    t = rates["time"]
    assert all(t[1:] - t[:-1] == 3600) and t[-1] <= datetime(2023, 10, 5, tzinfo=timezone.utc).timestamp()
    assert all(rates["low"] <= rates["open"]) and all(rates["open"] <= rates["high"])
    assert all(rates["low"] <= rates["close"]) and all(rates["close"] <= rates["high"])


def test_deep_history_is_deterministic_from_the_seed():
    def bars(seed, order):
        mt5 = Simulator.demo(seed=seed).terminal()
        assert mt5.initialize(login=1001)
        if order:  # another query first must not change the answer
            mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, datetime(2024, 6, 1), 300)
        return mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_M15, datetime(2024, 3, 1), 50)

    a, b, c = bars(0, False), bars(0, True), bars(1, False)
    assert (a == b).all()
    assert not (a["close"] == c["close"]).all()


def test_deep_history_joins_the_live_history():
    sim = Simulator.demo()
    mt5 = sim.terminal()
    assert mt5.initialize(login=1001)
    # the demo world's live history starts at 04:00 UTC (06:00 server) on 2025-01-06
    m1 = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, datetime(2025, 1, 6, 5, 50),
                              datetime(2025, 1, 6, 6, 10))
    assert len(m1) == 21 and all(m1["time"][1:] - m1["time"][:-1] == 60)  # no gap, no overlap
    jumps = abs(m1["open"][1:] - m1["close"][:-1])
    assert max(jumps) < 0.0005  # the walk continues (no jump at the seam)
    h1 = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 100)
    assert len(h1) == 100 and all(h1["time"][1:] - h1["time"][:-1] == 3600)


def _world(days):
    import tomllib

    from sim.world import DEMO_WORLD, parse_world

    data = tomllib.loads(DEMO_WORLD.read_text())
    data["world"]["history_days"] = days
    return parse_world(data)


def test_no_deep_history_without_history_days():
    mt5 = Simulator(_world(0)).terminal()
    assert mt5.initialize(login=1001)
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, datetime(2023, 10, 5), 10)) == 0
    mt5 = Simulator(_world(30)).terminal()
    assert mt5.initialize(login=1001)
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, datetime(2023, 10, 5), 10)) == 0
    d1 = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, datetime(2025, 1, 7), 100)
    assert 30 <= len(d1) <= 32  # 30 days deep + the live day(s)
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, datetime(2024, 12, 20), 10)) == 10


def test_sessions_apply_to_deep_history():
    import tomllib

    from sim.world import DEMO_WORLD, parse_world

    data = tomllib.loads(DEMO_WORLD.read_text())
    data["world"]["history_days"] = 60
    data["brokers"]["SimFX-Live"]["sessions"] = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    mt5 = Simulator(parse_world(data)).terminal()
    assert mt5.initialize(login=1001)
    h1 = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H1, datetime(2024, 12, 1), 300)
    assert len(h1) == 300
    weekday = ((h1["time"] // 86400) + 4) % 7
    assert not set(weekday.tolist()) & {0, 6}  # no weekend bars
    assert len(mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_D1, datetime(2024, 12, 1), 7)) == 7


def test_oversized_range_over_deep_history_is_refused(mt5):
    assert mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M1, datetime(2020, 1, 1), datetime(2025, 1, 1)) is None
    assert mt5.last_error() == INVALID_PARAMS


# --- 8. zero commission ----------------------------------------------------------------

def test_zero_commission_is_positive_zero(mt5):
    mt5.Buy("EURUSD", 0.1)  # SimFX-Live charges no commission
    deal = [d for d in mt5.history_deals_get(*FAR) if d.entry == mt5.DEAL_ENTRY_IN][-1]
    assert deal.commission == 0.0 and math.copysign(1.0, deal.commission) == 1.0
    assert repr(deal.commission) == "0.0"


# --- python -m sim run ------------------------------------------------------------------

def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", "run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def _check_public_script(out: subprocess.CompletedProcess, login: int, realtime: bool = True) -> dict:
    assert out.returncode == 0, out.stdout + out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["login"] == login
    assert seen["bars"] == 24
    assert seen["buy_retcode"] == 10009 and seen["closed"] is True
    # the script reads history around datetime.now(): on a frozen clock (2025) it finds none
    assert seen["deal_entries"] == ([0, 1] if realtime else [])
    assert seen["odd_keyword"] == [None, list(INVALID_PARAMS)]
    return seen


def test_sim_run_runs_a_public_style_script_in_process():
    seen = _check_public_script(_run(str(SCRIPT), "EURUSD", "0.1"), 1001)
    # the world clock follows the wall clock: a month back is a month back from now
    assert abs(seen["first_bar"] - seen["month_ago"]) < 3 * 86400
    seen = _check_public_script(_run("--login", "2003", str(SCRIPT), "EURUSD", "0.2"), 2003)
    assert seen["commissions"] == [0.0, 0.0]
    _check_public_script(_run("--tick-hz", "0", str(SCRIPT), "XAUUSD", "0.1"), 1001, realtime=False)


def test_sim_run_against_a_served_world():
    server = SimServer(Simulator.demo(), "tcp://127.0.0.1:*", tick_hz=10, workers=2)
    served = server.start()
    try:
        _check_public_script(_run("--endpoint", served, "--login", "1001", str(SCRIPT), "GBPUSD", "0.1"), 1001)
        term = connect(served, timeout_ms=10_000)
        assert term.initialize(login=1001)
        # the script's trade happened in the served world
        assert any(d.comment == "public-style" for d in term.history_deals_get(*FAR))
        term.shutdown()
    finally:
        server.stop()


def test_sim_run_passes_exit_codes_and_refuses_bad_input(tmp_path):
    script = tmp_path / "exit.py"
    script.write_text("import sys, MetaTrader5 as mt5\n"
                      "ok = mt5.initialize('C:/nowhere/terminal64.exe')\n"
                      "sys.exit(7 if not ok and mt5.last_error()[0] == -10003 else 1)\n")
    assert _run("--tick-hz", "0", str(script)).returncode == 7
    bad = _run("--login", "424242", str(script))
    assert bad.returncode == 2 and "unknown login 424242" in bad.stderr
    missing = _run(str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no script" in missing.stderr


def test_sim_run_selects_a_world_terminal_by_path(tmp_path):
    from sim.world import DEMO_WORLD

    world = tmp_path / "world.toml"
    world.write_text(DEMO_WORLD.read_text() + "\n[[terminals]]\npath = 'C:\\MT5\\FTMO\\terminal64.exe'\nlogin = 2001\n")
    script = tmp_path / "path.py"
    script.write_text("import MetaTrader5 as mt5\n"
                      "assert mt5.initialize(path=r'C:\\MT5\\FTMO\\terminal64.exe')\n"
                      "print(mt5.account_info().login, mt5.terminal_info().path)\n")
    out = _run("--world", str(world), "--tick-hz", "0", str(script))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2001", "C:\\MT5\\FTMO"]


def test_children_of_the_script_get_the_standin_too(tmp_path):
    child = tmp_path / "child.py"
    child.write_text("import MetaTrader5 as mt5\nprint(mt5.initialize(), mt5.account_info().login)\n")
    parent = tmp_path / "parent.py"
    parent.write_text(f"import subprocess, sys\nsys.exit(subprocess.call([sys.executable, {str(child)!r}]))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYHUB_SIM_")}
    out = _run("--login", "2002", "--tick-hz", "0", str(parent), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "2002"]
