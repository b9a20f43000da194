"""Copy latency with real processes on loopback: master open → slave fill.

Scenarios (each a fresh fleet: sim server ticking at 10 Hz, bus proxy, one master, N slaves):

* ``e2e/<N> slaves``: the bench opens then closes positions on the master one at a time
  (after ``--warmup`` ones, default 1, that are not counted: each fleet's first copy);
  end-to-end = slave fill (slave's wall clock) − the master's ``order_send`` reply (bench's
  wall clock); hub = slave ``order_send`` issued − master detection (the delta's ts).
* ``burst``: 100 positions opened on the master within one poll, copied by 5 slaves;
  time from the first master open to the last slave fill.
* ``master cpu``: CPU % of the master process holding 100 open positions, at 20 ms and
  5 ms polling (psutil, over a few seconds).

Prints a table (``--json`` for a JSON object). Run: ``python bench/copy_latency.py``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from testing.harness import LocalFleet, market_order, wait_until, write_world_with_slaves  # noqa: E402

FAST = {"COPYHUB_HEARTBEAT_INTERVAL_MS": "500", "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "1000", "COPYHUB_LOG_LEVEL": "WARNING"}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99), "max": max(values) if values else float("nan"), "mean": statistics.fmean(values) if values else float("nan")}


def start_fleet(workdir: Path, slaves: int, *, poll_ms: int = 20) -> tuple[LocalFleet, list[str]]:
    world = write_world_with_slaves(workdir / "world.toml", max(slaves, 1))
    fleet = LocalFleet(workdir, tick_hz=10, env={**FAST, "COPYHUB_MASTER_POLL_INTERVAL_MS": str(poll_ms)})
    fleet.start_sim(str(world))
    fleet.start_proxy()
    fleet.sim_account("M", "MASTER", 1001)
    names = []
    for i in range(slaves):
        name = f"S{i + 1:02d}"
        fleet.sim_account(name, "SLAVE", 3001 + i, suffix=".c", slippage_tolerance=5000)
        names.append(name)
    fleet.start_node("master", "M")
    fleet.wait_node_running("M")
    for name in names:
        fleet.start_node("slave", name)
    for name in names:
        fleet.wait_node_running(name, timeout=30)
    wait_until(lambda: all(fleet.store.get_flag(f"follow:{n}:M") for n in names), timeout=30, message="follow records")
    return fleet, names




def e2e(slaves: int, trades: int, *, warmup: int = 0) -> dict:
    """Open then close ``trades`` master positions one at a time (after ``warmup`` ones not
    counted); end-to-end and hub latencies (ms) over every slave's copies."""
    with tempfile.TemporaryDirectory() as tmp:
        fleet, names = start_fleet(Path(tmp), slaves)
        try:
            m = fleet.terminal(1001)
            sent: dict[int, int] = {}
            for i in range(warmup + trades):
                r = market_order(m, "EURUSD", "BUY" if i % 2 == 0 else "SELL", 0.01)
                if i >= warmup:
                    sent[r.order] = time.time_ns() // 1_000_000
                wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") >= 1 for n in names), timeout=20, message="copies")
                pos = m.positions_get(ticket=r.order)[0]
                market_order(m, "EURUSD", "SELL" if pos.type == 0 else "BUY", 0.01, position=r.order)
                wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == 0 for n in names), timeout=20, message="closes")
            e2e_ms, hub_ms = [], []
            for n in names:
                for t in fleet.trades(n):
                    if t.get("filled_ms") and t["master_ticket"] in sent:
                        e2e_ms.append(t["filled_ms"] - sent[t["master_ticket"]])
                    if t.get("hub_ms") is not None and t["master_ticket"] in sent:
                        hub_ms.append(t["hub_ms"])
            return {"slaves": slaves, "e2e_ms": summary(e2e_ms), "hub_ms": summary(hub_ms)}
        finally:
            fleet.close()


def burst(slaves: int = 5, positions: int = 100) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        # a slow poll so that all opens land in one master poll, as the scenario asks;
        # the wait for that poll is reported apart (detection -> last fill)
        fleet, names = start_fleet(Path(tmp), slaves, poll_ms=1000)
        try:
            m = fleet.terminal(1001)
            t0 = time.time_ns() // 1_000_000
            for _i in range(positions):
                market_order(m, "EURUSD", "BUY", 0.01)
            t_open = time.time_ns() // 1_000_000
            wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == positions for n in names), timeout=120, interval=0.2, message="burst copies")
            rows = [t for n in names for t in fleet.trades(n) if t.get("filled_ms")]
            last_fill = max(t["filled_ms"] for t in rows)
            detected = min(t["sent_ms"] - t["hub_ms"] for t in rows if t.get("hub_ms") is not None)
            return {"slaves": slaves, "positions": positions, "master_open_ms": t_open - t0,
                    "first_open_to_last_fill_ms": last_fill - t0, "detection_to_last_fill_ms": last_fill - detected}
        finally:
            fleet.close()


def master_cpu(poll_ms: int, positions: int = 100, seconds: float = 6.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fleet, _ = start_fleet(Path(tmp), 0, poll_ms=poll_ms)
        try:
            m = fleet.terminal(1001)
            for _ in range(positions):
                market_order(m, "EURUSD", "BUY", 0.01)
            time.sleep(1.0)
            proc = psutil.Process(fleet.procs["M"].pid)
            proc.cpu_percent(None)
            time.sleep(seconds)
            return {"poll_ms": poll_ms, "positions": positions, "cpu_percent": proc.cpu_percent(None)}
        finally:
            fleet.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trades", type=int, default=40, help="positions per e2e scenario")
    ap.add_argument("--slaves", default="1,5,10")
    ap.add_argument("--warmup", type=int, default=1, help="copies made first and not counted (each fleet's first)")
    args = ap.parse_args(argv)
    results = {"e2e": [e2e(int(n), args.trades, warmup=args.warmup) for n in args.slaves.split(",")], "burst": burst(), "master_cpu": [master_cpu(20), master_cpu(5)]}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'scenario':<22}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  (ms)")
    for r in results["e2e"]:
        for key, label in (("e2e_ms", "end-to-end"), ("hub_ms", "hub overhead")):
            s = r[key]
            name = f"{label} {r['slaves']} slaves"
            print(f"{name:<22}{s['n']:>6}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}")
    b = results["burst"]
    print(f"burst: {b['positions']} positions x {b['slaves']} slaves: master opens took {b['master_open_ms']} ms; "
          f"master detection -> last slave fill {b['detection_to_last_fill_ms']} ms (first open -> last fill {b['first_open_to_last_fill_ms']} ms, incl. the 1 s poll)")
    for c in results["master_cpu"]:
        print(f"master CPU at {c['poll_ms']} ms polling with {c['positions']} positions: {c['cpu_percent']:.1f} % of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
