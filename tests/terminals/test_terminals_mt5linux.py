"""The mt5linux adapter against the real mt5linux client and its rpyc classic server.

The server is ``python -m mt5linux`` as a subprocess on 127.0.0.1 (what users start under
Wine), with ``standin/MetaTrader5.py`` first on its path: that stand-in forwards every call
to a copyhub simulator server started here, in-process.  So every value is checked against
what the simulator gives directly.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mt5linux")
pytest.importorskip("rpyc")

from rpyc.core import consts  # noqa: E402

from sim import Simulator  # noqa: E402
from sim.client import connect  # noqa: E402
from sim.records import OrderSendResult, TradeDeal, TradePosition, TradeRequest  # noqa: E402
from sim.server import SimServer  # noqa: E402
from terminals import TerminalError, open_terminal  # noqa: E402
from testing.harness import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).resolve().parent / "standin"
pytestmark = pytest.mark.timeout(60)
MASTER = 1001  # demo world login
FAR = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


class BridgeServer:
    """``python -m mt5linux`` on 127.0.0.1:port with the MetaTrader5 stand-in."""

    def __init__(self, sim_endpoint: str, port: int, tmp: Path) -> None:
        self.port = port
        self.hang = tmp / "hang"
        self.count = tmp / "calls"
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(STANDIN), str(ROOT)]),
                        COPYHUB_STANDIN_SIM=sim_endpoint, COPYHUB_STANDIN_HANG=str(self.hang),
                        COPYHUB_STANDIN_COUNT=str(self.count))
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mt5linux", "--host", "127.0.0.1", "-p", str(self.port), "-q"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                    self.kill()
                    raise AssertionError(f"mt5linux server did not start: {err}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def calls(self) -> list[str]:
        return self.count.read_text().split() if self.count.exists() else []


@pytest.fixture(scope="module")
def sim_endpoint():
    server = SimServer(Simulator.demo(seed=0), endpoint="tcp://127.0.0.1:0", tick_hz=0)
    endpoint = server.start()
    yield endpoint
    server.stop()


@pytest.fixture
def bridge(sim_endpoint, tmp_path):
    srv = BridgeServer(sim_endpoint, free_port(), tmp_path)
    yield srv
    if srv.hang.exists():
        srv.hang.unlink()
    srv.kill()


@pytest.fixture
def direct(sim_endpoint):
    mt5 = connect(sim_endpoint, login=MASTER)
    yield mt5
    mt5.close()


def account(port: int, **extra) -> dict:
    return {"name": "X", "terminal": {"kind": "mt5linux", "host": "127.0.0.1", "port": port,
                                      "login": MASTER, **extra}}


def count_requests(mt5) -> list[int]:
    """Instrument the adapter's rpyc connection: the list grows by one per request sent."""
    conn = mt5.inner.connection
    sent: list[int] = []
    send = conn._send

    def counting(msg, seq, args):
        if msg == consts.MSG_REQUEST:
            sent.append(seq)
        return send(msg, seq, args)

    conn._send = counting
    return sent


def market_order(mt5, symbol: str, side: int) -> dict:
    info = mt5.symbol_info(symbol)
    tick = mt5.symbol_info_tick(symbol)
    return {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": info.volume_min,
            "type": side, "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid,
            "deviation": 20, "magic": 7, "comment": "bridge",
            "type_filling": mt5.ORDER_FILLING_IOC if info.filling_mode & 2 else mt5.ORDER_FILLING_FOK}


def test_values_through_the_bridge_equal_the_simulator(bridge, direct):
    mt5 = open_terminal(account(bridge.port))
    assert mt5.account_info() == direct.account_info()
    assert mt5.TRADE_ACTION_DEAL == direct.TRADE_ACTION_DEAL and mt5.__version__ == direct.__version__
    assert not hasattr(mt5, "SYMBOL_FILLING_FOK")  # the constants are the stand-in's, not mt5linux's
    assert mt5.symbol_select("EURUSD", True) is True
    assert mt5.symbol_info("EURUSD") == direct.symbol_info("EURUSD")
    res = mt5.order_send(market_order(mt5, "EURUSD", mt5.ORDER_TYPE_BUY))
    assert type(res) is OrderSendResult and type(res.request) is TradeRequest
    assert res.retcode == mt5.TRADE_RETCODE_DONE, (res, mt5.last_error())
    assert res.request.comment == "bridge" and res.request.symbol == "EURUSD"
    positions = mt5.positions_get()
    assert positions == direct.positions_get() and len(positions) >= 1
    assert all(type(p) is TradePosition for p in positions)
    assert mt5.positions_get(ticket=res.order) == direct.positions_get(ticket=res.order)
    deals = mt5.history_deals_get(*FAR)
    assert deals == direct.history_deals_get(*FAR) and type(deals[0]) is TradeDeal
    assert mt5.history_deals_get(position=res.order) == direct.history_deals_get(position=res.order)
    naive = (datetime(2000, 1, 1), datetime(2100, 1, 1))
    assert mt5.history_orders_total(*naive) == direct.history_orders_total(*naive)
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 20)
    expect = direct.copy_rates_from_pos("EURUSD", direct.TIMEFRAME_M1, 0, 20)
    assert isinstance(rates, np.ndarray) and rates.dtype == expect.dtype
    assert rates.tobytes() == expect.tobytes()
    assert mt5.version() == direct.version()
    assert mt5.symbol_info("NO_SUCH") is None and mt5.last_error() == (-4, "Terminal: Not found")
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, res.price) == \
        direct.order_calc_margin(direct.ORDER_TYPE_BUY, "EURUSD", 1.0, res.price)
    assert mt5.last_error() == (1, "Success")
    mt5.shutdown()
    assert mt5.inner.connection is None


def test_one_request_per_call(bridge):
    mt5 = open_terminal(account(bridge.port))
    for side in (0, 1, 0, 1, 0):
        assert mt5.order_send(market_order(mt5, "EURUSD", side)).retcode == mt5.TRADE_RETCODE_DONE
    sent = count_requests(mt5)
    before = bridge.calls()
    positions = mt5.positions_get()
    assert len(positions) >= 5 and len(sent) == 1
    assert [p.ticket for p in positions] and [tuple(p) for p in positions]  # all local now
    assert len(sent) == 1
    mt5.history_deals_get(*FAR)
    mt5.account_info()
    mt5.order_send(market_order(mt5, "EURUSD", 1))
    assert len(sent) == 1 + 1 + 1 + 3  # order_send's helper did symbol_info + tick + send
    mt5.last_error()
    assert len(sent) == 6  # travels with every reply
    # and on the server, each request is exactly that call plus its last_error()
    assert bridge.calls()[len(before):len(before) + 4] == [
        "positions_get", "last_error", "history_deals_get", "last_error"]


def test_server_down_at_start_is_a_terminal_error_not_a_crash():
    with pytest.raises(TerminalError, match=r"\(-10004, .*connection refused"):
        open_terminal(account(free_port()))


def test_server_killed_mid_run_then_restarted(bridge):
    mt5 = open_terminal(account(bridge.port))
    assert mt5.positions_get() is not None
    bridge.kill()
    assert mt5.positions_get() is None
    code, text = mt5.last_error()
    assert code == -10004 and "No IPC connection" in text
    assert mt5.account_info() is None and mt5.last_error()[0] == -10004  # fails fast, stays failed
    assert mt5.initialize(login=MASTER) is False  # still down: refused, no exception
    assert mt5.last_error()[0] == -10004
    bridge.start()
    assert mt5.initialize(login=MASTER) is True
    assert mt5.account_info().login == MASTER and mt5.last_error() == (1, "Success")


def test_server_restarted_between_calls_initialize_reconnects_at_once(bridge):
    mt5 = open_terminal(account(bridge.port))
    bridge.kill()
    bridge.start()
    assert mt5.initialize(login=MASTER) is True  # the stale connection is replaced in the call
    assert mt5.positions_get() is not None


def test_hung_server_times_out_within_the_configured_timeout(bridge):
    mt5 = open_terminal(account(bridge.port, timeout=500))
    bridge.hang.touch()
    t0 = time.monotonic()
    assert mt5.positions_get() is None
    elapsed = time.monotonic() - t0
    code, text = mt5.last_error()
    assert code == -10005 and "IPC timeout" in text, text
    assert elapsed >= 0.4, elapsed  # it waited for the configured 500 ms (the hang lasts until unlinked)
    assert mt5.account_info() is None  # the link is marked dead: no second wait, a connection error at once
    assert mt5.last_error()[0] == -10004, mt5.last_error()
    bridge.hang.unlink()
    assert mt5.initialize(login=MASTER) is True and mt5.account_info().login == MASTER


def test_unsendable_argument_is_invalid_params(bridge):
    from decimal import Decimal

    mt5 = open_terminal(account(bridge.port))
    req = market_order(mt5, "EURUSD", 0)
    req["volume"] = Decimal("0.01")
    assert mt5.order_send(req) is None
    assert mt5.last_error()[0] == -2
    assert mt5.positions_get() is not None  # the connection is fine
    req["volume"] = np.float64(0.01)  # numpy scalars travel as Python floats
    assert mt5.order_send(req).retcode == mt5.TRADE_RETCODE_DONE


def test_timeout_and_portable_reach_initialize_under_wine(bridge):
    mt5 = open_terminal(account(bridge.port, timeout=1500, portable=False))
    assert mt5.inner.timeout_s == 1.5
    assert mt5.account_info().login == MASTER


def test_raw_mt5linux_client_needs_a_request_per_field(bridge):
    """The reason for the adapter: mt5linux's own methods return netrefs."""
    import mt5linux

    raw = mt5linux.MetaTrader5(host="127.0.0.1", port=bridge.port)
    raw.initialize(login=MASTER)
    mt5 = open_terminal(account(bridge.port))
    mt5.order_send(market_order(mt5, "EURUSD", 0))
    conn = raw._MetaTrader5__conn
    sent = []
    send = conn._send
    conn._send = lambda msg, seq, args: (sent.append(msg), send(msg, seq, args))[1]
    positions = raw.positions_get()
    values = [tuple(getattr(p, f) for f in TradePosition._fields) for p in positions]
    assert len(sent) > len(values) * len(TradePosition._fields)
    assert values == [tuple(p) for p in mt5.positions_get()]
    conn.close()
