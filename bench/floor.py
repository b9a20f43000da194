"""The floor under copyhub's hub latency on this machine, measured beside copyhub.

A copy's hub window (master detection → slave ``order_send``) cannot be shorter than the
hand-offs it must make: the master's login check (one terminal call), the bus (master →
proxy → slave, each process woken from sleep), and the slave's one fresh tick. This bench
runs exactly those and nothing else — a bare master that polls ``orders_get`` and
``positions_get`` every 20 ms and, on a change, reads ``account_info`` and publishes the
new tickets through the same bus proxy; bare followers that, on the message, read the tick
and send the market order (no store, no planner, no guardian, no logs) — on the same
simulator world as ``bench/copy_latency.py``, then copyhub's fleet on a fresh copy of it,
interleaved, and prints both and the ratio: the hub window, and end to end (the master's
fill as the bench's ``order_send`` returns → the follower's ``order_send`` reply, as
``bench/copy_latency.py`` measures it). Each fleet first makes one warm-up copy that is
not counted (``WARMUP_TRADES``): the bare followers' first calls open their connections.

    python bench/floor.py [--slaves 1,10] [--trades 40] [--json]

The floor's figure is what this machine (its wake-ups, its two cores shared by every
process) costs before any of copyhub's own work; copyhub's ratio to it is what copyhub adds.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import zmq  # noqa: E402

from testing.harness import LocalFleet, free_port, market_order, write_world_with_slaves  # noqa: E402

TOPIC = b"floor"
POLL_MS = 20  # the bare master's poll, as copyhub's MASTER_POLL_INTERVAL_MS in bench/copy_latency.py
WARMUP_TRADES = 1  # copies made before the measured ones, by the floor and by copyhub alike


def _send_order(mt5, symbol: str, side: str, position: int = 0):
    """One market order at the tick just read; returns (ms when sent, result)."""
    tick = mt5.symbol_info_tick(symbol)
    req = {"action": 1, "symbol": symbol, "volume": 0.01, "type": 0 if side == "BUY" else 1,
           "price": tick.ask if side == "BUY" else tick.bid, "deviation": 5000, "type_filling": 1}
    if position:
        req["position"] = position
    sent = time.time() * 1000
    return sent, mt5.order_send(req)


def run_master(sim: str, bus_pub: str, poll_ms: int) -> None:
    """Poll, check the login on a change, publish the tickets (what a master must do)."""
    from sim.client import connect

    mt5 = connect(sim, login=1001)
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.connect(bus_pub)
    known: dict[int, tuple[str, int]] = {}
    while True:
        t0 = time.monotonic()
        mt5.orders_get()
        positions = mt5.positions_get() or ()
        now = {int(p.ticket): (str(p.symbol), int(p.type)) for p in positions}
        if now != known:
            detected = time.time() * 1000
            mt5.account_info()  # the login check before anything goes out
            body = {"ts": detected, "open": [[t, *v] for t, v in now.items() if t not in known],
                    "close": [t for t in known if t not in now]}
            pub.send_multipart([TOPIC, json.dumps(body).encode()])
            known = now
        time.sleep(max(0.0, poll_ms / 1000 - (time.monotonic() - t0)))


def run_slave(sim: str, bus_sub: str, report: str, login: int) -> None:
    """On a master message: one tick, one order_send per opened position; closes likewise."""
    from sim.client import connect

    mt5 = connect(sim, login=login)
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sub.connect(bus_sub)
    push = ctx.socket(zmq.PUSH)
    push.connect(report)
    push.send_json({"ready": login})
    mine: dict[int, int] = {}
    while True:
        _topic, raw = sub.recv_multipart()
        msg = json.loads(raw)
        for ticket, symbol, side in msg["open"]:
            sent, result = _send_order(mt5, symbol + ".c", "BUY" if side == 0 else "SELL")
            filled = time.time() * 1000
            mine[ticket] = int(result.order)
            push.send_json({"kind": "open", "hub_ms": sent - msg["ts"], "filled_ms": filled, "ok": result.retcode == 10009})
        for ticket in msg["close"]:
            own = mine.pop(ticket, 0)
            if own:
                pos = mt5.positions_get(ticket=own)
                if pos:
                    _send_order(mt5, pos[0].symbol, "SELL" if pos[0].type == 0 else "BUY", position=own)
            push.send_json({"kind": "close"})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def floor(slaves: int, trades: int) -> dict:
    """The bare pipeline's latencies (ms) for ``trades`` opens copied by ``slaves``: hub
    (detection → ``order_send``) and end to end (the master's fill → the follower's)."""
    with tempfile.TemporaryDirectory() as tmp:
        fleet = LocalFleet(Path(tmp), tick_hz=10)
        world = write_world_with_slaves(Path(tmp) / "world.toml", slaves)
        fleet.start_sim(str(world))
        fleet.start_proxy()
        ctx = zmq.Context.instance()
        pull = ctx.socket(zmq.PULL)
        report = f"tcp://127.0.0.1:{free_port()}"
        pull.bind(report)
        me = [sys.executable, str(Path(__file__).resolve()), "--sim", fleet.sim_endpoint]
        try:
            for i in range(slaves):
                fleet._spawn(f"F{i}", [*me, "--role", "slave", "--bus", fleet.bus_sub, "--report", report,
                                       "--login", str(3001 + i)])
            ready = 0
            while ready < slaves:
                if pull.poll(30_000):
                    ready += "ready" in pull.recv_json()
                else:
                    raise TimeoutError("floor followers did not start")
            fleet._spawn("FM", [*me, "--role", "master", "--bus", fleet.bus_pub])
            time.sleep(1.0)  # the subscriptions reach the proxy and the master's first poll
            m = fleet.terminal(1001)
            hub: list[float] = []
            e2e: list[float] = []
            master_filled = [0.0]

            def collect(kind: str) -> None:
                got = 0
                deadline = time.monotonic() + 20
                while got < slaves and time.monotonic() < deadline:
                    if pull.poll(1000):
                        msg = pull.recv_json()
                        if msg.get("kind") == kind:
                            got += 1
                            if kind == "open":
                                hub.append(msg["hub_ms"])
                                e2e.append(msg["filled_ms"] - master_filled[0])
                if got < slaves:
                    raise TimeoutError(f"floor: {got} of {slaves} {kind}s")

            phase = random.Random(7)
            for i in range(trades + WARMUP_TRADES):
                # the reports come right after the master's poll: without a random wait every open
                # would land just after a poll and wait a whole interval for the next one
                time.sleep(phase.uniform(0, POLL_MS / 1000))
                r = market_order(m, "EURUSD", "BUY" if i % 2 == 0 else "SELL", 0.01)
                master_filled[0] = time.time() * 1000  # as bench/copy_latency.py: when the master's fill came back
                collect("open")
                pos = m.positions_get(ticket=r.order)[0]
                market_order(m, "EURUSD", "SELL" if pos.type == 0 else "BUY", 0.01, position=r.order)
                collect("close")
            del hub[:WARMUP_TRADES * slaves]  # the followers' first calls (connection, first symbol) are not the floor
            del e2e[:WARMUP_TRADES * slaves]
            return {"slaves": slaves, "n": len(hub), **{f"p{p}": round(pct(hub, p), 2) for p in (50, 90, 99)},
                    "e2e": {f"p{p}": round(pct(e2e, p), 1) for p in (50, 90, 99)}}
        finally:
            pull.close(linger=0)
            fleet.close()


def copyhub(slaves: int, trades: int) -> dict:
    import copy_latency

    both = copy_latency.e2e(slaves, trades, warmup=WARMUP_TRADES)
    r, e = both["hub_ms"], both["e2e_ms"]
    return {"slaves": slaves, "n": r["n"], **{f"p{p}": r[f"p{p}"] for p in (50, 90, 99)},
            "e2e": {f"p{p}": e[f"p{p}"] for p in (50, 90, 99)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", choices=["master", "slave"], help=argparse.SUPPRESS)
    ap.add_argument("--sim", help=argparse.SUPPRESS)
    ap.add_argument("--bus", help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    ap.add_argument("--login", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--slaves", default="1,10")
    ap.add_argument("--trades", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.role == "master":
        run_master(args.sim, args.bus, POLL_MS)
        return 0
    if args.role == "slave":
        run_slave(args.sim, args.bus, args.report, args.login)
        return 0
    rows = []
    for n in (int(x) for x in args.slaves.split(",")):
        bare = floor(n, args.trades)
        ours = copyhub(n, args.trades)
        rows.append({"slaves": n, "floor": bare, "copyhub": ours,
                     "ratio": {f"p{p}": round(ours[f"p{p}"] / bare[f"p{p}"], 2) if bare[f"p{p}"] else None
                               for p in (50, 90, 99)},
                     "e2e_ratio": {f"p{p}": round(ours["e2e"][f"p{p}"] / bare["e2e"][f"p{p}"], 2) if bare["e2e"][f"p{p}"] else None
                                   for p in (50, 90, 99)}})
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"load_avg": load, "rows": rows}, indent=2))
        return 0
    print(f"ms, p50 p90 p99; load average {load}")
    print(f"{'slaves':>6} {'':8} {'hub (detection -> order_send)':>29}   {'end to end (master fill -> slave fill)':>38}")
    for row in rows:
        for name in ("floor", "copyhub", "ratio"):
            r = row[name]
            e = row["e2e_ratio"] if name == "ratio" else r["e2e"]
            print(f"{row['slaves']:>6} {name:8} " + " ".join(f"{r[f'p{p}']:>9}" for p in (50, 90, 99))
                  + "   " + " ".join(f"{e[f'p{p}']:>12}" for p in (50, 90, 99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
