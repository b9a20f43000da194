"""mt5linux bridge: requests and time per call, raw mt5linux client vs copyhub's adapter.

    python bench/mt5linux_bridge.py [--positions 5] [--deals 171] [--repeat 20]

Starts an in-process simulator server and ``python -m mt5linux`` on loopback with the test
MetaTrader5 stand-in (tests/terminals/standin), opens ``--positions`` positions and enough
round trips to have about ``--deals`` deals, then measures (median of ``--repeat``):

* raw: ``mt5linux.MetaTrader5`` as its README uses it, reading every field of every record
  (what node code does with the netrefs it returns);
* adapter: ``open_terminal`` kind ``mt5linux`` (one request per call, plain namedtuples);
* guard: the per-call cost of ``terminals.guard`` around a trivial in-process call.

The stand-in adds the simulator's own ZeroMQ hop to every MetaTrader5 call on the server,
so absolute times include that; the request counts do not depend on it.  Under Wine each
request also crosses the Wine/Linux socket boundary, which makes the raw client slower still.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import timeit
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rpyc.core import consts  # noqa: E402

from sim import Simulator  # noqa: E402
from sim.server import SimServer  # noqa: E402
from terminals import guard, open_terminal  # noqa: E402
from testing.harness import free_port  # noqa: E402

FAR = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))
LOGIN = 1001


def counter(conn) -> list:
    sent: list = []
    send = conn._send

    def counting(msg, seq, args):
        if msg == consts.MSG_REQUEST:
            sent.append(seq)
        return send(msg, seq, args)

    conn._send = counting
    return sent


def measure(fn, conn_sent: list, repeat: int) -> tuple[float, int]:
    times, reqs = [], []
    for _ in range(repeat):
        n0 = len(conn_sent)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        reqs.append(len(conn_sent) - n0)
    return statistics.median(times) * 1000, int(statistics.median(reqs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=5)
    ap.add_argument("--deals", type=int, default=171)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()

    server = SimServer(Simulator.demo(seed=0), endpoint="tcp://127.0.0.1:0", tick_hz=0)
    endpoint = server.start()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests/terminals/standin"), str(ROOT)]),
               COPYHUB_STANDIN_SIM=endpoint)
    proc = subprocess.Popen([sys.executable, "-m", "mt5linux", "--host", "127.0.0.1", "-p", str(port), "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        mt5 = open_terminal({"name": "bench", "terminal": {"kind": "mt5linux", "host": "127.0.0.1",
                                                          "port": port, "login": LOGIN}})
        mt5.symbol_select("EURUSD", True)
        info = mt5.symbol_info("EURUSD")

        def send(side, position=0):
            tick = mt5.symbol_info_tick("EURUSD")
            req = {"action": mt5.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": info.volume_min,
                   "type": side, "price": tick.ask if side == 0 else tick.bid, "deviation": 20,
                   "type_filling": mt5.ORDER_FILLING_IOC if info.filling_mode & 2 else mt5.ORDER_FILLING_FOK}
            if position:
                req["position"] = position
            return mt5.order_send(req)

        while len(mt5.history_deals_get(*FAR) or ()) + 2 <= a.deals - a.positions:
            res = send(0)
            send(1, res.order)
        while len(mt5.positions_get()) < a.positions:
            send(0)
        n_pos, n_deals = len(mt5.positions_get()), len(mt5.history_deals_get(*FAR))

        import mt5linux

        raw = mt5linux.MetaTrader5(host="127.0.0.1", port=port)
        raw.initialize(login=LOGIN)
        raw_sent = counter(raw._MetaTrader5__conn)
        ad_sent = counter(mt5.inner.connection)

        def fields(records):
            return [tuple(getattr(r, f) for f in r._fields) for r in records]

        rows = [
            ("positions_get", lambda: fields(raw.positions_get()), lambda: fields(mt5.positions_get())),
            ("history_deals_get", lambda: fields(raw.history_deals_get(*FAR)),
             lambda: fields(mt5.history_deals_get(*FAR))),
            ("account_info", lambda: fields([raw.account_info()]), lambda: fields([mt5.account_info()])),
        ]
        print(f"{n_pos} positions, {n_deals} deals; median of {a.repeat}")
        print(f"{'call (all fields read)':<24} {'raw ms':>8} {'raw req':>8} {'adapter ms':>11} {'adapter req':>12}")
        for name, raw_fn, ad_fn in rows:
            r_ms, r_n = measure(raw_fn, raw_sent, a.repeat)
            d_ms, d_n = measure(ad_fn, ad_sent, a.repeat)
            print(f"{name:<24} {r_ms:>8.2f} {r_n:>8} {d_ms:>11.2f} {d_n:>12}")

        class Trivial:
            def positions_get(self):
                return ()

        t = Trivial()
        g = guard(t)
        n = 200_000
        t_raw = min(timeit.repeat(t.positions_get, number=n, repeat=5)) / n
        t_g = min(timeit.repeat(g.positions_get, number=n, repeat=5)) / n
        print(f"guard overhead per call: {(t_g - t_raw) * 1e9:.0f} ns (bare call {t_raw * 1e9:.0f} ns, "
              f"guarded {t_g * 1e9:.0f} ns)")
        mt5.shutdown()
    finally:
        proc.kill()
        proc.wait(10)
        server.stop()


if __name__ == "__main__":
    main()
