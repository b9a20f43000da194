"""Copy latency across hosts: followers behind a veth link vs one on the bus host, CURVE on.

Three network namespaces (testing/netns.py, Linux, root): BUS runs the bus proxy, the
master M and follower S0; HOST-A runs SA, HOST-B runs SB, each launcher with its own
``--host`` and key pair. The bench opens a position on the master, waits until every
follower holds its copy, closes it, and repeats.

* **end-to-end** -- follower fill (its wall clock when ``order_send`` returned) minus the
  moment the master's ``order_send`` returned in the bench (one machine, one clock).
* **hub** -- follower ``order_send`` issued minus the master's detection (the delta's
  ``ts_ms``): bus (two CURVE hops through the proxy), mirror, planning, intent.

Prints a table (``--json`` for a JSON object). Run as root:
``python bench/netns_latency.py [--trades 30]``.
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

from testing import netns  # noqa: E402
from testing.harness import market_order, wait_until, write_world_with_slaves  # noqa: E402

ENV = {"COPYHUB_HEARTBEAT_INTERVAL_MS": "500", "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "1000",
       "COPYHUB_LOG_LEVEL": "WARNING", "COPYHUB_MASTER_POLL_INTERVAL_MS": "20"}
FOLLOWERS = {"S0": (3001, "BUS"), "SA": (3002, "HOST-A"), "SB": (3003, "HOST-B")}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": max(values) if values else float("nan"), "mean": statistics.fmean(values) if values else float("nan")}


def send(m, side: str, volume: float, position: int = 0):
    return market_order(m, "EURUSD", side, volume, position)


def run(trades: int) -> dict:
    why = netns.problem()
    if why:
        raise SystemExit(f"netns_latency: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        world = write_world_with_slaves(Path(tmp) / "world.toml", len(FOLLOWERS))
        fleet = netns.MultiHostFleet(["BUS", "HOST-A", "HOST-B"], env=ENV, world=str(world), tick_hz=10)
        try:
            fleet.account("M", "MASTER", 1001, "BUS")
            for name, (login, host) in FOLLOWERS.items():
                fleet.account(name, "SLAVE", login, host, suffix=".c", slippage_tolerance=5000)
            for host in fleet.hosts:
                fleet.start_launcher(host)
            fleet.wait_running(["M", *FOLLOWERS], timeout=90)
            wait_until(lambda: all(fleet.store.get_flag(f"follow:{n}:M") for n in FOLLOWERS), timeout=60,
                       message="follow records")
            m = fleet.terminal(1001)
            sent: dict[int, int] = {}
            for i in range(trades):
                r = send(m, "BUY" if i % 2 == 0 else "SELL", 0.01)
                sent[r.order] = time.time_ns() // 1_000_000
                wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == 1 for n in FOLLOWERS),
                           timeout=30, message="copies")
                pos = m.positions_get(ticket=r.order)[0]
                send(m, "SELL" if pos.type == 0 else "BUY", 0.01, position=r.order)
                wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == 0 for n in FOLLOWERS),
                           timeout=30, message="closes")
            out: dict[str, dict] = {}
            for label, names in (("bus host (S0)", ["S0"]), ("across veth (SA, SB)", ["SA", "SB"])):
                e2e, hub = [], []
                for n in names:
                    for t in fleet.store.list_trades(slave_name=n):
                        if t.get("filled_ms") and t["master_ticket"] in sent:
                            e2e.append(t["filled_ms"] - sent[t["master_ticket"]])
                        if t.get("hub_ms") is not None:
                            hub.append(t["hub_ms"])
                out[label] = {"e2e_ms": summary(e2e), "hub_ms": summary(hub)}
            return {"trades": trades, "curve": "CURVE on" in fleet.proxy_log(), "followers": out}
        finally:
            fleet.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trades", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.trades)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"copy latency, {res['trades']} trades, CURVE {'on' if res['curve'] else 'OFF'}")
    print(f"{'followers':<24}{'metric':<10}{'n':>5}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for label, block in res["followers"].items():
        for metric in ("e2e_ms", "hub_ms"):
            s = block[metric]
            print(f"{label:<24}{metric[:-3]:<10}{s['n']:>5}{s['p50']:>8.0f}{s['p90']:>8.0f}{s['p99']:>8.0f}{s['max']:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
