"""The simulator served over ZeroMQ behaves like the in-process terminal."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import zmq

from sim import Simulator
from sim.client import AdminClient, SimUnavailable, connect, dumps, loads, wait_until_up
from sim.records import RECORD_TYPES
from sim.trader import filling_for
from testing.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


class ServerProc:
    """``python -m sim serve`` as a real subprocess."""

    def __init__(self, port: int, *extra: str) -> None:
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "serve", "--endpoint", self.endpoint, *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_up(self.endpoint, timeout_s=20)
        except SimUnavailable:
            self.kill()
            raise AssertionError(f"server did not start: {self.proc.stderr.read()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int:
        """Graceful stop (SIGTERM; CTRL_BREAK is not deliverable to a non-group child)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@pytest.fixture(scope="module")
def frozen_server():
    srv = ServerProc(free_port(), "--tick-hz", "0", "--seed", "0")
    yield srv
    srv.kill()


@pytest.fixture
def fresh_server():
    srv = ServerProc(free_port(), "--tick-hz", "0", "--seed", "0")
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def world():
    """Logins and a symbol of each, read from an in-process copy of the demo world."""
    sim = Simulator.demo(seed=0, comment_limit=31)
    logins = sorted(int(x) for x in sim.logins())
    out = {}
    for login in logins:
        t = sim.terminal()
        assert t.initialize(login=login)
        names = [s.name for s in t.symbols_get() if s.trade_mode == t.SYMBOL_TRADE_MODE_FULL]
        out[login] = names
    return out


def scenario(mt5, login: int, symbol: str) -> dict:
    """Open, modify, partially close and close; return everything observable."""
    assert mt5.initialize(login=login), mt5.last_error()
    assert mt5.symbol_select(symbol, True)
    info = mt5.symbol_info(symbol)
    fill = filling_for(info.filling_mode, mt5)
    out: dict = {"info": info, "version": mt5.version()}
    tickets = []
    for side in (mt5.ORDER_TYPE_BUY, mt5.ORDER_TYPE_SELL, mt5.ORDER_TYPE_BUY):
        tick = mt5.symbol_info_tick(symbol)
        res = mt5.order_send({
            "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": info.volume_min * 4,
            "type": side, "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid,
            "deviation": 20, "magic": 42, "comment": "parity", "type_filling": fill})
        assert res is not None and res.retcode == mt5.TRADE_RETCODE_DONE, (res, mt5.last_error())
        out.setdefault("sends", []).append(res)
        tickets.append(res.order)
    pos = mt5.positions_get(ticket=tickets[0])[0]
    tick = mt5.symbol_info_tick(symbol)
    sl = round(tick.bid - 500 * info.point, info.digits)
    tp = round(tick.bid + 500 * info.point, info.digits)
    out["modify"] = mt5.order_send({"action": mt5.TRADE_ACTION_SLTP, "symbol": symbol,
                                    "position": pos.ticket, "sl": sl, "tp": tp})
    out["partial"] = mt5.order_send({
        "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": info.volume_min,
        "type": mt5.ORDER_TYPE_SELL, "position": pos.ticket, "price": tick.bid,
        "deviation": 20, "type_filling": fill})
    out["close"] = mt5.order_send({
        "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": info.volume_min * 4,
        "type": mt5.ORDER_TYPE_BUY, "position": tickets[1], "price": tick.ask,
        "deviation": 20, "type_filling": fill})
    out["too_long"] = (mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol,
                                       "volume": info.volume_min, "type": 0,
                                       "comment": "c" * 40, "type_filling": fill}),
                       mt5.last_error())
    out["not_found"] = (mt5.symbol_info("NO_SUCH_SYMBOL"), mt5.last_error())
    out["positions"] = mt5.positions_get()
    out["positions_total"] = mt5.positions_total()
    out["deals_by_position"] = [mt5.history_deals_get(position=t) for t in tickets]
    frm, to = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)
    out["deals"] = mt5.history_deals_get(frm, to)
    out["orders"] = mt5.history_orders_get(frm, to)
    out["account"] = mt5.account_info()
    out["check"] = mt5.order_check({"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol,
                                    "volume": info.volume_min, "type": 0,
                                    "price": tick.ask, "type_filling": fill})
    out["margin"] = mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, symbol, 1.0, tick.ask)
    out["rates"] = mt5.copy_rates_from_pos(symbol, mt5.TIMEFRAME_M1, 0, 50)
    out["ticks"] = mt5.copy_ticks_range(symbol, frm, to, mt5.COPY_TICKS_ALL)
    return out


def assert_same(a, b, path="result"):
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_same_scenario_in_process_and_through_the_server(fresh_server, world):
    login = min(world)
    symbol = world[login][0]
    local = scenario(Simulator.demo(seed=0, comment_limit=31).terminal(), login, symbol)
    mt5 = connect(fresh_server.endpoint, timeout_ms=5000)
    remote = scenario(mt5, login, symbol)
    assert_same(remote, local)
    assert len(remote["positions"]) == 2 and remote["too_long"][0] is None
    assert type(remote["positions"][0]) is RECORD_TYPES["TradePosition"]
    mt5.close()


def test_constants_match_the_real_package_surface(frozen_server):
    mt5 = connect(frozen_server.endpoint)
    local = Simulator.demo(seed=0).terminal()
    assert mt5.ORDER_TYPE_BUY == 0 and mt5.TRADE_RETCODE_DONE == 10009
    assert mt5.ORDER_FILLING_IOC == local.ORDER_FILLING_IOC
    with pytest.raises(AttributeError):
        mt5.SYMBOL_FILLING_FOK  # noqa: B018 -- absent in the real package too
    for name in ("TIMEFRAME_W1", "DEAL_ENTRY_OUT_BY", "RES_E_INTERNAL_FAIL_TIMEOUT"):
        assert getattr(mt5, name) == getattr(local, name)


def test_unbound_terminal_and_bad_arguments_behave_like_in_process(frozen_server):
    local = Simulator.demo(seed=0).terminal()
    mt5 = connect(frozen_server.endpoint)
    assert_same(mt5.positions_get(), local.positions_get())
    assert mt5.last_error() == local.last_error()
    assert_same(mt5.account_info(), local.account_info())
    try:
        local.symbol_info()
    except TypeError:
        with pytest.raises(TypeError):
            mt5.symbol_info()
    assert not mt5.initialize(login=987654321)
    local.initialize(login=987654321)
    assert mt5.last_error() == local.last_error()


def test_many_clients_each_on_their_own_login(frozen_server, world):
    results: dict[int, list] = {}
    errors: list = []

    def work(login: int) -> None:
        try:
            mt5 = connect(frozen_server.endpoint, login=login, timeout_ms=5000)
            got = []
            for _ in range(30):
                acc = mt5.account_info()
                got.append(acc.login)
                assert mt5.positions_get() is not None
            results[login] = got
            mt5.close()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(login,)) for login in list(world)[:4]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == {login: [login] * 30 for login in list(world)[:4]}


def test_admin_calls(frozen_server, world):
    admin = AdminClient(frozen_server.endpoint)
    assert sorted(int(x) for x in admin.logins()) == sorted(world)
    assert isinstance(admin.world_summary(), dict)
    t0 = admin.now_ms()
    admin.advance(60)
    assert admin.now_ms() == t0 + 60_000
    login = min(world)
    symbol = world[login][0]
    mt5 = connect(frozen_server.endpoint, login=login)
    info = mt5.symbol_info(symbol)
    before = mt5.symbol_info_tick(symbol).bid
    admin.move_price(symbol, 100, broker=admin.broker_of(login))
    assert mt5.symbol_info_tick(symbol).bid == pytest.approx(before + 100 * info.point)
    with pytest.raises((ValueError, KeyError)):
        admin.inject_fault(987654321, "disconnect")
    ping = admin.ping()
    assert ping["protocol"] == 2 and ping["endpoint"] == frozen_server.endpoint


def test_injected_faults_show_through_the_client(frozen_server, world):
    admin = AdminClient(frozen_server.endpoint)
    login = sorted(world)[-1]
    symbol = world[login][0]
    mt5 = connect(frozen_server.endpoint, login=login)
    info = mt5.symbol_info(symbol)
    tick = mt5.symbol_info_tick(symbol)
    req = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": info.volume_min,
           "type": mt5.ORDER_TYPE_BUY, "price": tick.ask, "deviation": 50,
           "type_filling": filling_for(info.filling_mode, mt5)}
    admin.inject_fault(login, "retcode", code=10004, count=1)
    assert mt5.order_send(req).retcode == 10004
    assert mt5.order_send(req).retcode == 10009
    admin.inject_fault(login, "disconnect")
    assert mt5.positions_get() is None
    admin.inject_fault(login, "reconnect")
    assert mt5.positions_get() is not None
    admin.clear_faults(login)


def test_late_reply_is_discarded_not_returned_to_the_next_call(frozen_server, world):
    admin = AdminClient(frozen_server.endpoint)
    login = sorted(world)[len(world) // 2]
    mt5 = connect(frozen_server.endpoint, login=login, timeout_ms=3000)
    acc = mt5.account_info()
    mt5.timeout_ms = 150
    admin.inject_fault(login, "latency", ms=600)
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10005, "IPC timeout")
    admin.clear_faults(login)
    mt5.timeout_ms = 3000
    time.sleep(0.7)  # let the slow reply arrive somewhere
    got = mt5.positions_get()
    assert type(got) is tuple and mt5.account_info().login == acc.login


def test_req_socket_clients_are_served_too(frozen_server):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(frozen_server.endpoint)
    s.send_multipart(dumps([7, "req-client", "mt5", "version", [], {}, ""]))
    assert s.poll(5000)
    rid, status, payload, err, epoch = loads(s.recv_multipart())
    assert (rid, status) == (7, "ok") and len(epoch) == 32
    s.close()


def test_no_server_means_none_and_ipc_error_never_a_hang():
    mt5 = connect(f"tcp://127.0.0.1:{free_port()}", timeout_ms=200)
    assert mt5.positions_get() is None
    assert mt5.last_error()[0] in (-10004, -10005)
    assert mt5.initialize(login=1) is False and mt5.symbol_select("X", True) is False
    assert mt5.last_error()[0] in (-10004, -10005)
    admin = AdminClient(f"tcp://127.0.0.1:{free_port()}", timeout_ms=200)
    with pytest.raises(SimUnavailable):
        admin.now_ms()


def test_killed_server_then_restart_recovers_the_session(world):
    port = free_port()
    login = min(world)
    srv = ServerProc(port, "--tick-hz", "0")
    try:
        mt5 = connect(srv.endpoint, login=login, timeout_ms=300)
        assert mt5.account_info().login == login
        srv.kill()
        assert mt5.positions_get() is None
        assert mt5.last_error() in ((-10005, "IPC timeout"), (-10004, "No IPC connection"))
        assert mt5.account_info() is None
        srv = ServerProc(port, "--tick-hz", "0")
        mt5.timeout_ms = 5000
        acc = mt5.account_info()  # re-initialised transparently on the new server
        assert acc is not None and acc.login == login
        assert mt5.last_error()[0] == 1
    finally:
        srv.kill()


def test_wall_clock_ticking_and_graceful_stop():
    srv = ServerProc(free_port(), "--tick-hz", "50")
    try:
        first = srv.proc.stdout.readline()
        assert srv.endpoint in first
        admin = AdminClient(srv.endpoint)
        t0 = admin.now_ms()
        assert abs(t0 - time.time() * 1000) < 24 * 3600 * 1000  # world clock follows UTC now
        deadline = time.monotonic() + 10
        while admin.now_ms() == t0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admin.now_ms() > t0
    finally:
        code = srv.stop()
    if os.name != "nt":
        assert code == 0


def test_a_slow_terminal_does_not_stall_other_clients(frozen_server, world):
    admin = AdminClient(frozen_server.endpoint)
    slow_login, fast_login = sorted(world)[0], sorted(world)[1]
    slow = connect(frozen_server.endpoint, login=slow_login, timeout_ms=5000)
    fast = connect(frozen_server.endpoint, login=fast_login, timeout_ms=5000)
    admin.inject_fault(slow_login, "latency", ms=1500)
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("slow", slow.account_info()))
    t.start()
    time.sleep(0.2)  # the slow call is now sleeping inside the server
    try:
        assert fast.account_info().login == fast_login
        assert admin.now_ms() > 0
        assert t.is_alive()  # the other terminal and the admin answered meanwhile
    finally:
        admin.clear_faults(slow_login)
        t.join(10)
    assert got["slow"].login == slow_login


def test_client_skips_stale_and_garbage_replies():
    """A hand-made ROUTER answers each request with junk, a stale rid, then the real reply."""
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if not router.poll(50):
                continue
            ident, *body = router.recv_multipart()
            rid, _cid, _ns, fn, _a, _k, _e = loads(body)
            router.send_multipart([ident, b"not json"])
            router.send_multipart([ident, *dumps([rid - 1, "ok", "stale", [1, "Success"], "e"])])
            router.send_multipart([ident, *dumps([rid, "ok", f"fresh {fn}", [1, "Success"], "e"])])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        mt5 = connect(f"tcp://127.0.0.1:{port}", timeout_ms=3000)
        assert mt5.version() == "fresh version"
        assert mt5.positions_get() == "fresh positions_get"
        mt5.close()
    finally:
        stop.set()
        t.join(5)
        router.close()


def test_every_function_fails_like_an_unbound_terminal_when_no_server():
    """No server answering == a terminal with no IPC: same failure value for all 32 calls."""
    from sim.client import MT5_FUNCTIONS
    d1, d2 = datetime(2020, 1, 1), datetime(2030, 1, 1)
    args = {
        "initialize": (), "login": (1,), "symbol_info": ("EURUSD",), "symbol_info_tick": ("EURUSD",),
        "symbol_select": ("EURUSD", True), "market_book_add": ("EURUSD",),
        "market_book_get": ("EURUSD",), "market_book_release": ("EURUSD",),
        "copy_rates_from": ("EURUSD", 1, d2, 10), "copy_rates_from_pos": ("EURUSD", 1, 0, 10),
        "copy_rates_range": ("EURUSD", 1, d1, d2), "copy_ticks_from": ("EURUSD", d1, 10, -1),
        "copy_ticks_range": ("EURUSD", d1, d2, -1), "history_orders_total": (d1, d2),
        "history_orders_get": (d1, d2), "history_deals_total": (d1, d2),
        "history_deals_get": (d1, d2), "order_calc_margin": (0, "EURUSD", 1.0, 1.1),
        "order_calc_profit": (0, "EURUSD", 1.0, 1.1, 1.2), "order_check": ({"action": 1},),
        "order_send": ({"action": 1},),
    }
    local = Simulator.demo(seed=0).terminal()
    mt5 = connect(f"tcp://127.0.0.1:{free_port()}", timeout_ms=30)
    assert len(MT5_FUNCTIONS) == 32
    for fn in MT5_FUNCTIONS:
        if fn == "last_error":
            continue
        a = args.get(fn, ())
        assert_same(getattr(mt5, fn)(*a), getattr(local, fn)(*a), fn)
        assert mt5.last_error() == (-10004, "No IPC connection"), fn
    assert mt5.__version__ == local.__version__


def test_idle_sessions_are_reaped_and_the_client_reinitialises(world):
    from sim.server import SimServer
    login = min(world)
    srv = SimServer(Simulator.demo(seed=0), "tcp://127.0.0.1:*", tick_hz=0, session_ttl=0.2)
    endpoint = srv.start()
    try:
        admin = AdminClient(endpoint)
        mt5 = connect(endpoint, login=login)
        assert mt5.account_info().login == login and admin.ping()["clients"] == 1
        deadline = time.monotonic() + 10
        while admin.ping()["clients"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admin.ping()["clients"] == 0
        assert mt5.account_info().login == login  # transparently initialised again
        assert admin.ping()["clients"] == 1
    finally:
        srv.stop()


def test_unencodable_argument_is_invalid_params_not_an_exception(frozen_server):
    from decimal import Decimal
    mt5 = connect(frozen_server.endpoint)
    assert mt5.order_send({"action": 1, "volume": Decimal("0.1")}) is None
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
