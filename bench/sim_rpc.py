"""Per-call latency of the simulator over ZeroMQ (loopback).

    python bench/sim_rpc.py [--json] [--calls N] [--positions 10] [--tick-hz 10] [--workers 8]
    python bench/sim_rpc.py --clients 20 [--seconds 5] [--interval-ms 20] [--workers 8] [--processes N]
    python bench/sim_rpc.py --matrix 1,10,20 [--processes 2]   # before (1 process) / after, one run

Starts ``python -m sim serve`` as a subprocess, opens ``--positions`` positions, then times
``positions_get`` (all open positions), ``symbol_info_tick``, ``account_info`` and
``order_send`` (market open, then close of that position) through the client, and the same
``positions_get`` in-process for reference.  Goal: p99 <= 1 ms per call on loopback.

``--clients N``: N client processes (one terminal each, as N nodes would be), each
calling ``positions_get`` then ``symbol_info_tick`` every ``--interval-ms`` (a node's poll)
for ``--seconds``; prints the per-call latency percentiles over all clients and the calls/s
the server sustained, with the load average (the clients load the machine too: on 2
cores 20 polling processes compete with the server for the CPU).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim import Simulator  # noqa: E402
from sim.client import AdminClient, connect, wait_until_up  # noqa: E402
from sim.trader import filling_for  # noqa: E402
from testing.harness import free_port  # noqa: E402


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    xs = sorted(samples_ns)

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] / 1000.0

    return {"n": len(xs), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
            "max_us": xs[-1] / 1000.0, "mean_us": statistics.fmean(xs) / 1000.0}


def timed(fn: Callable[[], Any], n: int, check: Callable[[Any], bool]) -> list[int]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        r = fn()
        out.append(time.perf_counter_ns() - t0)
        if not check(r):
            raise SystemExit(f"bench: unexpected result {r!r}")
    return out


def market(mt5: Any, symbol: str, volume: float, fill: int, side: int,
           position: int | None = None) -> dict:
    tick = mt5.symbol_info_tick(symbol)
    req = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume, "type": side,
           "price": tick.ask if side == mt5.ORDER_TYPE_BUY else tick.bid, "deviation": 50,
           "magic": 1, "type_filling": fill}
    if position is not None:
        req["position"] = position
    return req


def bench_terminal(mt5: Any, symbol: str, calls: int, positions: int,
                   trading: bool) -> dict[str, dict]:
    info = mt5.symbol_info(symbol)
    fill = filling_for(info.filling_mode, mt5)
    vol = info.volume_min
    for _ in range(positions - len(mt5.positions_get())):
        r = mt5.order_send(market(mt5, symbol, vol, fill, mt5.ORDER_TYPE_BUY))
        assert r is not None and r.retcode == mt5.TRADE_RETCODE_DONE, (r, mt5.last_error())
    warm = max(50, calls // 20)
    timed(mt5.positions_get, warm, lambda r: r is not None)
    res = {"positions_get": percentiles(timed(
        mt5.positions_get, calls, lambda r: r is not None and len(r) == positions))}
    if not trading:
        return res
    res["symbol_info_tick"] = percentiles(timed(
        lambda: mt5.symbol_info_tick(symbol), calls, lambda r: r is not None))
    res["account_info"] = percentiles(timed(mt5.account_info, calls, lambda r: r is not None))
    opens, closes = [], []
    for _ in range(calls):
        req = market(mt5, symbol, vol, fill, mt5.ORDER_TYPE_BUY)
        t0 = time.perf_counter_ns()
        r = mt5.order_send(req)
        opens.append(time.perf_counter_ns() - t0)
        assert r is not None and r.retcode == mt5.TRADE_RETCODE_DONE, (r, mt5.last_error())
        req = market(mt5, symbol, vol, fill, mt5.ORDER_TYPE_SELL, position=r.order)
        t0 = time.perf_counter_ns()
        r = mt5.order_send(req)
        closes.append(time.perf_counter_ns() - t0)
        assert r is not None and r.retcode == mt5.TRADE_RETCODE_DONE, (r, mt5.last_error())
    res["order_send open"] = percentiles(opens)
    res["order_send close"] = percentiles(closes)
    return res


def _client(endpoint: str, login: int, symbol: str, seconds: float, interval_s: float, out: Any) -> None:
    """One concurrent client (a process of its own): poll like a node, time every call."""
    mt5 = connect(endpoint, login=login, timeout_ms=10_000)
    pos, tick = [], []
    for _ in range(20):  # warm up
        mt5.positions_get()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter_ns()
        ok = mt5.positions_get() is not None
        t1 = time.perf_counter_ns()
        ok = mt5.symbol_info_tick(symbol) is not None and ok
        t2 = time.perf_counter_ns()
        if not ok:
            out.put(("error", login, str(mt5.last_error())))
            return
        pos.append(t1 - t0)
        tick.append(t2 - t1)
        time.sleep(max(0.0, interval_s - (t2 - t0) / 1e9))
    mt5.close()
    out.put(("ok", pos, tick))


def serve_cmd(endpoint: str, args: argparse.Namespace, processes: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "sim", "serve", "--endpoint", endpoint, "--tick-hz", str(args.tick_hz),
           "--workers", str(args.workers)]
    return cmd + ([] if processes is None else ["--processes", str(processes)])


def concurrent(args: argparse.Namespace) -> int:
    rows, meta = run_clients(args, args.clients, args.processes)
    return report(args, meta, rows, f"simulator RPC under {args.clients} concurrent clients (one process each), a poll every "
                  f"{args.interval_ms} ms for {args.seconds} s, {args.workers} workers, {meta['processes']} server processes; "
                  f"{meta['calls_per_s']} calls/s; load average {meta['load_avg_before']} -> {meta['load_avg_after']}, "
                  f"{meta['cpus']} cpus")


def matrix(args: argparse.Namespace) -> int:
    """1, 10 and 20 clients (``--matrix 1,10,20``), one server process ("before") and the
    multi-process server ("after", ``--processes`` or the default), interleaved, in one run."""
    import os

    from sim.cli import default_processes

    after = default_processes() if args.processes is None else args.processes
    out: dict[str, Any] = {"meta": {"seconds": args.seconds, "interval_ms": args.interval_ms, "cpus": os.cpu_count(),
                                    "processes_after": after + 1, "load_avg_start": os.getloadavg() if hasattr(os, "getloadavg") else None},
                           "results": []}
    for n in [int(x) for x in args.matrix.split(",")]:
        for label, procs in (("before", 0), ("after", after)):
            rows, meta = run_clients(args, n, procs)
            out["results"].append({"clients": n, "server": label, "processes": procs + 1, "rows": rows,
                                   "load_avg_after": meta["load_avg_after"], "calls_per_s": meta["calls_per_s"]})
    out["meta"]["load_avg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"simulator RPC per call, a poll (positions_get + symbol_info_tick) every {args.interval_ms} ms per client, "
          f"{args.seconds} s each; before = 1 server process, after = {after + 1} processes; {os.cpu_count()} cpus; "
          f"load average at start {out['meta']['load_avg_start']}, at end {out['meta']['load_avg_end']}")
    head = f"{'clients':>8} {'server':<8}{'call':<18}{'p50 us':>9}{'p90 us':>9}{'p99 us':>9}{'max us':>9}{'calls/s':>9}"
    print(head)
    print("-" * len(head))
    for r in out["results"]:
        for call, v in r["rows"].items():
            print(f"{r['clients']:>8} {r['server']:<8}{call:<18}{v['p50_us']:>9.0f}{v['p90_us']:>9.0f}{v['p99_us']:>9.0f}"
                  f"{v['max_us']:>9.0f}{r['calls_per_s']:>9}")
    return 0


def run_clients(args: argparse.Namespace, clients: int, processes: int | None) -> tuple[dict, dict]:
    """``clients`` client processes polling one served world; (percentile rows, meta)."""
    import multiprocessing as mp
    import os

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cmd = serve_cmd(endpoint, args, processes)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ctx = mp.get_context("spawn")  # as on Windows: no fork
    try:
        wait_until_up(endpoint, timeout_s=30)
        admin = AdminClient(endpoint)
        logins = sorted(int(x) for x in admin.logins())
        deadline = time.monotonic() + 30  # every replica up before the clients start
        while not all(r["live"] for r in admin.ping().get("replicas", [])) and time.monotonic() < deadline:
            time.sleep(0.05)
        probe = connect(endpoint, login=logins[0], timeout_ms=5000)
        symbols = {login: None for login in logins}
        for login in logins:
            probe.initialize(login=login)
            symbols[login] = next(s.name for s in probe.symbols_get() if s.trade_mode == probe.SYMBOL_TRADE_MODE_FULL)
        probe.close()
        out = ctx.Queue()
        load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
        workers = []
        for i in range(clients):
            login = logins[i % len(logins)]
            w = ctx.Process(target=_client, args=(endpoint, login, symbols[login], args.seconds, args.interval_ms / 1000, out))
            w.start()
            workers.append(w)
        pos, tick = [], []
        for _ in workers:
            item = out.get(timeout=args.seconds + 60)
            if item[0] != "ok":
                raise SystemExit(f"bench: client {item[1]} failed: {item[2]}")
            pos += item[1]
            tick += item[2]
        for w in workers:
            w.join(10)
        load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
        served = admin.ping()
        admin.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    rows = {"positions_get": percentiles(pos), "symbol_info_tick": percentiles(tick)}
    meta = {"clients": clients, "seconds": args.seconds, "interval_ms": args.interval_ms, "workers": args.workers,
            "processes": served.get("processes", 1), "main_served": served.get("main_served"),
            "replicas_served": [r["served"] for r in served.get("replicas", [])],
            "calls_per_s": round((len(pos) + len(tick)) / args.seconds),
            "load_avg_before": load_before, "load_avg_after": load_after, "cpus": os.cpu_count()}
    return rows, meta


def report(args: argparse.Namespace, meta: dict, rows: dict, title: str) -> int:
    """JSON with ``--json``, else the title and one line of percentiles (µs) per call."""
    if args.json:
        print(json.dumps({"meta": meta, "results": rows}, indent=2))
        return 0
    print(title)
    head = f"{'call':<28}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'max us':>10}"
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(f"{name:<28}{r['p50_us']:>10.0f}{r['p90_us']:>10.0f}{r['p99_us']:>10.0f}{r['max_us']:>10.0f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--positions", type=int, default=10)
    ap.add_argument("--tick-hz", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=8, help="server worker threads (0: inline)")
    ap.add_argument("--clients", type=int, default=0, help="concurrent client processes (0: one client, per-call table)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--interval-ms", type=float, default=20.0, help="each client's poll interval")
    ap.add_argument("--processes", type=int, default=None,
                    help="server replica processes (default: python -m sim serve's default; 0: one process)")
    ap.add_argument("--matrix", default="", metavar="N,N,...",
                    help="run these client counts against one process (before) and --processes (after)")
    args = ap.parse_args()
    if args.matrix:
        return matrix(args)
    if args.clients:
        return concurrent(args)

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(serve_cmd(endpoint, args, args.processes), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(endpoint, timeout_s=20)
        admin = AdminClient(endpoint)
        login = sorted(int(x) for x in admin.logins())[0]
        mt5 = connect(endpoint, login=login, timeout_ms=5000)
        symbol = next(s.name for s in mt5.symbols_get()
                      if s.trade_mode == mt5.SYMBOL_TRADE_MODE_FULL)
        remote = bench_terminal(mt5, symbol, args.calls, args.positions, trading=True)
        mt5.close()
        admin.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    sim = Simulator.demo(seed=0)
    local = sim.terminal()
    local.initialize(login=login)
    inproc = bench_terminal(local, symbol, args.calls, args.positions, trading=False)

    rows = {f"rpc {k}": v for k, v in remote.items()}
    rows["in-process positions_get"] = inproc["positions_get"]
    meta = {"calls": args.calls, "positions": args.positions, "tick_hz": args.tick_hz,
            "workers": args.workers,
            "symbol": symbol, "python": platform.python_version(),
            "platform": platform.platform(), "cpus": __import__("os").cpu_count()}
    return report(args, meta, rows, f"simulator RPC latency, {args.calls} calls each, {args.positions} open positions, "
                  f"tick {args.tick_hz:g} Hz, {args.workers} server workers, {meta['platform']}, {meta['cpus']} cpus")


if __name__ == "__main__":
    sys.exit(main())
