"""What the monitor costs: its CPU with 1 master, 20 slaves and 100 open positions (2000
links), the copy latency with and without it (interleaved blocks on one fleet), and how
the page's data scales to 50 accounts x 200 positions.

Scenarios:

* ``monitor cpu``: CPU % of nodes/monitor.py over ``--seconds`` with one browser-like
  client on the live push (``/api/v1/stream``) and a Prometheus-like scrape of
  ``/metrics`` every second.
* ``latency on/off``: the same fleet copies one master position at a time (open, all
  slaves fill, close, all slaves close); blocks of ``--block`` trades alternate monitor
  running / stopped. End-to-end = slave fill − the master's order_send reply.
* ``page scale``: an in-process collector over a synthetic store of 50 accounts x 200
  open links each: poll time, the size of each pushed part, /api/v1/state time.

Run: ``python bench/monitor.py`` (``--json`` for a JSON object). Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
from copy_latency import start_fleet, summary  # noqa: E402

from testing.harness import (  # noqa: E402
    free_port,
    market_order,  # noqa: E402
    wait_until,
)


def start_monitor(fleet, port: int):
    proc = fleet.start_node("monitor", "monitor", args=["--http-port", str(port)], proc_name="monitor")

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(up, timeout=30, message="monitor HTTP")
    return proc


def stream_reader(port: int, stop: threading.Event, counts: dict) -> None:
    """A browser-like client on the push: read until stopped, count bytes and messages."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/stream", timeout=5) as r:
            while not stop.is_set():
                line = r.readline()
                if not line:
                    break
                counts["bytes"] += len(line)
                counts["messages"] += line.startswith(b"event: state")
    except OSError:
        pass


def monitor_cpu(fleet, port: int, seconds: float) -> dict:
    proc = start_monitor(fleet, port)
    try:
        time.sleep(3.0)  # first full load done
        stop, counts = threading.Event(), {"bytes": 0, "messages": 0}
        reader = threading.Thread(target=stream_reader, args=(port, stop, counts), daemon=True)
        reader.start()
        ps = psutil.Process(proc.pid)
        ps.cpu_percent(None)
        end, scrapes, scrape_ms = time.monotonic() + seconds, 0, []
        while time.monotonic() < end:
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                r.read()
            scrape_ms.append((time.perf_counter() - t0) * 1000)
            scrapes += 1
            time.sleep(1.0)
        cpu = ps.cpu_percent(None)
        rss = ps.memory_info().rss
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/state", timeout=10) as r:
            state_bytes = len(r.read())
        state_ms = (time.perf_counter() - t0) * 1000
        stop.set()
        return {"cpu_percent": cpu, "rss_mb": rss / 1048576, "seconds": seconds, "push_messages": counts["messages"],
                "push_kb": counts["bytes"] / 1024, "scrape_ms": summary(scrape_ms), "state_kb": state_bytes / 1024,
                "state_ms": state_ms}
    finally:
        proc.stop(timeout=5)


def latency_block(fleet, m, names: list[str], trades: int, background: int) -> list[float]:
    out = []
    for i in range(trades):
        r = market_order(m, "EURUSD", "BUY" if i % 2 == 0 else "SELL", 0.01)
        sent = time.time_ns() // 1_000_000
        wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") > background for n in names),
                   timeout=30, interval=0.02, message="copies")
        for n in names:
            t = fleet.store.get_trade(n, "M", r.order)
            if t and t.get("filled_ms"):
                out.append(t["filled_ms"] - sent)
        pos = m.positions_get(ticket=r.order)[0]
        market_order(m, "EURUSD", "SELL" if pos.type == 0 else "BUY", 0.01, position=r.order)
        wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == background for n in names),
                   timeout=30, interval=0.02, message="closes")
    return out


def fleet_scenarios(slaves: int, positions: int, seconds: float, blocks: int, block: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fleet, names = start_fleet(Path(tmp), slaves)
        try:
            m = fleet.terminal(1001)
            for _i in range(positions):
                market_order(m, "EURUSD", "BUY", 0.01)
            wait_until(lambda: all(fleet.store.count_trades(slave_name=n, status="OPEN") == positions for n in names),
                       timeout=300, interval=0.5, message="background copies")
            port = free_port()
            cpu = monitor_cpu(fleet, port, seconds)
            on, off = [], []
            for b in range(blocks * 2):
                running = b % 2 == 0
                proc = start_monitor(fleet, port) if running else None
                try:
                    (on if running else off).extend(latency_block(fleet, m, names, block, positions))
                finally:
                    if proc is not None:
                        proc.stop(timeout=5)
            return {"slaves": slaves, "positions": positions, "links": slaves * positions, "monitor": cpu,
                    "e2e_with_monitor_ms": summary(on), "e2e_without_monitor_ms": summary(off)}
        finally:
            fleet.close()


def page_scale(accounts: int = 50, per_account: int = 200) -> dict:
    from fastapi.testclient import TestClient

    from dashboard.app import create_app
    from dashboard.collector import PARTS, Collector
    from db import now_ms, open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 's.db'}")
        store.ensure_indexes()
        store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1}})
        now = now_ms()
        for a in range(accounts):
            name = f"S{a:02d}"
            store.upsert_account({"name": name, "type": "SLAVE", "terminal": {"kind": "sim", "login": 100 + a}})
            store.upsert_node(name, {"role": "slave", "state": "RUNNING", "heartbeat_ms": now, "supervisor_state": "RUNNING",
                                     "account": {"balance": 1e5, "equity": 1e5, "margin": 1e3, "profit": 0.0}})
            for p in range(per_account):
                store.record_intent({"slave_name": name, "master_name": "M", "master_ticket": 1000 + p, "symbol": "EURUSD",
                                     "master_symbol": "EURUSD", "direction": "BUY", "master_volume": 0.1, "slave_volume": 0.1,
                                     "status": "OPEN", "slave_price": 1.1, "latency_ms": 30.0, "slippage_points": 1.0,
                                     "master_contract_size": 100000.0})
        collector = Collector(store)
        t0 = time.perf_counter()
        collector.poll(force=True)
        first_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        collector._read_live_links()
        relink_ms = (time.perf_counter() - t0) * 1000
        sizes = {p: len(collector.part_json(p)[1]) / 1024 for p in PARTS}
        app = create_app(collector, store, publish=lambda *a, **k: True, token=None)
        with TestClient(app, base_url="http://127.0.0.1:8080") as client:
            t0 = time.perf_counter()
            client.get("/api/v1/state")
            state_ms = (time.perf_counter() - t0) * 1000
        store.close()
        return {"accounts": accounts, "positions_per_account": per_account, "first_poll_ms": first_ms,
                "full_link_resync_ms": relink_ms, "part_kb": sizes, "state_ms": state_ms}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--slaves", type=int, default=20)
    ap.add_argument("--positions", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0, help="CPU sampling window")
    ap.add_argument("--blocks", type=int, default=4, help="blocks with the monitor, and as many without")
    ap.add_argument("--block", type=int, default=5, help="trades per block")
    args = ap.parse_args(argv)
    results = {"page_scale": page_scale(),
               "fleet": fleet_scenarios(args.slaves, args.positions, args.seconds, args.blocks, args.block)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    f, mon, ps = results["fleet"], results["fleet"]["monitor"], results["page_scale"]
    print(f"monitor with 1 master, {f['slaves']} slaves, {f['positions']} positions ({f['links']} open links), one push "
          f"client, /metrics scraped every s: CPU {mon['cpu_percent']:.1f} % of a core over {mon['seconds']:g} s, "
          f"RSS {mon['rss_mb']:.0f} MB; pushed {mon['push_messages']} messages / {mon['push_kb']:.0f} kB; "
          f"/metrics p50 {mon['scrape_ms']['p50']:.1f} ms; /api/v1/state {mon['state_kb']:.0f} kB in {mon['state_ms']:.0f} ms")
    print(f"{'copy latency (ms)':<28}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for key, label in (("e2e_with_monitor_ms", "with the monitor"), ("e2e_without_monitor_ms", "without the monitor")):
        s = f[key]
        print(f"{label:<28}{s['n']:>6}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}")
    print(f"page scale {ps['accounts']} accounts x {ps['positions_per_account']} positions: first poll "
          f"{ps['first_poll_ms']:.0f} ms, full link resync {ps['full_link_resync_ms']:.0f} ms, /api/v1/state "
          f"{ps['state_ms']:.0f} ms; parts (kB): " + ", ".join(f"{k} {v:.0f}" for k, v in ps["part_kb"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
