"""Fleet start-up benchmark: 1 master + N slaves on the simulator, through launcher.py.

    python bench/fleet.py [--slaves 20] [--json] [--runs 1]

Measures, from the moment ``launcher.py`` is spawned:

* until every node reports RUNNING on the bus and every slave is *subscribed*, i.e. its
  status says it holds a fresh snapshot of the master (``info.masters[M] == true``);
* until the launcher's supervisor marks every node RUNNING (includes the 3 s minimum
  uptime, so it can never be below 3 s by construction);
* RSS per slave (psutil, after the fleet is up), and the master's and launcher's RSS.

Goals (issue 4): all RUNNING and subscribed <= 5 s; RSS per slave <= 80 MB.
The simulator server runs outside the launcher (as a broker would); slaves share the
demo world's slave logins, which is harmless because nothing trades during the run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import open_store  # noqa: E402
from fleet.demo import free_port  # noqa: E402
from messaging.schema import Status  # noqa: E402
from messaging.subscriber import Subscriber  # noqa: E402

MASTER = "Bench_Master"
SLAVE_LOGINS = (2001, 2002, 2003)
GOAL_UP_S = 5.0
GOAL_RSS_MB = 80.0


def wait_sim(endpoint: str, timeout: float = 20.0) -> None:
    from sim.client import AdminClient, SimUnavailable
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            AdminClient(endpoint, timeout_ms=500).ping()
            return
        except SimUnavailable:
            time.sleep(0.1)
    raise SystemExit(f"simulator did not start on {endpoint}")


def run_once(n_slaves: int, workdir: Path, timeout_s: float = 90.0) -> dict:
    db = "sqlite:///" + (workdir / "bench.db").as_posix()
    pub, sub, sim = free_port(), free_port(), free_port()
    while len({pub, sub, sim}) < 3:
        sub, sim = free_port(), free_port()
    bus_pub, bus_sub, sim_ep = (f"tcp://127.0.0.1:{p}" for p in (pub, sub, sim))
    store = open_store(db)
    term = lambda login: {"kind": "sim", "login": login, "endpoint": sim_ep}  # noqa: E731
    store.upsert_account({"name": MASTER, "type": "MASTER", "enabled": True, "terminal": term(1001)})
    slaves = [f"Bench_Slave_{i:02d}" for i in range(1, n_slaves + 1)]
    for i, name in enumerate(slaves):
        store.upsert_account({"name": name, "type": "SLAVE", "enabled": True, "terminal": term(SLAVE_LOGINS[i % 3]),
                              "suffix": ".c" if SLAVE_LOGINS[i % 3] != 2003 else "",
                              "symbol_map": {"XAUUSD": "GOLD", "US30": "DJ30"}})
    logs = workdir / "logs"
    sim_proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint", sim_ep],
                                cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    launcher = None
    try:
        wait_sim(sim_ep)
        listener = Subscriber(bus_sub, ["status."])  # connects (and retries) before the proxy exists
        t0 = time.monotonic()
        launcher = subprocess.Popen(
            [sys.executable, str(ROOT / "launcher.py"), "--db", db, "--bus-pub", bus_pub, "--bus-sub", bus_sub,
             "--sim-endpoint", sim_ep, "--log-dir", str(logs), "--no-monitor", "--stats-interval", "1"],
            cwd=str(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))  # for CTRL_BREAK_EVENT
        running: dict[str, float] = {}
        subscribed: dict[str, float] = {}
        pids: dict[str, int] = {}
        deadline = t0 + timeout_s
        while time.monotonic() < deadline and (len(running) < n_slaves + 1 or len(subscribed) < n_slaves):
            msg = listener.recv(200)
            if not isinstance(msg, Status) or msg.role not in ("master", "slave"):
                continue
            now = time.monotonic() - t0
            pids[msg.node] = msg.pid
            if msg.state == "RUNNING":
                running.setdefault(msg.node, now)
            if msg.role == "slave" and msg.info.get("masters", {}).get(MASTER) is True:
                subscribed.setdefault(msg.node, now)
        listener.close()
        all_up = max([*running.values(), *subscribed.values()]) if subscribed else None
        complete = len(running) == n_slaves + 1 and len(subscribed) == n_slaves
        # supervisor view: every node RUNNING in the store
        sup_deadline = time.monotonic() + 30
        sup_up = None
        while time.monotonic() < sup_deadline:
            docs = {d["name"]: d for d in store.list_nodes()}
            if all(docs.get(n, {}).get("supervisor_state") == "RUNNING" for n in [MASTER, *slaves]):
                sup_up = time.monotonic() - t0
                break
            time.sleep(0.1)
        time.sleep(2.0)  # let start-up allocations settle before measuring memory
        rss = {}
        for name, pid in pids.items():
            try:
                rss[name] = psutil.Process(pid).memory_info().rss / 1048576
            except psutil.Error:
                pass
        slave_rss = [rss[n] for n in slaves if n in rss]
        launcher_rss = psutil.Process(launcher.pid).memory_info().rss / 1048576
        return {
            "slaves": n_slaves, "complete": complete,
            "all_running_and_subscribed_s": round(all_up, 2) if complete and all_up is not None else None,
            "master_running_s": round(running.get(MASTER, float("nan")), 2),
            "supervisor_all_running_s": round(sup_up, 2) if sup_up else None,
            "slave_rss_mb_mean": round(statistics.mean(slave_rss), 1) if slave_rss else None,
            "slave_rss_mb_max": round(max(slave_rss), 1) if slave_rss else None,
            "master_rss_mb": round(rss.get(MASTER, 0.0), 1),
            "launcher_rss_mb": round(launcher_rss, 1),
        }
    finally:
        if launcher is not None and launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM if os.name != "nt" else signal.CTRL_BREAK_EVENT)
            try:
                launcher.wait(60)
            except subprocess.TimeoutExpired:
                launcher.kill()
        sim_proc.terminate()
        sim_proc.wait(10)
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slaves", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="copyhub-bench-fleet-") as tmp:
            if os.environ.get("BENCH_KEEP"):  # keep logs and store for a post-mortem
                tmp = os.environ["BENCH_KEEP"]
                Path(tmp).mkdir(parents=True, exist_ok=True)
            results.append(run_once(args.slaves, Path(tmp)))
    if args.json:
        print(json.dumps({"runs": results, "goals": {"all_running_and_subscribed_s": GOAL_UP_S,
                                                      "slave_rss_mb": GOAL_RSS_MB}}, indent=2))
        return 0
    rows = [("measure", "value", "goal")]
    for r in results:
        up = r["all_running_and_subscribed_s"]
        rows += [
            (f"1 master + {r['slaves']} slaves RUNNING and subscribed", f"{up} s" if up else "incomplete",
             f"<= {GOAL_UP_S:g} s"),
            ("  master RUNNING (own status)", f"{r['master_running_s']} s", ""),
            ("  supervisor: all RUNNING (incl. 3 s min uptime)", f"{r['supervisor_all_running_s']} s", ""),
            ("RSS per slave (mean / max)", f"{r['slave_rss_mb_mean']} / {r['slave_rss_mb_max']} MB",
             f"<= {GOAL_RSS_MB:g} MB"),
            ("RSS master / launcher", f"{r['master_rss_mb']} / {r['launcher_rss_mb']} MB", ""),
        ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
