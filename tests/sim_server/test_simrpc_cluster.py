"""The multi-process simulator server (sim/cluster.py): replica processes answer reads of
one world, stay exactly equal to the main process, and a crashed replica is reported,
its calls answered and the replica restarted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim import Simulator
from sim.client import AdminClient, connect, wait_until_up
from sim.cluster import READ_FUNCTIONS, ClusterServer, world_digest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def _wait(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _buy(mt5, symbol, volume=0.1, **extra):
    tick = mt5.symbol_info_tick(symbol)
    req = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume, "type": mt5.ORDER_TYPE_BUY,
           "price": tick.ask, "deviation": 50, "type_filling": mt5.ORDER_FILLING_IOC, **extra}
    return mt5.order_send(req)


@pytest.fixture
def cluster():
    """The demo world served by a main process and two replica processes, frozen clock."""
    sim = Simulator.demo(seed=3)
    srv = ClusterServer(sim, "tcp://127.0.0.1:*", tick_hz=0, processes=2)
    endpoint = srv.start()
    admin = AdminClient(endpoint, timeout_ms=10_000)
    _wait(lambda: all(r["live"] for r in admin.ping()["replicas"]), what="replicas up")
    try:
        yield endpoint, sim, srv, admin
    finally:
        admin.close()
        srv.stop()


def _served(admin) -> list[int]:
    return [r["served"] for r in admin.ping()["replicas"]]


def test_reads_are_answered_by_replicas_and_see_every_write_before_them(cluster):
    endpoint, sim, srv, admin = cluster
    master = connect(endpoint, login=1001, timeout_ms=10_000)
    viewer = connect(endpoint, login=1001, timeout_ms=10_000)   # a second terminal on the same account
    slave = connect(endpoint, login=2001, timeout_ms=10_000)    # another broker
    before, main_before = _served(admin), admin.ping()["main_served"]
    tickets = []
    for i in range(20):
        r = _buy(master, "EURUSD")
        assert r.retcode == master.TRADE_RETCODE_DONE
        tickets.append(r.order)
        # read-your-writes and the other terminal's view, whichever process answers
        assert [p.ticket for p in master.positions_get()] == tickets
        assert [p.ticket for p in viewer.positions_get()] == tickets
        admin.set_price("EURUSD", 1.08 + i / 1000)   # the market moves for every broker
        tick = slave.symbol_info_tick("EURUSD.c")
        with sim.lock:
            assert (tick.bid, tick.ask) == (sim.market.feeds[("SimProp-Server", "EURUSD.c")].bid,
                                            sim.market.feeds[("SimProp-Server", "EURUSD.c")].ask)
    after = _served(admin)
    # the reads went to the replicas (both used), the 20 order_sends to the main process
    assert sum(after) - sum(before) >= 60 and all(a > b for a, b in zip(after, before))
    assert admin.ping()["main_served"] - main_before >= 20
    assert admin.digest() == admin.digest(0) == admin.digest(1) == world_digest(sim)
    for m in (master, viewer, slave):
        m.close()


def test_replicas_hold_exactly_the_main_world_after_a_busy_session(cluster):
    """Trades, SL/TP and pending orders firing as the clock moves, faults (a fault acting
    on a read included), a balance operation, a session switch: every replica's digest
    equals the main world's."""
    endpoint, sim, srv, admin = cluster
    m = connect(endpoint, login=1001, timeout_ms=10_000)
    s = connect(endpoint, login=2001, timeout_ms=10_000)
    tick = m.symbol_info_tick("EURUSD")
    assert _buy(m, "EURUSD", sl=round(tick.bid - 0.0010, 5), tp=round(tick.bid + 0.0010, 5)).retcode == 10009
    assert _buy(s, "EURUSD.c", 0.5).retcode == 10009
    r = s.order_send({"action": s.TRADE_ACTION_PENDING, "symbol": "GOLD", "volume": 0.1,
                      "type": s.ORDER_TYPE_BUY_LIMIT, "price": round(s.symbol_info_tick("GOLD").bid - 5, 2),
                      "type_filling": s.ORDER_FILLING_RETURN})
    assert r.retcode == s.TRADE_RETCODE_DONE
    admin.inject_fault(2001, "retcode", code=10004, count=1)
    assert _buy(s, "EURUSD.c").retcode == 10004
    admin.inject_fault(1001, "price_after", call="positions_get", symbol="EURUSD", bid=round(tick.bid + 0.002, 5))
    m.positions_get()      # the read moves the price: must reach the replicas too
    admin.clear_faults(1001)
    admin.balance_operation(2001, -100.0)
    s.symbol_select("USDJPY.c", True)
    admin.advance(3 * 3600)
    m.login(2003)          # the terminal switches account
    assert _buy(m, "GBPUSD").retcode == 10009
    admin.advance(600)
    main = admin.digest()
    assert main == world_digest(sim)
    assert admin.digest(0) == main and admin.digest(1) == main
    m.close()
    s.close()


def test_a_crashed_replica_is_reported_its_calls_answered_and_it_is_restarted(cluster, capfd):
    endpoint, sim, srv, admin = cluster
    mt5 = connect(endpoint, login=2001, timeout_ms=10_000)
    assert _buy(mt5, "EURUSD.c").retcode == 10009
    victim = admin.ping()["replicas"][0]
    os.kill(victim["pid"], signal.SIGTERM if sys.platform == "win32" else signal.SIGKILL)
    answered = 0
    deadline = time.monotonic() + 30
    while True:  # calls keep working while the replica is gone and comes back
        got = mt5.positions_get()
        assert got is not None and len(got) == 1, mt5.last_error()
        answered += 1
        rep = admin.ping()["replicas"][0]
        if rep["restarts"] == 1 and rep["live"] and rep["pid"] != victim["pid"]:
            break
        assert time.monotonic() < deadline, "replica not restarted"
    assert "replica 0" in capfd.readouterr().err
    assert _buy(mt5, "EURUSD.c").retcode == 10009   # a change after the restart reaches it
    assert admin.digest(0) == admin.digest() == admin.digest(1)
    before = sum(_served(admin))
    for _ in range(10):
        assert len(mt5.positions_get()) == 2
    assert sum(_served(admin)) - before == 10   # the replicas answer again
    assert admin.ping()["replicas"][0]["restarts"] == 1 and answered > 0
    mt5.close()


def test_only_reads_go_to_replicas():
    from sim.client import MT5_FUNCTIONS

    writes = set(MT5_FUNCTIONS) - READ_FUNCTIONS - {"last_error"}
    assert writes == {"initialize", "login", "shutdown", "symbol_select", "market_book_add",
                      "market_book_release", "order_send"}


def test_serve_cli_starts_replicas_and_leaves_none_behind():
    import psutil

    port = __import__("socket").socket()
    port.bind(("127.0.0.1", 0))
    endpoint = f"tcp://127.0.0.1:{port.getsockname()[1]}"
    port.close()
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint", endpoint, "--tick-hz", "0",
                             "--processes", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert "2 processes" in proc.stdout.readline()
        wait_until_up(endpoint, timeout_s=20)
        admin = AdminClient(endpoint, timeout_ms=10_000)
        _wait(lambda: admin.ping()["replicas"][0]["live"], what="replica up")
        pid = admin.ping()["replicas"][0]["pid"]
        mt5 = connect(endpoint, login=1001, timeout_ms=10_000)
        assert mt5.account_info().login == 1001
        assert admin.ping()["replicas"][0]["served"] >= 1
        mt5.close()
        admin.close()
    finally:
        proc.send_signal(signal.SIGTERM if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)
        assert proc.wait(20) == 0
    _wait(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
          timeout=20, what="replica exit")
